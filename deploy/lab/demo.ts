import '../../src/util/polyfill.js';
import { renderStatus, table } from '../../src/api/status-view.js';
import { type AgentProcess, startAgentOn, waitFor } from '../../test/helpers/agent.js';
import { NetnsGroup } from '../../test/helpers/netns.js';
import { buildTwoNodeTopology } from '../../test/helpers/topology.js';

/**
 * The two-node data-plane demo: two node namespaces joined by a veth underlay, a pod on each,
 * a real weft agent per node, then the checks a person would run by hand.
 */
const keep = process.argv.includes('--keep');

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}
const checks: Check[] = [];
const say = (line: string) => process.stdout.write(`${line}\n`);

async function check(name: string, body: () => Promise<string>): Promise<void> {
  try {
    const detail = await body();
    checks.push({ name, ok: true, detail });
    say(`  ✓ ${name}: ${detail}`);
  } catch (error) {
    const detail = (error as Error).message.split('\n')[0] ?? '';
    checks.push({ name, ok: false, detail });
    say(`  ✗ ${name}: ${detail}`);
  }
}

await NetnsGroup.sweepStale('wt-demo');
const group = NetnsGroup.create('demo');
try {
  say('weft two-node demo');
  say('• building two nodes (network namespaces) joined by a veth underlay, one pod each');
  const topo = await buildTwoNodeTopology(group, { podMtu: 1464 });
  say('• starting a weft agent on each node');
  const agents: AgentProcess[] = [await startAgentOn(group, topo, 0), await startAgentOn(group, topo, 1)];
  const [p1, p2] = topo.pods;
  const [n1, n2] = topo.nodes;

  say('');
  say(
    table(
      ['POD', 'NODE', 'IP', 'NODE UNDERLAY'],
      topo.pods.map((pod, i) => [
        pod.shortName,
        topo.nodes[i]?.shortName ?? '',
        pod.ip,
        topo.nodes[i]?.underlayIp ?? '',
      ]),
    ),
  );
  say('');
  say('• checks');
  for (const [from, to, node] of [
    [p1, p2, n2],
    [p2, p1, n1],
  ] as const) {
    await check(`ping ${from.shortName} → ${to.shortName} (on ${node.shortName})`, async () => {
      const out = (await group.exec(from.shortName, ['ping', '-c', '3', '-i', '0.2', '-W', '2', to.ip]))
        .stdout;
      return out.trim().split('\n').pop() ?? '';
    });
  }
  await check(`wget ${p1.shortName} → httpd on ${p2.shortName}`, async () => {
    const dir = `/tmp/${group.prefix}-www`;
    await group.exec(p2.shortName, [
      'sh',
      '-c',
      `mkdir -p ${dir} && head -c 8388608 /dev/urandom > ${dir}/blob`,
    ]);
    const httpd = group.spawn(p2.shortName, ['busybox', 'httpd', '-f', '-p', '80', '-h', dir]);
    try {
      await waitFor(
        async () =>
          (await group.exec(p2.shortName, ['ss', '-ltn'], { allowFail: true })).stdout.includes(':80 '),
        5000,
        'httpd did not start',
      );
      const started = Date.now();
      const out = await group.exec(p1.shortName, [
        'sh',
        '-c',
        `timeout 20 busybox wget -q -O - http://${p2.ip}/blob | wc -c`,
      ]);
      const bytes = Number(out.stdout.trim());
      if (bytes !== 8388608) throw new Error(`got ${bytes} of 8388608 bytes`);
      return `8 MiB in ${Date.now() - started} ms`;
    } finally {
      await group.stop(httpd);
      await group.exec(p2.shortName, ['rm', '-rf', dir]);
    }
  });
  await check(`iperf3 ${p1.shortName} → ${p2.shortName}, 3 s`, async () => {
    const server = group.spawn(p2.shortName, ['iperf3', '-s', '-1']);
    try {
      await waitFor(
        async () =>
          (await group.exec(p2.shortName, ['ss', '-ltn'], { allowFail: true })).stdout.includes(':5201'),
        5000,
        'iperf3 server did not start',
      );
      const out = await group.exec(p1.shortName, ['iperf3', '-c', p2.ip, '-t', '3', '-J'], {
        timeoutMs: 30_000,
      });
      const end = JSON.parse(out.stdout).end;
      return `${(end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s, ${end.sum_sent.retransmits} retransmits`;
    } finally {
      await group.stop(server);
    }
  });

  say('');
  say(`• agent status on ${n1.shortName}`);
  say(renderStatus(await (agents[0] as AgentProcess).status()));
  const failed = checks.filter((c) => !c.ok);
  say(`${checks.length - failed.length} passed, ${failed.length} failed`);
  if (keep) {
    say(
      `kept: namespaces ${group.prefix}-*; try "ip netns exec ${p1.ns} ping ${p2.ip}". Ctrl-C removes them.`,
    );
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
  process.exitCode = failed.length === 0 ? 0 : 1;
} finally {
  await group.destroy();
}

import '../../src/util/polyfill.js';
import { randomBytes } from 'node:crypto';
import { renderStatus, table } from '../../src/api/status-view.js';
import { type AgentProcess, startAgentOn } from '../../test/helpers/agent.js';
import { NetnsGroup } from '../../test/helpers/netns.js';
import { downloadSha256, iperf3, serveFile } from '../../test/helpers/services.js';
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
  say('weft lab: two nodes, one pod each');
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
    const served = await serveFile(group, p2.shortName, p2.ip, randomBytes(8 * 1024 * 1024), 80);
    try {
      const started = Date.now();
      const sha256 = await downloadSha256(group, p1.shortName, served.url);
      if (sha256 !== served.sha256) throw new Error('the download does not match what was served');
      return `8 MiB in ${Date.now() - started} ms, SHA-256 matches`;
    } finally {
      await served.stop();
    }
  });
  await check(`iperf3 ${p1.shortName} → ${p2.shortName}, 3 s`, async () => {
    const end = await iperf3(group, p2.shortName, p1.shortName, p2.ip);
    return `${(end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s, ${end.sum_sent.retransmits ?? 0} retransmits`;
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

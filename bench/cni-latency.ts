import '../src/util/polyfill.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { postToAgent } from '../src/api/admin-client.js';
import { REFERENCE_PLUGIN_DIR } from '../src/lab/cni.js';
import { concurrencyLimit } from '../src/util/concurrency-limit.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { type Attachment, CniRuntime, weftConflist, weftExecutable } from '../test/helpers/cni.js';
import { NetnsGroup } from '../test/helpers/netns.js';
import { parsePidStatTicks, percentile, withLock } from './measure.js';
import { PluginRunner } from './plugin-runner.js';

/**
 * CNI ADD and DEL latency, weft against the reference bridge + host-local, in the same run on the
 * same node namespace, each plugin exec'd as a runtime does (CNI_* env + stdin) by one process
 * living in the node (bench/plugin-runner.ts). Then where weft's time goes: the bare process start (VERSION, which needs no
 * agent) and the agent's own work (the same ADD/DEL posted straight to its socket, no process).
 * CPU per operation (the plugin processes' plus the agent's, from /proc) is the number that
 * depends least on how loaded the machine is.
 *
 *   node dist/bench/cni-latency.js [--pods 50] [--rounds 3] [--concurrency 1,50] [--no-lock]
 *     [--agent-cpu-prof DIR]   (the agent's V8 CPU profile, written when it stops, into DIR)
 *     [--agent-only]           (only the agent's own work: ADD/DEL posted to its socket, no process exec)
 *
 * It takes /tmp/cpu-bench.lock itself while measuring: do not wrap it in `flock` on the same file.
 */
const { values } = parseArgs({
  options: {
    pods: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '1,50' },
    'no-lock': { type: 'boolean' },
    'agent-cpu-prof': { type: 'string' },
    'agent-only': { type: 'boolean' },
  },
});
const PODS = Number(values.pods);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = (values.concurrency ?? '').split(',').map(Number);
const AGENT_ONLY = values['agent-only'] === true;

type Op = (pod: Attachment) => Promise<unknown>;
interface Mode {
  name: string;
  add: Op;
  del: Op;
}
interface Stats {
  n: number;
  p50: number;
  p99: number;
}
interface Row {
  mode: string;
  op: string;
  concurrency: number;
  stats: Stats;
  /** CPU of plugin processes + agent per operation, ms. */
  cpuMsPerOp: number;
  /** CPU of the agent's main thread (its event loop) per operation, ms. */
  agentLoopCpuMsPerOp: number;
}

const CLOCK_TICKS_PER_MS = 0.1;
const AGENT_ONLY_MODE = 'weft agent only (no exec)';

/** A process's CPU and its reaped children's, in ticks. */
function cpuTicks(pid: number): number {
  return parsePidStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'), true);
}

function stats(samples: number[]): Stats {
  return { n: samples.length, p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

/** Runs `op` over every pod with at most `limit` in flight; returns each call's latency in ms. */
async function timed(pods: Attachment[], limit: number, op: Op): Promise<number[]> {
  const slot = concurrencyLimit(limit);
  return Promise.all(
    pods.map((pod) =>
      slot(async () => {
        const start = performance.now();
        await op(pod);
        return performance.now() - start;
      }),
    ),
  );
}

async function main(): Promise<void> {
  const group = await NetnsGroup.createAfterSweep('cnibench');
  try {
    const profDir = values['agent-cpu-prof'];
    const cluster = await TestCluster.create(
      group,
      1,
      profDir === undefined ? {} : { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] },
    );
    cluster.startAgent('n1');
    await cluster.waitUntilReady(['n1']);
    const node = cluster.node('n1');
    const nodeNs = group.ns('n1');
    const pods: Attachment[] = [];
    for (let i = 0; i < PODS; i++) {
      const ns = await group.addNamespace(`p${i}`);
      pods.push({
        containerId: `bench-${i}`,
        ifname: 'eth0',
        podNetns: `/run/netns/${ns}`,
        args: 'IgnoreUnknown=1',
      });
    }

    const runner = AGENT_ONLY ? undefined : PluginRunner.start(nodeNs);
    const call = (...args: Parameters<PluginRunner['call']>) => (runner as PluginRunner).call(...args);
    const weft = new CniRuntime(
      weftConflist('weftbench', { socket: node.socket, delQueueDir: join(node.stateDir, 'cni-del-queue') }),
      { weft: weftExecutable() },
      nodeNs,
      REFERENCE_PLUGIN_DIR,
      call,
    );
    const reference = new CniRuntime(
      {
        cniVersion: '1.0.0',
        name: 'refbench',
        plugins: [
          {
            type: 'bridge',
            bridge: 'refbr0',
            isGateway: true,
            ipMasq: false,
            ipam: {
              type: 'host-local',
              dataDir: join(cluster.workDir, 'host-local'),
              ranges: [[{ subnet: '10.200.0.0/16' }]],
              routes: [{ dst: '0.0.0.0/0' }],
            },
          },
        ],
      },
      { bridge: ['/usr/lib/cni/bridge'] },
      nodeNs,
      REFERENCE_PLUGIN_DIR,
      call,
    );
    const agentCall = (command: 'ADD' | 'DEL') => (pod: Attachment) =>
      postToAgent(node.socket, `/v1/cni/${command.toLowerCase()}`, {
        env: {
          CNI_COMMAND: command,
          CNI_CONTAINERID: pod.containerId,
          CNI_IFNAME: pod.ifname,
          CNI_NETNS: pod.podNetns,
        },
        config: { cniVersion: '1.0.0', name: 'weftbench', type: 'weft', socket: node.socket },
      });
    const version = (plugin: string[]) => () =>
      call({ plugin, env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"1.0.0"}' });
    const agentOnly: Mode = { name: AGENT_ONLY_MODE, add: agentCall('ADD'), del: agentCall('DEL') };
    const modes: Mode[] = AGENT_ONLY
      ? [agentOnly]
      : [
          { name: 'weft', add: (p) => weft.add(p), del: (p) => weft.del(p) },
          { name: 'bridge+host-local', add: (p) => reference.add(p), del: (p) => reference.del(p) },
          agentOnly,
        ];
    const processStart: Mode[] = AGENT_ONLY
      ? []
      : [
          {
            name: 'weft shim VERSION (process start)',
            add: version(weftExecutable()),
            del: async () => undefined,
          },
          {
            name: 'bridge VERSION (process start)',
            add: version(['/usr/lib/cni/bridge']),
            del: async () => undefined,
          },
        ];

    const agentPid = node.agent?.pid as number;
    /** CPU of the runner with the plugins it exec'd and of the agent (with its children). */
    const cpuNow = () => (runner === undefined ? 0 : cpuTicks(runner.pid)) + cpuTicks(agentPid);
    const loopCpuNow = () =>
      parsePidStatTicks(readFileSync(`/proc/${agentPid}/task/${agentPid}/stat`, 'utf8'));
    const cpu = new Map<string, { ticks: number; loopTicks: number; ops: number }>();
    const measured = async (mode: string, op: string, c: number, run: () => Promise<number[]>) => {
      const before = cpuNow();
      const loopBefore = loopCpuNow();
      const latencies = await run();
      const key = `${mode}|${op}|${c}`;
      const sum = cpu.get(key) ?? { ticks: 0, loopTicks: 0, ops: 0 };
      cpu.set(key, {
        ticks: sum.ticks + cpuNow() - before,
        loopTicks: sum.loopTicks + loopCpuNow() - loopBefore,
        ops: sum.ops + latencies.length,
      });
      record(mode, op, c, latencies);
    };
    const samples = new Map<string, number[]>();
    const record = (mode: string, op: string, c: number, values: number[]) => {
      const key = `${mode}|${op}|${c}`;
      samples.set(key, [...(samples.get(key) ?? []), ...values]);
    };
    const log = (m: string) => process.stderr.write(`${m}\n`);
    await withLock(values['no-lock'] ? null : '/tmp/cpu-bench.lock', log, async () => {
      for (const c of CONCURRENCY) {
        for (let round = 0; round < ROUNDS; round++) {
          // Alternate the order so that drift in the machine's load does not favour one mode.
          const ordered = round % 2 === 0 ? modes : [...modes].reverse();
          for (const mode of ordered) {
            await measured(mode.name, 'ADD', c, () => timed(pods, c, mode.add));
            await measured(mode.name, 'DEL', c, () => timed(pods, c, mode.del));
          }
          for (const mode of processStart)
            await measured(mode.name, 'exec', c, () => timed(pods, c, mode.add));
          log(`concurrency ${c}: round ${round + 1}/${ROUNDS} done`);
        }
      }
    });

    const rows: Row[] = [...samples].map(([key, values]) => {
      const [mode, op, c] = key.split('|') as [string, string, string];
      const used = cpu.get(key);
      const perOp = (ticks: number | undefined) =>
        used && used.ops > 0 && ticks !== undefined ? ticks / CLOCK_TICKS_PER_MS / used.ops : Number.NaN;
      return {
        mode,
        op,
        concurrency: Number(c),
        stats: stats(values),
        cpuMsPerOp: perOp(used?.ticks),
        agentLoopCpuMsPerOp: perOp(used?.loopTicks),
      };
    });
    printTable(rows);
    log(
      `load average during the run (1/5/15 min): ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `cni-latency-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        {
          pods: PODS,
          rounds: ROUNDS,
          agentOnly: AGENT_ONLY,
          load: loadavg(),
          rows,
          samples: Object.fromEntries(samples),
        },
        null,
        1,
      ),
    );
    log(`results: ${file}`);
    // A profile is written only when the agent exits by itself.
    await runner?.stop();
    if (profDir !== undefined) await cluster.stopAgent('n1');
  } finally {
    await group.destroy();
  }
}

function printTable(rows: Row[]): void {
  const find = (mode: string, op: string, c: number) =>
    rows.find((r) => r.mode === mode && r.op === op && r.concurrency === c)?.stats;
  const ms = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1));
  const ms2 = (v: number) => v.toFixed(2);
  const cpuOf = (mode: string, op: string, c: number) =>
    rows.find((r) => r.mode === mode && r.op === op && r.concurrency === c)?.cpuMsPerOp;
  const lines: string[] = [];
  if (!AGENT_ONLY)
    lines.push(
      '| op | concurrent | weft p50 ms | weft p99 ms | bridge+host-local p50 ms | p99 ms | weft/ref p50 | weft/ref p99 | CPU ms/op weft | ref |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
  for (const c of AGENT_ONLY ? [] : CONCURRENCY) {
    for (const op of ['ADD', 'DEL']) {
      const w = find('weft', op, c);
      const r = find('bridge+host-local', op, c);
      lines.push(
        `| ${op} | ${c} | ${ms(w?.p50)} | ${ms(w?.p99)} | ${ms(r?.p50)} | ${ms(r?.p99)} | ${
          w && r ? (w.p50 / r.p50).toFixed(2) : '-'
        } | ${w && r ? (w.p99 / r.p99).toFixed(2) : '-'} | ${ms(cpuOf('weft', op, c))} | ${ms(
          cpuOf('bridge+host-local', op, c),
        )} |`,
      );
    }
  }
  lines.push(
    '',
    '| where the time goes | op | concurrent | p50 ms | p99 ms | CPU ms/op | of it the agent’s event loop |',
    '|---|---|---|---|---|---|---|',
  );
  for (const row of rows.filter((r) => r.mode !== 'weft' && r.mode !== 'bridge+host-local'))
    lines.push(
      `| ${row.mode} | ${row.op} | ${row.concurrency} | ${ms(row.stats.p50)} | ${ms(row.stats.p99)} | ${ms(row.cpuMsPerOp)} | ${ms2(row.agentLoopCpuMsPerOp)} |`,
    );
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();

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
import {
  type Attachment,
  CniRuntime,
  type ConfList,
  type PluginCall,
  weftConflist,
  weftExecutable,
} from '../test/helpers/cni.js';
import { NetnsGroup } from '../test/helpers/netns.js';
import { parsePidStatTicks, percentile, withLock } from './measure.js';
import { type PluginExec, PluginRunner, RUNNER_KINDS, type RunnerKind } from './plugin-runner.js';

/**
 * CNI ADD and DEL latency, weft against the reference bridge + host-local, in the same run on the
 * same node namespace, each plugin exec'd as a runtime does (CNI_* env + stdin) by one process
 * living in the node (bench/plugin-runner.ts). A plugin operation's latency is what that runner
 * measured from just before its spawn to the plugin's exit and EOF, summed over the plugins the
 * operation exec'd: a runtime's timing points, the same for weft and the reference. Then where
 * weft's time goes: the bare process start (VERSION, which needs no agent) and the agent's own work
 * (the same ADD/DEL posted straight to its socket, no process, timed here). CPU per operation (the
 * plugin processes' plus the agent's, from /proc) is the number that depends least on how loaded
 * the machine is.
 *
 *   node dist/bench/cni-latency.js [--pods 50] [--rounds 3] [--concurrency 1,50] [--no-lock]
 *     [--runner spawn|node|spawn,node]   (spawn: posix_spawn from C, as Go runtimes exec; node: fork
 *                                         from a Node process; both: interleaved in one run)
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
    runner: { type: 'string', default: 'spawn' },
    'agent-cpu-prof': { type: 'string' },
    'agent-only': { type: 'boolean' },
  },
});
const PODS = Number(values.pods);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = (values.concurrency ?? '').split(',').map(Number);
const AGENT_ONLY_RUN = values['agent-only'] === true;
const RUNNERS = AGENT_ONLY_RUN ? [] : ((values.runner ?? '').split(',') as RunnerKind[]);
for (const kind of RUNNERS)
  if (!RUNNER_KINDS.includes(kind))
    throw new Error(`--runner: ${kind} is not one of ${RUNNER_KINDS.join(', ')}`);

/** One operation on a pod; resolves to its latency in ms. */
type Op = (pod: Attachment) => Promise<number>;
type Exec = (call: PluginCall) => Promise<PluginExec>;
/** One row of the tables: an operation of a mode, through a runner ('-' for no exec). */
interface Measurement {
  runner: string;
  mode: string;
  op: string;
  run: Op;
}
const AGENT_ONLY = 'weft agent only (no exec)';
interface Stats {
  n: number;
  p50: number;
  p99: number;
}
interface Row {
  /** The plugin runner, or '-' for modes that exec nothing. */
  runner: string;
  mode: string;
  op: string;
  concurrency: number;
  stats: Stats;
  /** The same operations timed here: for exec modes, with the runner's queue and its pipes. */
  roundTrip: Stats;
  /** CPU of plugin processes + agent per operation, ms. */
  cpuMsPerOp: number;
  /** CPU of the agent's main thread (its event loop) per operation, ms. */
  agentLoopCpuMsPerOp: number;
}

const CLOCK_TICKS_PER_MS = 0.1;

/** A process's CPU and its reaped children's, in ticks. */
function cpuTicks(pid: number): number {
  return parsePidStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'), true);
}

function stats(samples: number[]): Stats {
  return { n: samples.length, p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}

/**
 * Runs `op` over every pod with at most `limit` in flight; returns each call's latency and its
 * round trip as seen here (with the runner's queueing and the pipes), in ms.
 */
async function timed(
  pods: Attachment[],
  limit: number,
  op: Op,
): Promise<{ latency: number; roundTrip: number }[]> {
  const slot = concurrencyLimit(limit);
  return Promise.all(
    pods.map((pod) =>
      slot(async () => {
        const start = performance.now();
        const latency = await op(pod);
        return { latency, roundTrip: performance.now() - start };
      }),
    ),
  );
}

/** Latency measured here, for what execs nothing. */
function wallClock(op: (pod: Attachment) => Promise<unknown>): Op {
  return async (pod) => {
    const start = performance.now();
    await op(pod);
    return performance.now() - start;
  };
}

/** Latency as the runner measured it, summed over the plugins one operation exec'd. */
function execClock(exec: Exec, op: (exec: Exec, pod: Attachment) => Promise<unknown>): Op {
  return async (pod) => {
    let ms = 0;
    await op(async (call) => {
      const outcome = await exec(call);
      ms += outcome.execMs;
      return outcome;
    }, pod);
    return ms;
  };
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

    const runtime =
      (conflist: ConfList, executables: Record<string, string[]>) =>
      (exec: Exec): CniRuntime =>
        new CniRuntime(conflist, executables, nodeNs, REFERENCE_PLUGIN_DIR, exec);
    const weft = runtime(
      weftConflist('weftbench', { socket: node.socket, delQueueDir: join(node.stateDir, 'cni-del-queue') }),
      { weft: weftExecutable() },
    );
    const reference = runtime(
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
    );
    const runners = RUNNERS.map((kind) => PluginRunner.start(kind, nodeNs));
    const agentCall = (command: 'ADD' | 'DEL') =>
      wallClock((pod) =>
        postToAgent(node.socket, `/v1/cni/${command.toLowerCase()}`, {
          env: {
            CNI_COMMAND: command,
            CNI_CONTAINERID: pod.containerId,
            CNI_IFNAME: pod.ifname,
            CNI_NETNS: pod.podNetns,
          },
          config: { cniVersion: '1.0.0', name: 'weftbench', type: 'weft', socket: node.socket },
        }),
      );
    const pluginModes = (runner: PluginRunner): Measurement[][] =>
      [
        { mode: 'weft', runtime: weft },
        { mode: 'bridge+host-local', runtime: reference },
      ].map(({ mode, runtime }) => [
        { runner: runner.kind, mode, op: 'ADD', run: execClock(runner.call, (e, p) => runtime(e).add(p)) },
        { runner: runner.kind, mode, op: 'DEL', run: execClock(runner.call, (e, p) => runtime(e).del(p)) },
      ]);
    const agentOnly: Measurement[] = [
      { runner: '-', mode: AGENT_ONLY, op: 'ADD', run: agentCall('ADD') },
      { runner: '-', mode: AGENT_ONLY, op: 'DEL', run: agentCall('DEL') },
    ];
    const processStart = (runner: PluginRunner): Measurement[] =>
      [
        { mode: 'weft shim VERSION (process start)', plugin: weftExecutable() },
        { mode: 'bridge VERSION (process start)', plugin: ['/usr/lib/cni/bridge'] },
      ].map(({ mode, plugin }) => ({
        runner: runner.kind,
        mode,
        op: 'exec',
        run: async () =>
          (await runner.call({ plugin, env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"1.0.0"}' }))
            .execMs,
      }));
    const addDelGroups = [...runners.flatMap(pluginModes), agentOnly];

    const agentPid = node.agent?.pid as number;
    /** CPU of the runners with the plugins they exec'd and of the agent (with its children). */
    const cpuNow = () => runners.reduce((sum, r) => sum + cpuTicks(r.pid), cpuTicks(agentPid));
    const loopCpuNow = () =>
      parsePidStatTicks(readFileSync(`/proc/${agentPid}/task/${agentPid}/stat`, 'utf8'));
    const cpu = new Map<string, { ticks: number; loopTicks: number; ops: number }>();
    const samples = new Map<string, number[]>();
    const roundTrips = new Map<string, number[]>();
    const measure = async (m: Measurement, c: number) => {
      const before = cpuNow();
      const loopBefore = loopCpuNow();
      const results = await timed(pods, c, m.run);
      const key = [m.runner, m.mode, m.op, c].join('|');
      const sum = cpu.get(key) ?? { ticks: 0, loopTicks: 0, ops: 0 };
      cpu.set(key, {
        ticks: sum.ticks + cpuNow() - before,
        loopTicks: sum.loopTicks + loopCpuNow() - loopBefore,
        ops: sum.ops + results.length,
      });
      samples.set(key, [...(samples.get(key) ?? []), ...results.map((r) => r.latency)]);
      roundTrips.set(key, [...(roundTrips.get(key) ?? []), ...results.map((r) => r.roundTrip)]);
    };
    const log = (m: string) => process.stderr.write(`${m}\n`);
    await withLock(values['no-lock'] ? null : '/tmp/cpu-bench.lock', log, async () => {
      log(`runners: ${RUNNERS.join(', ')}; load average ${loadavg()[0]?.toFixed(2)} at the start`);
      for (const c of CONCURRENCY) {
        for (let round = 0; round < ROUNDS; round++) {
          // Alternate the order so that drift in the machine's load favours no mode and no runner.
          const ordered = round % 2 === 0 ? addDelGroups : [...addDelGroups].reverse();
          for (const group of ordered) for (const m of group) await measure(m, c);
          for (const m of runners.flatMap(processStart)) await measure(m, c);
          log(`concurrency ${c}: round ${round + 1}/${ROUNDS} done`);
        }
      }
    });

    const rows: Row[] = [...samples].map(([key, values]) => {
      const [runner, mode, op, c] = key.split('|') as [string, string, string, string];
      const used = cpu.get(key);
      const perOp = (ticks: number | undefined) =>
        used && used.ops > 0 && ticks !== undefined ? ticks / CLOCK_TICKS_PER_MS / used.ops : Number.NaN;
      return {
        runner,
        mode,
        op,
        concurrency: Number(c),
        stats: stats(values),
        roundTrip: stats(roundTrips.get(key) ?? []),
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
          runners: RUNNERS,
          agentOnly: AGENT_ONLY_RUN,
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
    await Promise.all(runners.map((r) => r.stop()));
    if (profDir !== undefined) await cluster.stopAgent('n1');
  } finally {
    await group.destroy();
  }
}

const RUNNER_NOTES: Record<RunnerKind, string> = {
  spawn: 'posix_spawn from a small C process (bench/runner/cni-runner.c), as Go runtimes exec',
  node: 'child_process.spawn (fork) from a Node process: exec cost of a big parent',
};

function printTable(rows: Row[]): void {
  const find = (runner: string, mode: string, op: string, c: number) =>
    rows.find((r) => r.runner === runner && r.mode === mode && r.op === op && r.concurrency === c);
  const ms = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1));
  const lines: string[] = [];
  for (const runner of RUNNERS) {
    lines.push(
      `runner: ${runner}, ${RUNNER_NOTES[runner]}; latency from the runner (spawn → exit + EOF)`,
      '',
      '| runner | op | concurrent | weft p50 ms | weft p99 ms | bridge+host-local p50 ms | p99 ms | weft/ref p50 | weft/ref p99 | CPU ms/op weft | ref | round trip p99 ms weft / ref |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const c of CONCURRENCY) {
      for (const op of ['ADD', 'DEL']) {
        const w = find(runner, 'weft', op, c);
        const r = find(runner, 'bridge+host-local', op, c);
        const ratio = (of: (s: Stats) => number) => (w && r ? (of(w.stats) / of(r.stats)).toFixed(2) : '-');
        lines.push(
          `| ${runner} | ${op} | ${c} | ${ms(w?.stats.p50)} | ${ms(w?.stats.p99)} | ${ms(r?.stats.p50)} | ${ms(
            r?.stats.p99,
          )} | ${ratio((s) => s.p50)} | ${ratio((s) => s.p99)} | ${ms(w?.cpuMsPerOp)} | ${ms(r?.cpuMsPerOp)} | ${ms(
            w?.roundTrip.p99,
          )} / ${ms(r?.roundTrip.p99)} |`,
        );
      }
    }
    lines.push('');
  }
  lines.push(
    '| where the time goes | runner | op | concurrent | p50 ms | p99 ms | CPU ms/op | of it the agent’s event loop | round trip here p50 / p99 ms |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const row of rows.filter((r) => r.mode !== 'weft' && r.mode !== 'bridge+host-local'))
    lines.push(
      `| ${row.mode} | ${row.runner} | ${row.op} | ${row.concurrency} | ${ms(row.stats.p50)} | ${ms(
        row.stats.p99,
      )} | ${ms(row.cpuMsPerOp)} | ${row.agentLoopCpuMsPerOp.toFixed(2)} | ${ms(row.roundTrip.p50)} / ${ms(
        row.roundTrip.p99,
      )} |`,
    );
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();

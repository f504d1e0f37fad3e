// Convergence benchmark for the gossip layer: N agent processes (bench/gossip-agent.ts) on loopback
// addresses 127.0.1.x, all on port 6783 like real nodes, each told only the first node's address.
// Reports the time from the last process start until every node sees every other node reachable,
// then RSS and CPU per process from /proc over an idle window.
//
//   npm run build && node dist/bench/gossip-convergence.js [--sizes 5,10,20] [--heartbeat-ms 5000] [--idle-s 15] [--settle-s 5]
import { type ChildProcess, fork } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AgentReport } from './gossip-agent.js';
import { parsePidStatTicks, percentile } from './measure.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '5,10,20' },
    'heartbeat-ms': { type: 'string', default: '5000' },
    'timeout-ms': { type: 'string' },
    'idle-s': { type: 'string', default: '15' },
    'settle-s': { type: 'string', default: '5' },
    'converge-limit-s': { type: 'string', default: '60' },
    port: { type: 'string', default: '6783' },
    degree: { type: 'string' },
    'min-peers': { type: 'string' },
    mesh: { type: 'string' },
  },
});
const sizes = (args.sizes ?? '').split(',').map(Number);
const heartbeatMs = Number(args['heartbeat-ms']);
const timeoutMs = Number(args['timeout-ms'] ?? heartbeatMs * 4);
const port = Number(args.port);
const agentEntry = fileURLToPath(new URL('./gossip-agent.js', import.meta.url));
const CLOCK_TICKS = 100; // USER_HZ on Linux

interface Agent {
  name: string;
  child: ChildProcess;
  spawnedAtMs: number;
  startedAtMs?: number;
  reachable: number;
  stats?: Extract<AgentReport, { type: 'stats' }>;
}

interface RunResult {
  nodes: number;
  heartbeatMs: number;
  converged: boolean;
  lastStartToConvergedMs: number | null;
  lastSpawnToConvergedMs: number | null;
  clusterCpuSecondsToConverge: number;
  spawnToListeningMsP50: number;
  spawnToListeningMsMax: number;
  rssMbP50: number;
  rssMbMax: number;
  idleCpuPctP50: number;
  idleCpuPctMax: number;
  connectionsP50: number;
  droppedRecords: Record<string, number>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function cpuTicks(pid: number): Promise<number> {
  return parsePidStatTicks(await readFile(`/proc/${pid}/stat`, 'utf8'));
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

async function run(n: number): Promise<RunResult> {
  const root = await mkdtemp(join(tmpdir(), 'weft-gossip-bench-'));
  const address = (i: number) => `127.0.1.${i + 1}`;
  const agents: Agent[] = [];
  let convergedAtMs: number | undefined;
  const allConverged = () => agents.length === n && agents.every((agent) => agent.reachable === n - 1);

  for (let i = 0; i < n; i++) {
    const stateDir = join(root, `node-${i}`);
    await mkdir(stateDir);
    const config = {
      nodeName: `node-${i}`,
      listenAddress: address(i),
      listenPort: port,
      stateDir,
      peers: i === 0 ? [] : [`${address(0)}:${port}`],
      heartbeatIntervalMs: heartbeatMs,
      peerTimeoutMs: timeoutMs,
      backoff: { initialMs: 250, maxMs: 2_000 },
      ...(args.degree === undefined ? {} : { targetDegree: Number(args.degree) }),
      ...(args['min-peers'] === undefined ? {} : { minConnectedPeers: Number(args['min-peers']) }),
      ...(args.mesh === undefined ? {} : { mesh: meshFromArg(args.mesh) }),
    };
    const agent: Agent = {
      name: config.nodeName,
      child: fork(agentEntry, [JSON.stringify(config)], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        // WEFT_BENCH_NODE_ARGS adds node flags to every agent; WEFT_BENCH_PROFILE=<dir> CPU-profiles node-1.
        execArgv: [
          ...(process.env.WEFT_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
          ...(process.env.WEFT_BENCH_PROFILE && i === 1
            ? ['--cpu-prof', `--cpu-prof-dir=${process.env.WEFT_BENCH_PROFILE}`]
            : []),
        ],
      }),
      spawnedAtMs: Date.now(),
      reachable: 0,
    };
    agent.child.on('message', (message: AgentReport) => {
      if (message.type === 'started') agent.startedAtMs = message.atMs;
      else if (message.type === 'peers') {
        agent.reachable = message.reachable;
        if (convergedAtMs === undefined && allConverged()) convergedAtMs = message.atMs;
      } else if (message.type === 'stats') agent.stats = message;
    });
    agents.push(agent);
  }
  const lastSpawnMs = Math.max(...agents.map((agent) => agent.spawnedAtMs));

  const limitMs = Number(args['converge-limit-s']) * 1000;
  while (convergedAtMs === undefined && Date.now() - lastSpawnMs < limitMs) await sleep(20);
  const pids = agents.map((agent) => agent.child.pid as number);
  // CPU the whole cluster burned from spawn to convergence: shows whether start-up was CPU bound.
  const convergeCpuSeconds = (await Promise.all(pids.map(cpuTicks))).reduce((a, b) => a + b, 0) / CLOCK_TICKS;
  const allStarted = agents.every((agent) => agent.startedAtMs !== undefined);
  const lastStartMs = allStarted
    ? Math.max(...agents.map((agent) => agent.startedAtMs as number))
    : undefined;

  await sleep(Number(args['settle-s']) * 1000);
  const ticksBefore = await Promise.all(pids.map(cpuTicks));
  const idleStart = performance.now();
  await sleep(Number(args['idle-s']) * 1000);
  const ticksAfter = await Promise.all(pids.map(cpuTicks));
  const idleSeconds = (performance.now() - idleStart) / 1000;
  const rss = await Promise.all(pids.map(rssMb));
  const cpuPct = pids.map(
    (_, i) => (((ticksAfter[i] ?? 0) - (ticksBefore[i] ?? 0)) / CLOCK_TICKS / idleSeconds) * 100,
  );
  for (const agent of agents) agent.child.send({ type: 'stats' });
  await sleep(500);

  await Promise.all(
    agents.map(
      (agent) =>
        new Promise<void>((resolve) => {
          if (agent.child.exitCode !== null) return resolve();
          const kill = setTimeout(() => agent.child.kill('SIGKILL'), 5_000);
          agent.child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          agent.child.kill('SIGTERM');
        }),
    ),
  );
  await rm(root, { recursive: true, force: true });

  const listening = agents.map((agent) => (agent.startedAtMs ?? Number.NaN) - agent.spawnedAtMs);
  const connections = agents.map((agent) => agent.stats?.connections ?? Number.NaN);
  return {
    nodes: n,
    heartbeatMs,
    converged: convergedAtMs !== undefined,
    lastStartToConvergedMs:
      convergedAtMs === undefined || lastStartMs === undefined
        ? null
        : Math.max(0, convergedAtMs - lastStartMs),
    lastSpawnToConvergedMs: convergedAtMs === undefined ? null : convergedAtMs - lastSpawnMs,
    clusterCpuSecondsToConverge: convergeCpuSeconds,
    spawnToListeningMsP50: percentile(listening, 0.5),
    spawnToListeningMsMax: Math.max(...listening),
    rssMbP50: percentile(rss, 0.5),
    rssMbMax: Math.max(...rss),
    idleCpuPctP50: percentile(cpuPct, 0.5),
    idleCpuPctMax: Math.max(...cpuPct),
    connectionsP50: percentile(connections, 0.5),
    droppedRecords: sumByReason(agents.map((agent) => agent.stats?.droppedRecords ?? {})),
  };
}

/** `--mesh D,Dlo,Dhi` */
function meshFromArg(value: string): { D: number; Dlo: number; Dhi: number } {
  const [D, Dlo, Dhi] = value.split(',').map(Number);
  return { D: D ?? 6, Dlo: Dlo ?? 4, Dhi: Dhi ?? 12 };
}

function sumByReason(counts: Record<string, number>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const count of counts) {
    for (const [reason, n] of Object.entries(count)) if (n > 0) total[reason] = (total[reason] ?? 0) + n;
  }
  return total;
}

const results: RunResult[] = [];
for (const n of sizes) {
  process.stderr.write(`running N=${n}...\n`);
  results.push(await run(n));
}

const fmt = (value: number | null, digits = 0) =>
  value === null || Number.isNaN(value) ? '—' : value.toFixed(digits);
const header = [
  'N',
  'hb ms',
  'conv',
  'last start→all ms',
  'last spawn→all ms',
  'cluster CPU s',
  'spawn→listen p50/max ms',
  'RSS p50/max MB',
  'idle CPU % p50/max',
  'conns p50',
  'dropped',
];
const rows = results.map((r) => [
  String(r.nodes),
  String(r.heartbeatMs),
  r.converged ? 'yes' : 'NO',
  fmt(r.lastStartToConvergedMs),
  fmt(r.lastSpawnToConvergedMs),
  fmt(r.clusterCpuSecondsToConverge, 1),
  `${fmt(r.spawnToListeningMsP50)}/${fmt(r.spawnToListeningMsMax)}`,
  `${fmt(r.rssMbP50)}/${fmt(r.rssMbMax)}`,
  `${fmt(r.idleCpuPctP50, 2)}/${fmt(r.idleCpuPctMax, 2)}`,
  fmt(r.connectionsP50),
  Object.entries(r.droppedRecords)
    .map(([reason, n]) => `${reason}:${n}`)
    .join(' ') || '0',
]);
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const row of rows) console.log(line(row));
const json = JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2);
console.log(json);
const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
await mkdir(resultsDir, { recursive: true });
await writeFile(join(resultsDir, `gossip-convergence-${Date.now()}.json`), json);

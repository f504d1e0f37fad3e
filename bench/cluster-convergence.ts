import '../src/util/polyfill.js';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { notReadyReason } from '../src/lab/readiness.js';
import { waitFor } from '../test/helpers/agent.js';
import { TestCluster } from '../test/helpers/cluster.js';
import { NetnsGroup } from '../test/helpers/netns.js';
import {
  DEFAULT_MEASURE_OPTIONS,
  parsePidStatTicks,
  percentile,
  rssMb,
  waitForQuietMachine,
  withLock,
} from './measure.js';

/**
 * Real agents (data plane, gossip and IPAM) in N node namespaces on one switch, all started at
 * once with every other node's address: the time from the last agent's start (answering on its
 * admin socket) until every agent knows every peer as reachable and owns space, then RSS and idle
 * CPU per agent. Boot time of all N processes on the shared cores is reported separately.
 *
 * Agents run with the agent's default heartbeat and peer timeout unless given here; TestCluster's
 * test settings (500 ms / 3 s) would cost each agent CPU in proportion to N and made 20 agents on
 * 2 cores flap.
 *
 *   node dist/bench/cluster-convergence.js [--sizes 5,10,20] [--settle-s 10] [--idle-s 20]
 *     [--heartbeat-ms MS] [--peer-timeout-ms MS] [--seeds K] [--keep-logs DIR]
 *     [--agent-flag=--log-level --agent-flag=debug …] [--node-flag=--cpu-prof …]
 */
const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '5,10,20' },
    'settle-s': { type: 'string', default: '10' },
    'idle-s': { type: 'string', default: '20' },
    'heartbeat-ms': { type: 'string' },
    'peer-timeout-ms': { type: 'string' },
    /** Give each agent only the first K nodes' addresses (0: every other node, as by default). */
    seeds: { type: 'string', default: '0' },
    /** Copy every agent's log to DIR/<size>/ before the namespaces go. */
    'keep-logs': { type: 'string' },
    /** One more argument for every `agent run` (repeat it). */
    'agent-flag': { type: 'string', multiple: true, default: [] },
    /** One more Node flag for every agent (repeat it). */
    'node-flag': { type: 'string', multiple: true, default: [] },
  },
});
const sizes = (values.sizes ?? '').split(',').map(Number);
const idleSeconds = Number(values['idle-s']);
const settleSeconds = Number(values['settle-s']);
const CLOCK_TICKS = 100;

interface Row {
  agents: number;
  /** How busy the machine was (percent of all cores) just before the agents started, and its load average. */
  preBusyPct: number;
  loadAvg1: number;
  /** From spawning all agents at once until the last one answers: 2 cores loading N Node processes. */
  bootSec: number | null;
  convergedSec: number | null;
  /** CPU time of all agents together from the last start until converged: the work, whatever the wall clock. */
  convergeCpuSec: number | null;
  rssMbMedian: number;
  rssMbMax: number;
  idleCpuPctMedian: number;
  idleCpuPctMax: number;
}

function cpuTicks(pid: number): number {
  return parsePidStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

const log = (message: string) => console.error(`[conv] ${message}`);

/**
 * TestCluster.waitUntilReady (every agent ready in one sweep of status calls), logging each time the
 * number of agents not ready changes, with one reason: where the last seconds go.
 */
async function waitUntilConverged(cluster: TestCluster, since: number): Promise<void> {
  const names = cluster.nodes.map((n) => n.name);
  let notReadyBefore = -1;
  await waitFor(
    async () => {
      const statuses = await Promise.all(names.map((name) => cluster.status(name).catch((e: Error) => e)));
      const reasons = statuses
        .map((status, i) =>
          status instanceof Error
            ? `${names[i]}: ${status.message}`
            : notReadyReason(names[i] as string, status, names),
        )
        .filter((reason) => reason !== '');
      if (reasons.length !== notReadyBefore) {
        notReadyBefore = reasons.length;
        log(
          `  +${((Date.now() - since) / 1000).toFixed(1)} s: ${reasons.length} not ready ${reasons[0] ?? ''}`,
        );
      }
      return reasons.length === 0;
    },
    120_000,
    'cluster not ready after 120 s',
  );
}

function optionalFlag(flag: string, value: string | undefined): string[] {
  return value === undefined ? [] : [flag, value];
}

async function measure(size: number): Promise<Row> {
  await NetnsGroup.sweepStale('wt-conv');
  // Waits for other benchmarks' load to pass (at most 90 s): 20 agents booting need both cores.
  const preBusyPct = await waitForQuietMachine({ ...DEFAULT_MEASURE_OPTIONS, quietPct: 25, log });
  const loadAvg1 = loadavg()[0] as number;
  const group = NetnsGroup.create('conv');
  try {
    const cluster = await TestCluster.create(group, size, {
      fastHeartbeat: false,
      agentFlags: [
        ...optionalFlag('--heartbeat-ms', values['heartbeat-ms']),
        ...optionalFlag('--peer-timeout-ms', values['peer-timeout-ms']),
        ...(values['agent-flag'] ?? []),
      ],
      nodeFlags: values['node-flag'] ?? [],
    });
    const seeds = Number(values.seeds);
    for (const node of cluster.nodes) {
      const peers =
        seeds > 0
          ? cluster.nodes
              .slice(0, seeds + 1)
              .filter((n) => n !== node)
              .slice(0, seeds)
              .map((n) => n.underlayIp)
          : undefined;
      cluster.startAgent(node.name, [], peers);
    }
    const spawned = Date.now();
    let convergedSec: number | null = null;
    let convergeCpuSec: number | null = null;
    let bootSec: number | null = null;
    const agentPids = () => cluster.nodes.map((n) => n.agent?.pid as number);
    const totalTicks = () => agentPids().reduce((sum, pid) => sum + cpuTicks(pid), 0);
    try {
      // "Started" = answering on its admin socket: node and libp2p loaded, devices and listener up.
      await Promise.all(
        cluster.nodes.map((n) =>
          waitFor(
            () =>
              cluster.status(n.name).then(
                () => true,
                () => false,
              ),
            120_000,
            `${n.name} never started`,
            50,
          ),
        ),
      );
      const lastStarted = Date.now();
      const ticksAtStart = totalTicks();
      bootSec = (lastStarted - spawned) / 1000;
      await waitUntilConverged(cluster, lastStarted);
      convergedSec = (Date.now() - lastStarted) / 1000;
      convergeCpuSec = (totalTicks() - ticksAtStart) / CLOCK_TICKS;
    } catch (error) {
      console.error(`[conv] ${size} agents did not converge: ${(error as Error).message.split('\n')[0]}`);
    }
    // Connection tie-breaks and the first ring gossip settle in the seconds after convergence.
    await new Promise((r) => setTimeout(r, settleSeconds * 1000));
    const pids = agentPids();
    const before = pids.map(cpuTicks);
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const cpu = pids.map(
      (pid, i) => ((cpuTicks(pid) - (before[i] as number)) / CLOCK_TICKS / idleSeconds) * 100,
    );
    const rss = pids.map(rssMb);
    const established = await Promise.all(
      cluster.nodes.map((n) =>
        cluster.status(n.name).then(
          (status) => status.controlPlane?.connections.filter((c) => c.state === 'established').length ?? 0,
          () => 0,
        ),
      ),
    );
    const logs = cluster.nodes.map((n) => cluster.log(n.name));
    const keepDir = values['keep-logs'];
    if (keepDir !== undefined) {
      mkdirSync(`${keepDir}/${size}`, { recursive: true });
      for (const n of cluster.nodes) cpSync(n.logFile, `${keepDir}/${size}/${n.name}.log`);
    }
    const count = (text: string) => logs.reduce((sum, log) => sum + log.split(text).length - 1, 0);
    // Reachability flaps (a peer timing out and coming back) show an overloaded cluster.
    console.error(`[conv] ${size} agents: ${count('"peer unreachable"')} peer-unreachable log lines in all`);
    // Every connection costs pings and gossipsub traffic at idle.
    console.error(
      `[conv] ${size} agents: established connections per agent p50 ${percentile(established, 0.5)}, max ${Math.max(...established)}`,
    );
    return {
      agents: size,
      preBusyPct,
      loadAvg1,
      bootSec,
      convergedSec,
      convergeCpuSec,
      rssMbMedian: percentile(rss, 0.5),
      rssMbMax: Math.max(...rss),
      idleCpuPctMedian: percentile(cpu, 0.5),
      idleCpuPctMax: Math.max(...cpu),
    };
  } finally {
    await group.destroy();
  }
}

const rows: Row[] = [];
// The lock the data-plane bench takes: two benchmarks on one box must not measure each other.
await withLock(DEFAULT_MEASURE_OPTIONS.lockFile, log, async () => {
  for (const size of sizes) {
    log(`${size} agents…`);
    rows.push(await measure(size));
  }
});
console.log(
  'agents  busy before %  load1  all started after s  converged s after that  agents CPU s meanwhile  RSS MB p50/max  idle CPU % p50/max',
);
for (const r of rows) {
  console.log(
    `${String(r.agents).padStart(6)}  ${r.preBusyPct.toFixed(0).padStart(13)}  ${r.loadAvg1.toFixed(1).padStart(5)}  ${(r.bootSec?.toFixed(1) ?? '-').padStart(19)}  ${(r.convergedSec?.toFixed(1) ?? 'no').padStart(22)}  ${(r.convergeCpuSec?.toFixed(1) ?? '-').padStart(21)}  ${r.rssMbMedian.toFixed(0).padStart(6)}/${r.rssMbMax.toFixed(0).padEnd(7)}  ${r.idleCpuPctMedian.toFixed(1).padStart(6)}/${r.idleCpuPctMax.toFixed(1)}`,
  );
}
console.log(JSON.stringify(rows));

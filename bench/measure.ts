/**
 * Pod-to-pod measurements in a two-node topology, with the method of the baselines notes
 * (/work/shared/notes/baselines.md): iperf3 TCP with 1 and 4 streams, UDP with 64-byte payloads
 * at unlimited rate, ping RTT (sparse, as the notes measure it, and with pings 1 ms apart), CPU of
 * given processes and of the machine; repetitions interleaved, medians reported, each test started
 * on a quiet machine, the whole measurement phase under a lock that other benchmarks on the machine
 * share.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../src/util/exec.js';
import type { NetnsGroup } from '../test/helpers/netns.js';
import type { TwoNodeTopology } from '../test/helpers/topology.js';

export type TestName = 'tcp1' | 'tcp4' | 'udp64' | 'ping' | 'ping-busy';
export const ALL_TESTS: readonly TestName[] = ['tcp1', 'tcp4', 'udp64', 'ping', 'ping-busy'];

export interface MeasureOptions {
  /** Seconds per iperf3 run. */
  durationSec: number;
  /** Repetitions of every test; the tests of one repetition run back to back. */
  reps: number;
  tests: readonly TestName[];
  pingCount: number;
  pingIntervalSec: number;
  /**
   * `ping-busy`: the same RTT with pings this close together, so that the processes on the path are
   * still running (or just went to sleep) when the next one comes, as under steady traffic.
   */
  busyPingCount: number;
  busyPingIntervalSec: number;
  /** File locked (flock) for the whole measurement phase; null to measure without it. */
  lockFile: string | null;
  /** Before each test, wait until the machine is at most this busy (percent of all cores)… */
  quietPct: number;
  /** …but no longer than this. */
  quietMaxWaitSec: number;
  iperfPort: number;
  log: (message: string) => void;
}

export const DEFAULT_MEASURE_OPTIONS: MeasureOptions = {
  durationSec: 10,
  reps: 3,
  tests: ALL_TESTS,
  pingCount: 20,
  pingIntervalSec: 0.2,
  busyPingCount: 500,
  busyPingIntervalSec: 0.001,
  lockFile: '/tmp/cpu-bench.lock',
  quietPct: 10,
  quietMaxWaitSec: 90,
  iperfPort: 5201,
  log: () => {},
};

/** Short runs for CI and smoke tests. */
export const QUICK_MEASURE_OPTIONS: Partial<MeasureOptions> = {
  durationSec: 2,
  reps: 1,
  pingCount: 10,
  pingIntervalSec: 0.05,
  busyPingCount: 100,
};

/** CPU time as a percentage of one core (so a machine with 2 cores has 200 %). */
export interface MachineCpu {
  user: number;
  system: number;
  softirq: number;
  idle: number;
  steal: number;
}

export interface CpuUsage {
  /** One entry per watched pid, in the order given. */
  processPct: number[];
  machine: MachineCpu;
}

interface SampleBase {
  /** Machine busy % (of all cores) when the test started. */
  preBusyPct: number;
  wallSec: number;
  cpu: CpuUsage;
}

export interface TcpSample extends SampleBase {
  /** Received at the server. */
  gbps: number;
  retransmits: number;
}

export interface UdpSample extends SampleBase {
  /** Packets that arrived (sent minus lost) per second. */
  deliveredPps: number;
  /** Packets the client sent per second. */
  offeredPps: number;
  lossPct: number;
}

export interface PingSample extends SampleBase {
  avgMs: number;
  medianMs: number;
  lossPct: number;
}

export interface MeasurementSamples {
  tcp1: TcpSample[];
  tcp4: TcpSample[];
  udp64: UdpSample[];
  ping: PingSample[];
  pingBusy: PingSample[];
}

/** Medians over the repetitions; null where a test did not run. */
export interface MeasurementSummary {
  tcp1Gbps: number | null;
  tcp4Gbps: number | null;
  tcp1Retransmits: number | null;
  udpDeliveredPps: number | null;
  udpOfferedPps: number | null;
  udpLossPct: number | null;
  pingAvgMs: number | null;
  pingMedianMs: number | null;
  /** `ping-busy`: pings 1 ms apart. */
  pingBusyMedianMs: number | null;
  /**
   * What TCP1 / TCP4 would carry if every core of the machine were busy at the cost per bit the run
   * measured (throughput × all cores' CPU / the CPU in use): the most any scheduling could get
   * without making a bit cheaper. See {@link cpuBoundGbps}.
   */
  tcp1CpuBoundGbps: number | null;
  tcp4CpuBoundGbps: number | null;
  /** Per watched pid during tcp1. */
  tcp1ProcessCpuPct: number[];
  tcp1MachineCpu: MachineCpu | null;
}

// ---------------------------------------------------------------- parsing ---

/** Nearest-rank percentile (p in 0..1): the smallest sample with at least p of them at or below. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

export function median(values: readonly number[]): number | null {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

interface IperfJson {
  error?: string;
  end?: {
    sum_sent?: { bits_per_second?: number; retransmits?: number; packets?: number; seconds?: number };
    sum_received?: { bits_per_second?: number; packets?: number; lost_packets?: number; seconds?: number };
  };
}

function parseIperfJson(stdout: string): IperfJson {
  let data: IperfJson;
  try {
    data = JSON.parse(stdout) as IperfJson;
  } catch (error) {
    throw new Error(`iperf3 printed no JSON: ${stdout.slice(0, 300)}`, { cause: error });
  }
  if (data.error !== undefined) throw new Error(`iperf3: ${data.error}`);
  return data;
}

function required(value: number | undefined, what: string): number {
  if (value === undefined || !Number.isFinite(value)) throw new Error(`iperf3 JSON lacks ${what}`);
  return value;
}

/** Throughput at the receiver and the sender's retransmits from `iperf3 -J` (TCP). */
export function parseIperfTcp(stdout: string): { gbps: number; retransmits: number } {
  const end = parseIperfJson(stdout).end;
  return {
    gbps: required(end?.sum_received?.bits_per_second, 'end.sum_received.bits_per_second') / 1e9,
    retransmits: required(end?.sum_sent?.retransmits, 'end.sum_sent.retransmits'),
  };
}

/** Delivered and offered packet rates from `iperf3 -u -J` (iperf3 ≥ 3.12 reports both sides). */
export function parseIperfUdp(stdout: string): { deliveredPps: number; offeredPps: number; lossPct: number } {
  const end = parseIperfJson(stdout).end;
  // The server counts packets by sequence number, so `packets` includes the lost ones.
  const counted = required(end?.sum_received?.packets, 'end.sum_received.packets');
  const lost = required(end?.sum_received?.lost_packets, 'end.sum_received.lost_packets');
  const receiveSec = required(end?.sum_received?.seconds, 'end.sum_received.seconds');
  const sent = required(end?.sum_sent?.packets, 'end.sum_sent.packets');
  const sendSec = required(end?.sum_sent?.seconds, 'end.sum_sent.seconds');
  return {
    deliveredPps: (counted - lost) / receiveSec,
    offeredPps: sent / sendSec,
    lossPct: counted > 0 ? (lost / counted) * 100 : 100,
  };
}

/** Average (from the summary line) and median (from the replies) RTT of iputils or busybox ping. */
export function parsePing(stdout: string): { avgMs: number; medianMs: number; lossPct: number } {
  const times = [...stdout.matchAll(/ time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const avg = /(?:rtt|round-trip) min\/avg\/max(?:\/mdev)? = [\d.]+\/([\d.]+)\//.exec(stdout)?.[1];
  const loss = /([\d.]+)% packet loss/.exec(stdout)?.[1];
  const medianMs = median(times);
  if (avg === undefined || loss === undefined || medianMs === null) {
    throw new Error(`no RTT in ping output: ${stdout.slice(-300)}`);
  }
  return { avgMs: Number(avg), medianMs, lossPct: Number(loss) };
}

/**
 * utime + stime in clock ticks from /proc/<pid>/stat (fields 14 and 15), plus cutime + cstime (the
 * reaped children's, fields 16 and 17) with `includeChildren`.
 */
export function parsePidStatTicks(stat: string, includeChildren = false): number {
  // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const own = Number(fields[11]) + Number(fields[12]);
  return includeChildren ? own + Number(fields[13]) + Number(fields[14]) : own;
}

/** Resident set size of a running process in MB (VmRSS of /proc/<pid>/status). */
export function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1]) / 1024;
}

/** The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal. */
export function parseProcStatCpu(stat: string): number[] {
  const line = stat.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) throw new Error('/proc/stat has no cpu line');
  return line.trim().split(/\s+/).slice(1, 9).map(Number);
}

/** Machine CPU split between two /proc/stat samples, in percent of one core. */
export function machineCpuBetween(
  before: readonly number[],
  after: readonly number[],
  cores: number,
): MachineCpu {
  const d = after.map((v, i) => v - (before[i] ?? 0));
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = d;
  const total = d.reduce((a, b) => a + b, 0) || 1;
  const pct = (ticks: number) => (ticks / total) * 100 * cores;
  return {
    user: pct(user + nice),
    system: pct(system),
    softirq: pct(irq + softirq),
    idle: pct(idle + iowait),
    steal: pct(steal),
  };
}

/**
 * The throughput a TCP sample would reach with all `cores` busy at its measured CPU cost per bit
 * (the whole machine's, not only the data plane's: pods, kernel and data plane share the cores).
 * Null when the sample's machine was idle or nothing was carried.
 */
export function cpuBoundGbps(sample: Pick<TcpSample, 'gbps' | 'cpu'>, cores: number): number | null {
  const m = sample.cpu.machine;
  const busy = m.user + m.system + m.softirq;
  return busy > 0 && sample.gbps > 0 ? (sample.gbps * cores * 100) / busy : null;
}

// ------------------------------------------------------------- sampling ---

const CORES = availableParallelism();
let clockTicksPerSec: number | undefined;

async function clockTicks(): Promise<number> {
  clockTicksPerSec ??= Number((await run(['getconf', 'CLK_TCK'])).stdout.trim()) || 100;
  return clockTicksPerSec;
}

async function processTicks(pid: number): Promise<number> {
  try {
    return parsePidStatTicks(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return Number.NaN;
  }
}

interface CpuSnapshot {
  at: number;
  machine: number[];
  processes: number[];
}

async function cpuSnapshot(pids: readonly number[]): Promise<CpuSnapshot> {
  return {
    at: performance.now(),
    machine: parseProcStatCpu(await readFile('/proc/stat', 'utf8')),
    processes: await Promise.all(pids.map(processTicks)),
  };
}

async function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): Promise<CpuUsage> {
  const wallSec = (after.at - before.at) / 1000;
  const hz = await clockTicks();
  return {
    processPct: after.processes.map(
      (t, i) => ((t - (before.processes[i] ?? Number.NaN)) / hz / wallSec) * 100,
    ),
    machine: machineCpuBetween(before.machine, after.machine, CORES),
  };
}

/** How busy the whole machine is, in percent of all cores, over one second. */
export async function machineBusyPct(): Promise<number> {
  const before = parseProcStatCpu(await readFile('/proc/stat', 'utf8'));
  await sleep(1000);
  const cpu = machineCpuBetween(before, parseProcStatCpu(await readFile('/proc/stat', 'utf8')), CORES);
  return 100 - cpu.idle / CORES;
}

/** Waits (at most `quietMaxWaitSec`) until the machine is below `quietPct` busy; returns the last reading. */
export async function waitForQuietMachine(opts: MeasureOptions): Promise<number> {
  const deadline = Date.now() + opts.quietMaxWaitSec * 1000;
  let busy = await machineBusyPct();
  while (busy > opts.quietPct && Date.now() < deadline) {
    opts.log(`  machine ${busy.toFixed(0)} % busy, waiting`);
    await sleep(2000);
    busy = await machineBusyPct();
  }
  return busy;
}

/** Runs one test with CPU accounting around it. */
async function sampled<T>(
  opts: MeasureOptions,
  pids: readonly number[],
  test: () => Promise<T>,
): Promise<T & SampleBase> {
  const preBusyPct = await waitForQuietMachine(opts);
  const before = await cpuSnapshot(pids);
  const result = await test();
  const after = await cpuSnapshot(pids);
  return {
    ...result,
    preBusyPct,
    wallSec: (after.at - before.at) / 1000,
    cpu: await cpuBetween(before, after),
  };
}

// ----------------------------------------------------------------- tests ---

/**
 * Holds an flock on `lockFile` while `body` runs. The util-linux flock tool runs `cat` once it has
 * the lock; `cat` echoing a line back shows the lock is held (flock's --verbose output is
 * block-buffered on a pipe and arrives only at exit), and closing its stdin releases the lock,
 * which also happens when this process dies.
 */
export async function withLock<T>(
  lockFile: string | null,
  log: (m: string) => void,
  body: () => Promise<T>,
): Promise<T> {
  if (lockFile === null) return body();
  const holder = spawn('flock', [lockFile, 'cat'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const waiting = setTimeout(() => log(`  waiting for ${lockFile} (another benchmark holds it)`), 2000);
  try {
    await new Promise<void>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      holder.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('locked\n')) resolve();
      });
      holder.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      holder.once('error', reject);
      holder.once('exit', (code) =>
        reject(new Error(`flock ${lockFile} exited (${code}): ${stderr.trim()}`)),
      );
      holder.stdin.write('locked\n');
    });
  } finally {
    clearTimeout(waiting);
  }
  try {
    return await body();
  } finally {
    if (holder.exitCode === null && holder.signalCode === null) {
      const exited = new Promise((resolve) => holder.once('exit', resolve));
      holder.stdin.end();
      await exited;
    }
  }
}

async function iperfClient(
  group: NetnsGroup,
  topo: TwoNodeTopology,
  opts: MeasureOptions,
  extra: string[],
): Promise<string> {
  const target = ['-c', topo.pods[1].ip, '-p', String(opts.iperfPort)];
  const argv = ['iperf3', ...target, '-t', String(opts.durationSec), '-J', ...extra];
  const timeoutMs = (opts.durationSec + 30) * 1000;
  for (let attempt = 1; ; attempt++) {
    const { stdout } = await group.exec(topo.pods[0].shortName, argv, { timeoutMs, allowFail: true });
    // The single-client server may still be finishing the previous test.
    if (attempt < 3 && /server is busy/.test(stdout)) {
      await sleep(1000);
      continue;
    }
    return stdout;
  }
}

async function startIperfServer(group: NetnsGroup, topo: TwoNodeTopology, opts: MeasureOptions) {
  const pod = topo.pods[1];
  // A tracked child rather than `-D`: PID 1 here is no init system and leaves orphans zombies for minutes.
  const server = group.spawn(pod.shortName, ['iperf3', '-s', '-B', pod.ip, '-p', String(opts.iperfPort)]);
  server.stdout?.resume();
  server.stderr?.resume();
  for (let i = 0; i < 100; i++) {
    const { stdout } = await group.exec(pod.shortName, ['ss', '-Hltn', 'sport', '=', `:${opts.iperfPort}`]);
    if (stdout.trim() !== '') return server;
    if (server.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`iperf3 server in ${pod.ns} did not start listening`);
}

/** One topology to measure: the pods of `topo`, the data-plane processes `pids` (if any). */
export interface MeasureTarget {
  /** Prefixes the progress lines when several targets are measured together. */
  name: string;
  group: NetnsGroup;
  topo: TwoNodeTopology;
  pids: readonly number[];
}

interface Session extends MeasureTarget {
  opts: MeasureOptions;
  samples: MeasurementSamples;
  label: string;
}

const TCP_STREAMS: Record<'tcp1' | 'tcp4', string[]> = { tcp1: [], tcp4: ['-P', '4'] };
const UDP_64_UNLIMITED = ['-u', '-l', '64', '-b', '0'];

async function measureOnce(
  { group, topo, pids, opts, samples, label: prefix }: Session,
  test: TestName,
  rep: number,
): Promise<void> {
  const label = `  ${prefix}${test} rep ${rep}:`;
  switch (test) {
    case 'tcp1':
    case 'tcp4': {
      const client = () => iperfClient(group, topo, opts, TCP_STREAMS[test]);
      const s = await sampled(opts, pids, async () => parseIperfTcp(await client()));
      samples[test].push(s);
      opts.log(`${label} ${s.gbps.toFixed(2)} Gbit/s, ${s.retransmits} retransmits`);
      return;
    }
    case 'udp64': {
      const client = () => iperfClient(group, topo, opts, UDP_64_UNLIMITED);
      const s = await sampled(opts, pids, async () => parseIperfUdp(await client()));
      samples.udp64.push(s);
      opts.log(`${label} ${s.deliveredPps.toFixed(0)} pps delivered, ${s.lossPct.toFixed(1)} % lost`);
      return;
    }
    case 'ping':
    case 'ping-busy': {
      const busy = test === 'ping-busy';
      const count = busy ? opts.busyPingCount : opts.pingCount;
      const interval = busy ? opts.busyPingIntervalSec : opts.pingIntervalSec;
      const pacing = ['-c', String(count), '-i', String(interval), '-W', '1'];
      const pinger = () =>
        group.exec(topo.pods[0].shortName, ['ping', ...pacing, topo.pods[1].ip], { allowFail: true });
      const s = await sampled(opts, pids, async () => parsePing((await pinger()).stdout));
      samples[busy ? 'pingBusy' : 'ping'].push(s);
      opts.log(`${label} median ${s.medianMs.toFixed(3)} ms, avg ${s.avgMs.toFixed(3)} ms`);
      return;
    }
  }
}

/**
 * Runs the selected tests `reps` times (tcp1, tcp4, udp64, ping, tcp1, …) from pod 1 to pod 2 of
 * every target while watching the CPU of its `pids`. The targets' topologies are all up at once and
 * measured under one hold of the lock, each test of each repetition on every target back to back
 * (tcp1 on A, tcp1 on B, tcp4 on A, …): on a machine whose load comes and goes, the targets'
 * samples of one test are taken moments apart, so their ratio says more than that of two runs
 * minutes apart. Returns the samples in the order of `targets`.
 */
export async function measureTogether(
  targets: readonly MeasureTarget[],
  options: Partial<MeasureOptions> = {},
): Promise<MeasurementSamples[]> {
  const opts = { ...DEFAULT_MEASURE_OPTIONS, ...options };
  const sessions: Session[] = targets.map((target) => ({
    ...target,
    opts,
    samples: { tcp1: [], tcp4: [], udp64: [], ping: [], pingBusy: [] },
    label: targets.length > 1 ? `${target.name} ` : '',
  }));
  const servers: ChildProcess[] = [];
  try {
    for (const { group, topo } of sessions) servers.push(await startIperfServer(group, topo, opts));
    await withLock(opts.lockFile, opts.log, async () => {
      for (let rep = 1; rep <= opts.reps; rep++) {
        for (const test of opts.tests) {
          for (const session of sessions) await measureOnce(session, test, rep);
        }
      }
    });
  } finally {
    for (const [i, server] of servers.entries()) await (sessions[i] as Session).group.stop(server);
  }
  return sessions.map((session) => session.samples);
}

export function summarize(samples: MeasurementSamples, cores: number = CORES): MeasurementSummary {
  const tcp1Cpu = samples.tcp1.map((s) => s.cpu);
  const bound = (tcp: readonly TcpSample[]) =>
    median(tcp.map((s) => cpuBoundGbps(s, cores)).filter((g): g is number => g !== null));
  const pidCount = tcp1Cpu[0]?.processPct.length ?? 0;
  const machineField = (key: keyof MachineCpu) => median(tcp1Cpu.map((c) => c.machine[key])) ?? 0;
  return {
    tcp1Gbps: median(samples.tcp1.map((s) => s.gbps)),
    tcp4Gbps: median(samples.tcp4.map((s) => s.gbps)),
    tcp1Retransmits: median(samples.tcp1.map((s) => s.retransmits)),
    udpDeliveredPps: median(samples.udp64.map((s) => s.deliveredPps)),
    udpOfferedPps: median(samples.udp64.map((s) => s.offeredPps)),
    udpLossPct: median(samples.udp64.map((s) => s.lossPct)),
    pingAvgMs: median(samples.ping.map((s) => s.avgMs)),
    pingMedianMs: median(samples.ping.map((s) => s.medianMs)),
    pingBusyMedianMs: median(samples.pingBusy.map((s) => s.medianMs)),
    tcp1CpuBoundGbps: bound(samples.tcp1),
    tcp4CpuBoundGbps: bound(samples.tcp4),
    tcp1ProcessCpuPct: Array.from(
      { length: pidCount },
      (_, i) => median(tcp1Cpu.map((c) => c.processPct[i] ?? Number.NaN)) ?? Number.NaN,
    ),
    tcp1MachineCpu:
      tcp1Cpu.length === 0
        ? null
        : {
            user: machineField('user'),
            system: machineField('system'),
            softirq: machineField('softirq'),
            idle: machineField('idle'),
            steal: machineField('steal'),
          },
  };
}

/**
 * Benchmark runner pieces: a mode is a way to connect the two pod networks of a fresh two-node
 * topology; {@link runComparison} sets up several, each on its own topology, and measures them
 * side by side.
 *
 * Plugging in a data plane takes one {@link BenchMode}: its `setUp` starts whatever it needs in
 * the node namespaces (with `group.spawn`, so the group stops it on any failure), and returns the
 * pids whose CPU is to be accounted and how to undo it.
 */
import { cpus, release } from 'node:os';
import { NetnsGroup } from '../test/helpers/netns.js';
import {
  buildTwoNodeTopology,
  kernelVxlanGpe,
  type OverlayMode,
  plainRouting,
  type TwoNodeTopology,
  type TwoNodeTopologyOptions,
} from '../test/helpers/topology.js';
import {
  DEFAULT_MEASURE_OPTIONS,
  type MeasurementSamples,
  type MeasurementSummary,
  type MeasureOptions,
  measureTogether,
  summarize,
} from './measure.js';

export interface ModeSetUp {
  /** Processes of the data plane (e.g. the agent on each node) whose CPU use is reported. */
  pids: number[];
  undo: () => Promise<void>;
}

export interface BenchMode {
  name: string;
  /** Pod MTU the topology is built with, the underlay's minus the mode's overhead. Default 1500. */
  podMtu?: number;
  setUp(group: NetnsGroup, topo: TwoNodeTopology): Promise<ModeSetUp>;
}

/** A bench mode for an overlay that runs no processes of its own (kernel data planes). */
function kernelBenchMode(name: string, podMtu: number, overlay: OverlayMode): BenchMode {
  return { name, podMtu, setUp: async (group, topo) => ({ pids: [], undo: await overlay(group, topo) }) };
}

export const routedMode: BenchMode = kernelBenchMode('routed', 1500, plainRouting);
export const kernelVxlanGpeMode: BenchMode = kernelBenchMode('vxlan-gpe', 1464, kernelVxlanGpe);

export interface BenchOptions extends Partial<MeasureOptions> {
  topology?: Omit<TwoNodeTopologyOptions, 'podMtu'>;
}

export interface ModeResult {
  mode: string;
  podMtu: number;
  status: 'ok' | 'failed';
  /** Why the mode failed: setup, connectivity check, or a measurement. */
  error?: string;
  /** TCP congestion control in the pods (BBR or cubic changes how queue drops hurt). */
  congestionControl?: string;
  summary?: MeasurementSummary;
  samples?: MeasurementSamples;
}

const BENCH_PURPOSE = 'bench';

async function checkConnectivity(group: NetnsGroup, topo: TwoNodeTopology): Promise<void> {
  const [p1, p2] = topo.pods;
  const basic = await group.exec(p1.shortName, ['ping', '-c', '2', '-i', '0.2', '-W', '2', p2.ip], {
    allowFail: true,
  });
  if (basic.code !== 0) throw new Error(`pod 1 cannot ping pod 2: ${basic.stdout.trim().split('\n').pop()}`);
  // A full-size packet with DF set: the pod MTU really fits through the mode's encapsulation.
  const size = String(topo.podMtu - 28);
  const full = await group.exec(
    p1.shortName,
    ['ping', '-c', '2', '-i', '0.2', '-W', '2', '-M', 'do', '-s', size, p2.ip],
    {
      allowFail: true,
    },
  );
  if (full.code !== 0)
    throw new Error(`full-size (${topo.podMtu}) DF ping fails: ${full.stdout.trim().split('\n').pop()}`);
}

/** A mode set up on its own fresh topology, ready to measure. */
interface PreparedMode {
  result: ModeResult;
  group: NetnsGroup;
  topo?: TwoNodeTopology;
  setUp?: ModeSetUp;
}

/** Builds a fresh topology and applies the mode; a failure is recorded in the result, not thrown. */
async function prepareMode(mode: BenchMode, options: BenchOptions): Promise<PreparedMode> {
  const log = options.log ?? DEFAULT_MEASURE_OPTIONS.log;
  const podMtu = mode.podMtu ?? 1500;
  const prepared: PreparedMode = {
    result: { mode: mode.name, podMtu, status: 'failed' },
    group: NetnsGroup.create(BENCH_PURPOSE),
  };
  try {
    log(`${mode.name}: building topology (${prepared.group.prefix}, pod MTU ${podMtu})`);
    const topo = await buildTwoNodeTopology(prepared.group, { ...options.topology, podMtu });
    prepared.setUp = await mode.setUp(prepared.group, topo);
    await checkConnectivity(prepared.group, topo);
    prepared.result.congestionControl = (
      await prepared.group.exec(topo.pods[0].shortName, ['cat', '/proc/sys/net/ipv4/tcp_congestion_control'])
    ).stdout.trim();
    prepared.topo = topo;
  } catch (error) {
    prepared.result.error = error instanceof Error ? error.message : String(error);
    log(`${mode.name}: failed: ${prepared.result.error}`);
  }
  return prepared;
}

/** Undoes the mode and removes its topology; a failing undo fails the mode. */
async function tearDown(prepared: PreparedMode): Promise<void> {
  try {
    await prepared.setUp?.undo();
  } catch (error) {
    prepared.result.status = 'failed';
    prepared.result.error = error instanceof Error ? error.message : String(error);
  } finally {
    await prepared.group.destroy();
  }
}

export interface Comparison {
  date: string;
  machine: { cores: number; cpuModel: string; kernel: string };
  options: Omit<MeasureOptions, 'log'>;
  reference: string;
  modes: ModeResult[];
}

/**
 * Sets up every mode on its own fresh topology, measures them together (each test of each
 * repetition on every mode back to back, see measureTogether) and returns the JSON record and an
 * aligned text table with ratios against the `reference` mode.
 */
export async function runComparison(
  modes: readonly BenchMode[],
  options: BenchOptions & { reference?: string } = {},
): Promise<{ comparison: Comparison; table: string }> {
  const reference = options.reference ?? modes[0]?.name ?? '';
  const removed = await NetnsGroup.sweepStale(`wt-${BENCH_PURPOSE}`);
  if (removed.length > 0) options.log?.(`removed ${removed.length} namespaces left by earlier runs`);
  const prepared: PreparedMode[] = [];
  try {
    for (const mode of modes) prepared.push(await prepareMode(mode, options));
    const ready = prepared.filter((p) => p.topo !== undefined && p.setUp !== undefined);
    const { topology: _topologyOptions, ...measureOptions } = options;
    try {
      const samples = await measureTogether(
        ready.map((p) => ({
          name: p.result.mode,
          group: p.group,
          topo: p.topo as TwoNodeTopology,
          pids: (p.setUp as ModeSetUp).pids,
        })),
        measureOptions,
      );
      ready.forEach((p, i) => {
        p.result.samples = samples[i] as MeasurementSamples;
        p.result.summary = summarize(p.result.samples);
        p.result.status = 'ok';
      });
    } catch (error) {
      for (const p of ready) p.result.error = error instanceof Error ? error.message : String(error);
      options.log?.(`measurement failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  } finally {
    for (const p of prepared) await tearDown(p);
  }
  const results = prepared.map((p) => p.result);
  const { log: _log, topology: _topology, reference: _reference, ...rest } = options;
  const { log: _defaultLog, ...defaults } = DEFAULT_MEASURE_OPTIONS;
  const comparison: Comparison = {
    date: new Date().toISOString(),
    machine: { cores: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', kernel: release() },
    options: { ...defaults, ...rest },
    reference,
    modes: results,
  };
  return { comparison, table: formatComparison(results, reference) };
}

interface Column {
  title: string;
  cell: (r: ModeResult, ref: ModeResult | undefined) => string;
}

function fixed(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

function ratio(pick: (s: MeasurementSummary) => number | null): Column['cell'] {
  return (r, ref) => {
    const value = r.summary === undefined ? null : pick(r.summary);
    const base = ref?.summary === undefined ? null : pick(ref.summary);
    return value === null || base === null || base === 0 ? '-' : `${(value / base).toFixed(2)}x`;
  };
}

/** "a/b" from two numbers of a summary, or "-" when there is no summary. */
function boundCell(r: ModeResult, pick: (s: MeasurementSummary) => [number | null, number | null]): string {
  return r.summary === undefined
    ? '-'
    : pick(r.summary)
        .map((v) => fixed(v, 2))
        .join('/');
}

/** A mode's CPU-bound throughput against what the reference carried. */
function boundRatio(bound: number | null, refGbps: number | null | undefined): number | null {
  return bound === null || !refGbps ? null : bound / refGbps;
}

const COLUMNS: readonly Column[] = [
  { title: 'mode', cell: (r) => r.mode },
  { title: 'pod MTU', cell: (r) => String(r.podMtu) },
  { title: 'TCP1 Gbit/s', cell: (r) => fixed(r.summary?.tcp1Gbps, 2) },
  { title: 'vs ref', cell: ratio((s) => s.tcp1Gbps) },
  { title: 'TCP4 Gbit/s', cell: (r) => fixed(r.summary?.tcp4Gbps, 2) },
  { title: 'vs ref', cell: ratio((s) => s.tcp4Gbps) },
  { title: 'TCP1/4 CPU bound', cell: (r) => boundCell(r, (s) => [s.tcp1CpuBoundGbps, s.tcp4CpuBoundGbps]) },
  {
    title: 'bound vs ref',
    cell: (r, ref) =>
      boundCell(r, (s) => [
        boundRatio(s.tcp1CpuBoundGbps, ref?.summary?.tcp1Gbps),
        boundRatio(s.tcp4CpuBoundGbps, ref?.summary?.tcp4Gbps),
      ]),
  },
  { title: 'TCP1 retr', cell: (r) => fixed(r.summary?.tcp1Retransmits, 0) },
  { title: 'UDP64 kpps', cell: (r) => fixed((r.summary?.udpDeliveredPps ?? Number.NaN) / 1000, 1) },
  { title: 'vs ref', cell: ratio((s) => s.udpDeliveredPps) },
  { title: 'UDP loss %', cell: (r) => fixed(r.summary?.udpLossPct, 1) },
  { title: 'RTT ms', cell: (r) => fixed(r.summary?.pingMedianMs, 3) },
  { title: 'vs ref', cell: ratio((s) => s.pingMedianMs) },
  { title: 'RTT busy ms', cell: (r) => fixed(r.summary?.pingBusyMedianMs, 3) },
  { title: 'vs ref', cell: ratio((s) => s.pingBusyMedianMs) },
  {
    title: 'CPU %/Gbit/s',
    cell: (r) => {
      const s = r.summary;
      if (!s?.tcp1Gbps || s.tcp1ProcessCpuPct.length === 0) return '-';
      return fixed(s.tcp1ProcessCpuPct.reduce((a, b) => a + b, 0) / s.tcp1Gbps, 1);
    },
  },
  {
    title: 'proc CPU % (tcp1)',
    cell: (r) => r.summary?.tcp1ProcessCpuPct.map((p) => fixed(p, 0)).join(' + ') || '-',
  },
  {
    title: 'machine usr/sys/si/idle %',
    cell: (r) => {
      const m = r.summary?.tcp1MachineCpu;
      return m ? [m.user, m.system, m.softirq, m.idle].map((v) => fixed(v, 0)).join('/') : '-';
    },
  },
];

/** Aligned text table; numbers right-aligned, failed modes listed below it. */
function formatComparison(results: readonly ModeResult[], reference: string): string {
  const ref = results.find((r) => r.mode === reference && r.status === 'ok');
  const rows = [COLUMNS.map((c) => c.title), ...results.map((r) => COLUMNS.map((c) => c.cell(r, ref)))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => (row[i] as string).length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)))
      .join('  ');
  const out = [
    line(rows[0] as string[]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
  ];
  out.push(
    '',
    `medians; ratios ("vs ref") against ${reference}${ref ? '' : ' (no result)'}; CPU % of one core during TCP1`,
    "CPU bound: TCP Gbit/s with every core busy at the cost per bit measured; bound vs ref: that against the reference's TCP",
  );
  for (const r of results)
    if (r.status === 'failed') out.push(`${r.mode}: FAILED: ${r.error ?? 'unknown error'}`);
  return out.join('\n');
}

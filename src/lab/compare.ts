/**
 * The same lab run twice on this machine, once with weft and once with Debian's reference
 * `bridge` + `host-local` plugins (static routes between the nodes' subnets instead of an
 * overlay): what each run gives the pods, and how long it takes.
 */
import { table } from '../api/status-view.js';
import { pingAll, wgetAll } from './checks.js';
import { Lab } from './lab.js';
import type { CniFlavor } from './state.js';

export interface LabRun {
  cni: CniFlavor;
  /** What actually wired the pods. */
  plugin: string;
  nodes: number;
  upSec: number;
  podStartMedianMs: number;
  podStartMaxMs: number;
  pingOk: number;
  pingTotal: number;
  pingMedianMs: number | null;
  wgetOk: number;
  wgetTotal: number;
  downSec: number;
}

const median = (xs: number[]) =>
  xs.length === 0 ? null : ([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number);

async function measureRun(
  name: string,
  cni: CniFlavor,
  nodes: number,
  progress: (m: string) => void,
): Promise<LabRun> {
  const started = Date.now();
  let lab: Lab | undefined;
  try {
    lab = await Lab.up(name, { nodes, cni, progress });
    const upSec = (Date.now() - started) / 1000;
    const pings = await pingAll(lab);
    const gets = await wgetAll(lab);
    const starts = lab.pods.map((p) => p.startMs ?? 0);
    const rtts = pings.filter((p) => p.ok).map((p) => Number.parseFloat(p.detail));
    const run: Omit<LabRun, 'downSec'> = {
      cni,
      plugin: lab.describeCni(),
      nodes,
      upSec,
      podStartMedianMs: median(starts) ?? 0,
      podStartMaxMs: Math.max(...starts),
      pingOk: pings.filter((p) => p.ok).length,
      pingTotal: pings.length,
      pingMedianMs: median(rtts),
      wgetOk: gets.filter((g) => g.ok).length,
      wgetTotal: gets.length,
    };
    const downStarted = Date.now();
    await Lab.down(name);
    lab = undefined;
    return { ...run, downSec: (Date.now() - downStarted) / 1000 };
  } finally {
    if (lab !== undefined) await Lab.down(name);
  }
}

/** Runs the weft lab and the reference lab one after the other (never both at once). */
export async function compareCni(
  options: { nodes?: number; names?: [string, string]; progress?: (m: string) => void } = {},
): Promise<LabRun[]> {
  const [weftName, refName] = options.names ?? ['cmpwft', 'cmpref'];
  const progress = options.progress ?? (() => {});
  const nodes = options.nodes ?? 3;
  return [
    await measureRun(weftName, 'weft', nodes, progress),
    await measureRun(refName, 'reference', nodes, progress),
  ];
}

export function renderCniComparison(runs: readonly LabRun[]): string {
  return table(
    ['CNI', 'PLUGIN', 'NODES', 'UP s', 'POD START ms p50/max', 'PING ok', 'RTT p50 ms', 'WGET ok', 'DOWN s'],
    runs.map((r) => [
      r.cni,
      r.plugin,
      String(r.nodes),
      r.upSec.toFixed(1),
      `${r.podStartMedianMs}/${r.podStartMaxMs}`,
      `${r.pingOk}/${r.pingTotal}`,
      r.pingMedianMs === null ? '-' : r.pingMedianMs.toFixed(3),
      `${r.wgetOk}/${r.wgetTotal}`,
      r.downSec.toFixed(1),
    ]),
  );
}

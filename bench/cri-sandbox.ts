import '../src/util/polyfill.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Containerd } from '../test/helpers/containerd.js';
import { freshCriGroup, startBridgeNode, startWeftNode } from '../test/helpers/cri/networks.js';
import type { NetnsGroup } from '../test/helpers/netns.js';
import { percentile } from './measure.js';

/**
 * Pod sandbox latency through containerd's CRI, as kubelet sees it: RunPodSandbox (which waits for
 * the CNI ADD), StopPodSandbox (CNI DEL) and RemovePodSandbox (the second DEL, without netns), for
 * weft and for the reference bridge + host-local, in the same invocation. Each mode has its own
 * containerd in its own node namespace; the modes alternate sandbox by sandbox (sequential phase)
 * and batch by batch (concurrent phase), so both see the same machine load. weft runs a
 * one-node cluster, so its ADD is the local agent's allocation and plumbing.
 *
 *   node dist/bench/cri-sandbox.js [--pods 20] [--concurrent 10] [--batches 2]
 */
const { values } = parseArgs({
  options: {
    pods: { type: 'string', default: '20' },
    concurrent: { type: 'string', default: '10' },
    batches: { type: 'string', default: '2' },
  },
});
const pods = Number(values.pods);
const concurrent = Number(values.concurrent);
const batches = Number(values.batches);

type Mode = 'bridge' | 'weft';
const MODES: readonly Mode[] = ['bridge', 'weft'];

interface Samples {
  run: number[];
  stop: number[];
  remove: number[];
  /** RunPodSandbox of each sandbox of a concurrent batch, from the batch's start. */
  concurrentRun: number[];
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await work();
  return [result, performance.now() - start];
}

let serial = 0;

async function lifecycle(containerd: Containerd, samples: Samples): Promise<void> {
  const cri = containerd.cri;
  const [id, runMs] = await timed(() => cri.runPodSandbox(containerd.sandboxConfig(`b${serial++}`)));
  const [, stopMs] = await timed(() => cri.stopPodSandbox(id));
  const [, removeMs] = await timed(() => cri.removePodSandbox(id));
  samples.run.push(runMs);
  samples.stop.push(stopMs);
  samples.remove.push(removeMs);
}

async function concurrentBatch(containerd: Containerd, samples: Samples): Promise<void> {
  const cri = containerd.cri;
  const runs = await Promise.all(
    Array.from({ length: concurrent }, () =>
      timed(() => cri.runPodSandbox(containerd.sandboxConfig(`c${serial++}`))),
    ),
  );
  samples.concurrentRun.push(...runs.map(([, ms]) => ms));
  await Promise.all(
    runs.map(async ([id]) => {
      await cri.stopPodSandbox(id);
      await cri.removePodSandbox(id);
    }),
  );
}

async function setUp(mode: Mode, group: NetnsGroup): Promise<Containerd> {
  if (mode === 'bridge') return (await startBridgeNode(group, 'ref', '10.250.8.0/24')).containerd;
  return (await startWeftNode(group, 1)).containerd;
}

const summary = (xs: number[]) => ({
  n: xs.length,
  p50: Math.round(percentile(xs, 0.5)),
  p99: Math.round(percentile(xs, 0.99)),
});

async function main(): Promise<void> {
  const group = await freshCriGroup('bcri');
  const containerds = new Map<Mode, Containerd>();
  const samples = new Map<Mode, Samples>(
    MODES.map((m) => [m, { run: [], stop: [], remove: [], concurrentRun: [] }]),
  );
  try {
    for (const mode of MODES) containerds.set(mode, await setUp(mode, group));
    const each = async (phase: (c: Containerd, s: Samples) => Promise<void>) => {
      for (const mode of MODES)
        await phase(containerds.get(mode) as Containerd, samples.get(mode) as Samples);
    };
    await each(lifecycle); // warm-up: the first sandbox also unpacks the pause image's snapshot
    for (const s of samples.values()) Object.assign(s, { run: [], stop: [], remove: [] });
    for (let i = 0; i < pods; i++) await each(lifecycle);
    for (let i = 0; i < batches; i++) await each(concurrentBatch);
  } finally {
    for (const containerd of containerds.values()) await containerd.stop();
    await group.destroy();
  }

  const rows = MODES.map((mode) => {
    const s = samples.get(mode) as Samples;
    return {
      mode,
      runMs: summary(s.run),
      stopMs: summary(s.stop),
      removeMs: summary(s.remove),
      [`run${concurrent}ConcurrentMs`]: summary(s.concurrentRun),
    };
  });
  const bridge = samples.get('bridge') as Samples;
  const weft = samples.get('weft') as Samples;
  const ratio = (a: number[], b: number[]) => Number((percentile(a, 0.5) / percentile(b, 0.5)).toFixed(2));
  const ratios = {
    runP50: ratio(weft.run, bridge.run),
    stopP50: ratio(weft.stop, bridge.stop),
    removeP50: ratio(weft.remove, bridge.remove),
    concurrentRunP50: ratio(weft.concurrentRun, bridge.concurrentRun),
  };

  console.log(
    `pod sandboxes through containerd's CRI: ${pods} one at a time, ${batches} × ${concurrent} at once`,
  );
  console.log('mode     run p50/p99 ms   stop p50/p99 ms   remove p50/p99 ms   run ×N p50/p99 ms');
  for (const mode of MODES) {
    const s = samples.get(mode) as Samples;
    const cell = (xs: number[]) => {
      const { p50, p99 } = summary(xs);
      return `${p50}/${p99}`.padEnd(18);
    };
    console.log(`${mode.padEnd(9)}${cell(s.run)}${cell(s.stop)}${cell(s.remove)}${cell(s.concurrentRun)}`);
  }
  console.log(`weft / bridge (p50): ${JSON.stringify(ratios)}`);
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/cri-sandbox-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(
    file,
    JSON.stringify(
      { pods, concurrent, batches, rows, ratios, samples: Object.fromEntries(samples) },
      null,
      2,
    ),
  );
  console.log(`samples: ${file}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

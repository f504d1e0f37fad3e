/**
 * The checks a person runs on a fresh cluster, and their rendering: pod table, ping between pods
 * on different nodes, HTTP from every pod to every other node's web pod.
 */
import { table } from '../api/status-view.js';
import type { Lab } from './lab.js';
import type { LabPod } from './state.js';

export interface PairResult {
  from: string;
  to: string;
  ok: boolean;
  /** RTT in ms (ping) or the body's first line (wget); the error otherwise. */
  detail: string;
}

const CONCURRENCY = 4;

async function inBatches<T, R>(items: readonly T[], body: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += CONCURRENCY) {
    results.push(...(await Promise.all(items.slice(i, i + CONCURRENCY).map(body))));
  }
  return results;
}

/** Ordered pairs of pods on different nodes. */
export function crossNodePairs(
  pods: readonly LabPod[],
  to: (pod: LabPod) => boolean = () => true,
): Array<[LabPod, LabPod]> {
  return pods.flatMap((a) =>
    pods.filter((b) => b.node !== a.node && to(b)).map((b): [LabPod, LabPod] => [a, b]),
  );
}

export async function ping(lab: Lab, from: LabPod, to: LabPod, count = 2): Promise<PairResult> {
  const out = await lab
    .exec(from.name, ['ping', '-c', String(count), '-i', '0.2', '-W', '2', to.ip], {
      allowFail: true,
      timeoutMs: 20_000,
    })
    .catch((e: Error) => ({ code: -1, stdout: e.message, stderr: '' }));
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(out.stdout)?.[1];
  const ok = out.code === 0 && rtt !== undefined;
  return { from: from.name, to: to.name, ok, detail: ok ? `${rtt} ms` : lastLine(out.stdout || out.stderr) };
}

/** busybox wget under `timeout` (its own -T crashes); the web pod answers "hello from <name>". */
export async function wget(lab: Lab, from: LabPod, to: LabPod): Promise<PairResult> {
  const out = await lab
    .exec(from.name, ['timeout', '5', 'wget', '-q', '-O', '-', `http://${to.ip}/`], {
      allowFail: true,
      timeoutMs: 20_000,
    })
    .catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  const body = out.stdout.trim();
  const ok = out.code === 0 && body === `hello from ${to.name}`;
  return {
    from: from.name,
    to: to.name,
    ok,
    detail: ok ? body : lastLine(out.stderr || body || `exit ${out.code}`),
  };
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

export function pingAll(lab: Lab, pods: readonly LabPod[] = lab.pods): Promise<PairResult[]> {
  return inBatches(crossNodePairs(pods), ([a, b]) => ping(lab, a, b, 1));
}

export function wgetAll(lab: Lab, pods: readonly LabPod[] = lab.pods): Promise<PairResult[]> {
  return inBatches(
    crossNodePairs(pods, (p) => p.role === 'web'),
    ([a, b]) => wget(lab, a, b),
  );
}

export function renderPods(lab: Lab): string {
  return table(
    ['NAME', 'ROLE', 'IP', 'NODE', 'NODE ADDRESS'],
    lab.pods.map((p) => [
      p.name,
      p.role === 'web' ? 'httpd :80' : 'shell',
      p.ip,
      p.node,
      lab.node(p.node).underlayIp,
    ]),
  );
}

/** A from × to matrix: RTT or ✗ per cell, "·" on the diagonal and same-node pairs. */
export function renderMatrix(results: readonly PairResult[], cell: (r: PairResult) => string): string {
  const froms = [...new Set(results.map((r) => r.from))];
  const tos = [...new Set(results.map((r) => r.to))];
  return table(
    ['FROM \\ TO', ...tos],
    froms.map((f) => [
      f,
      ...tos.map((t) => {
        const r = results.find((x) => x.from === f && x.to === t);
        return r === undefined ? '·' : r.ok ? cell(r) : '✗';
      }),
    ]),
  );
}

export function summarize(name: string, results: readonly PairResult[]): string {
  const failed = results.filter((r) => !r.ok);
  const lines = [`${name}: ${results.length - failed.length}/${results.length} ok`];
  for (const f of failed) lines.push(`  ✗ ${f.from} → ${f.to}: ${f.detail}`);
  return lines.join('\n');
}

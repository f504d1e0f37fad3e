import type { StatusReport } from '../api/status-report.js';

/**
 * Why node `name` is not ready yet, judged from its status report: IPAM not ready, or a peer of
 * `expected` (other names; its own is ignored) not reachable. '' when ready.
 */
export function notReadyReason(name: string, status: StatusReport, expected: readonly string[]): string {
  const cp = status.controlPlane;
  if (cp?.ipam.state !== 'ready') return `${name}: IPAM ${cp?.ipam.summary ?? 'unknown'}`;
  const reachable = new Set(cp.peers.filter((p) => p.state === 'reachable').map((p) => p.name));
  const missing = expected.filter((n) => n !== name && !reachable.has(n));
  return missing.length > 0 ? `${name}: does not reach ${missing.join(', ')}` : '';
}

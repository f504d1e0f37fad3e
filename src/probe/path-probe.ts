import type { PathProbe } from '../api/status-report.js';
import { ECHO_OVERHEAD, type EchoTransport, SMALL_ECHO_SIZE } from './echo-transport.js';

/** Common path MTUs below Ethernet's (PPPoE, tunnels, IPv6 minimum, the IPv4 minimum). */
const COMMON_MTUS = [1500, 1492, 1480, 1450, 1400, 1280, 1024, 576];

export interface PathProbeOptions {
  /** The largest packet the local underlay interface takes: the first size tried. */
  maxSize: number;
  timeoutMs: number;
  now?: () => number;
}

/**
 * One probe of a peer's underlay address: a small echo for reachability and RTT, then DF-set echoes
 * of decreasing size until one comes back. A "fragmentation needed" answer jumps straight to the
 * MTU the router named.
 */
export async function probePath(
  transport: EchoTransport,
  address: string,
  options: PathProbeOptions,
): Promise<PathProbe> {
  const now = options.now ?? Date.now;
  const probedAtMs = now();
  const first = await transport.echo(address, SMALL_ECHO_SIZE, options.timeoutMs);
  if (first.kind !== 'reply') {
    const error =
      first.kind === 'timeout'
        ? `no echo reply within ${options.timeoutMs} ms`
        : first.kind === 'error'
          ? first.message
          : 'even a small probe is too big';
    return { address, reachable: false, rttMs: null, pmtu: null, probedAtMs, error };
  }
  const pmtu = await largestEcho(transport, address, options);
  return { address, reachable: true, rttMs: round(first.rttMs), pmtu, probedAtMs, error: null };
}

async function largestEcho(
  transport: EchoTransport,
  address: string,
  options: PathProbeOptions,
): Promise<number | null> {
  const sizes = new Set([options.maxSize, ...COMMON_MTUS.filter((m) => m < options.maxSize)]);
  let candidates = [...sizes].sort((a, b) => b - a);
  while (candidates.length > 0) {
    const size = candidates.shift() as number;
    if (size <= ECHO_OVERHEAD) break;
    const outcome = await transport.echo(address, size, options.timeoutMs);
    if (outcome.kind === 'reply') return size;
    if (outcome.kind === 'too-big' && outcome.nextHopMtu !== null && outcome.nextHopMtu < size) {
      const hint = outcome.nextHopMtu;
      candidates = [hint, ...candidates.filter((c) => c < hint)];
    }
  }
  return null;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

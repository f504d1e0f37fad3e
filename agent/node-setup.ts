import type { AgentConfig } from '../src/config/agent-config.js';
import { overlayMtu, underlayMtuOf } from '../src/plumbing/index.js';
import type { Logger } from '../src/util/log.js';

/** Deep kernel queue: a TUN's default 500 packets overflows under TCP bursts (see bench notes). */
export const TUN_TXQUEUELEN = 10_000;

export interface RunningAgent {
  /** Replaces the static peers and their ranges (static mode: after the peer file changed). */
  updatePeers?(config: AgentConfig): void;
  stop(): Promise<void>;
}

/** The overlay MTU: given, or the underlay interface's MTU minus the encapsulation overhead. */
export async function resolveMtu(
  underlayAddress: string,
  configured: number | undefined,
  log: Logger,
): Promise<{ mtu: number; underlay: { ifname: string; mtu: number } }> {
  const underlay = await underlayMtuOf(underlayAddress);
  const fitting = overlayMtu(underlay.mtu);
  if (configured !== undefined && configured > fitting) {
    log.warn(
      { mtu: configured, underlayMtu: underlay.mtu },
      'MTU is larger than the underlay allows; packets will be fragmented',
    );
  }
  return { mtu: configured ?? fitting, underlay };
}

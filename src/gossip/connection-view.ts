import type { ConnectionState, TargetView } from './connections.js';

/** One line of `agent status connections`. */
export interface ConnectionView {
  direction: 'inbound' | 'outbound';
  /** The target address we dial, or the remote address of a connection the peer opened. */
  address: string;
  state: ConnectionState;
  detail: string;
  peerId: string | undefined;
  peerName: string | undefined;
  lastError: string | undefined;
  /** Wall-clock ms of the next dial attempt while retrying. */
  nextRetryAtMs: number | undefined;
}

/** What the view needs of a live libp2p connection. */
export interface OpenConnection {
  peerId: string;
  direction: 'inbound' | 'outbound';
  remoteAddress: string;
}

/**
 * Merges dial targets with live connections: every target once (with the direction of its live
 * connection), then connections to peers no established target covers (peers that dialed us).
 */
export function describeConnections(
  targets: readonly TargetView[],
  open: readonly OpenConnection[],
  nameOf: (peerId: string) => string | undefined,
  nowMs: number,
): ConnectionView[] {
  const openByPeer = new Map<string, OpenConnection[]>();
  for (const connection of open) {
    openByPeer.set(connection.peerId, [...(openByPeer.get(connection.peerId) ?? []), connection]);
  }
  const views: ConnectionView[] = [];
  const covered = new Set<string>();
  for (const target of targets) {
    const live = target.peerId === undefined ? undefined : openByPeer.get(target.peerId);
    const established = target.state === 'established';
    if (established && target.peerId !== undefined) covered.add(target.peerId);
    const direction = established && live?.every((c) => c.direction === 'inbound') ? 'inbound' : 'outbound';
    const peerName = target.peerId === undefined ? undefined : nameOf(target.peerId);
    views.push({
      direction,
      address: target.address,
      state: target.state,
      detail: describeTarget(target, direction, peerName ?? target.peerId, nowMs),
      peerId: target.peerId,
      peerName,
      lastError: target.lastError,
      nextRetryAtMs: target.nextRetryAtMs,
    });
  }
  for (const [peerId, connections] of openByPeer) {
    if (covered.has(peerId)) continue;
    const peerName = nameOf(peerId);
    for (const connection of connections) {
      views.push({
        direction: connection.direction,
        address: withoutPeerId(connection.remoteAddress),
        state: 'established',
        detail: `connected to ${peerName ?? peerId}`,
        peerId,
        peerName,
        lastError: undefined,
        nextRetryAtMs: undefined,
      });
    }
  }
  return views;
}

function describeTarget(
  target: TargetView,
  direction: 'inbound' | 'outbound',
  peer: string | undefined,
  nowMs: number,
): string {
  switch (target.state) {
    case 'established':
      return direction === 'inbound' ? `connected to ${peer} (they dialed us)` : `connected to ${peer}`;
    case 'connecting':
      return 'dialing';
    case 'retrying': {
      const inMs = Math.max(0, (target.nextRetryAtMs ?? nowMs) - nowMs);
      const error = target.lastError === undefined ? '' : `${target.lastError}; `;
      return `${error}retry #${target.attempts + 1} in ${(inMs / 1000).toFixed(1)} s`;
    }
    case 'failed':
      return target.lastError ?? 'failed';
  }
}

function withoutPeerId(address: string): string {
  const index = address.indexOf('/p2p/');
  return index === -1 ? address : address.slice(0, index);
}

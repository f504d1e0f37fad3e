import { intervalsSize } from './address.js';
import type { IpamNode } from './node.js';
import { intervalsByOwner, intervalsToCidrStrings } from './ring.js';
import type { IpamConflict } from './snapshot.js';

export type IpamState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'awaiting-consensus'; readonly quorum: number; readonly known: number }
  | { readonly kind: 'ready' }
  | { readonly kind: 'out-of-space'; readonly askingPeer: string | null };

export interface IpamOwnerStatus {
  readonly peer: string;
  readonly addresses: number;
  /** Share of the cluster range, 0..100. */
  readonly percent: number;
  readonly cidrs: string[];
  /** False when the topology does not report the peer (it may be dead: see rmpeer). */
  readonly reachable: boolean;
  /** Free addresses as the owner last wrote them into the ring (advisory: updated on large drift only). */
  readonly reportedFree: number;
}

export interface IpamStatus {
  readonly peer: string;
  readonly clusterRange: string;
  readonly totalAddresses: number;
  readonly seedId: string | null;
  readonly state: IpamState;
  /** One line for people, e.g. "awaiting consensus: quorum 2, known 1". */
  readonly summary: string;
  /** This node first, then the other owners by name. */
  readonly owners: IpamOwnerStatus[];
  /** Containers holding an address on this node (the gateway not counted). */
  readonly allocations: number;
  readonly freeAddresses: number;
  readonly gateway: string | null;
  readonly conflicts: readonly IpamConflict[];
}

export function describeIpamState(state: IpamState): string {
  switch (state.kind) {
    case 'idle':
      return 'idle: waiting to hear the IP ring from a peer';
    case 'awaiting-consensus':
      return `awaiting consensus: quorum ${state.quorum}, known ${state.known}`;
    case 'ready':
      return 'ready';
    case 'out-of-space':
      return state.askingPeer === null
        ? 'out of space: no reachable peer has space to give (rmpeer dead peers that hold space)'
        : `out of space: asked ${state.askingPeer} for space`;
  }
}

/** The status model of one node; text views should be rendered from this, not from the node. */
export function ipamStatus(node: IpamNode): IpamStatus {
  const ring = node.ring;
  const total = node.range.end - node.range.start;
  const seeding = node.seedingState;
  let state: IpamState;
  if (seeding.kind === 'awaiting-consensus') state = seeding;
  else if (seeding.kind === 'awaiting-ring') state = { kind: 'idle' };
  else if (node.freeAddresses > 0) state = { kind: 'ready' };
  else state = { kind: 'out-of-space', askingPeer: node.askingForSpace ?? null };

  const freeByPeer = new Map<string, number>();
  for (const entry of ring?.entries ?? []) {
    freeByPeer.set(entry.peer, (freeByPeer.get(entry.peer) ?? 0) + entry.free);
  }
  const owners = [...(ring ? intervalsByOwner(ring) : [])]
    .map(([peer, intervals]): IpamOwnerStatus => {
      const addresses = intervalsSize(intervals);
      return {
        peer,
        addresses,
        percent: (100 * addresses) / total,
        cidrs: intervalsToCidrStrings(intervals),
        reachable: node.knownPeers.has(peer),
        reportedFree: freeByPeer.get(peer) ?? 0,
      };
    })
    .sort((a, b) => (a.peer === node.peer ? -1 : b.peer === node.peer ? 1 : a.peer < b.peer ? -1 : 1));

  const hasGateway = node.gateway !== undefined;
  return {
    peer: node.peer,
    clusterRange: node.clusterRange,
    totalAddresses: total,
    seedId: ring?.seedId ?? null,
    state,
    summary: describeIpamState(state),
    owners,
    allocations: node.allocationCount - (hasGateway ? 1 : 0),
    freeAddresses: node.freeAddresses,
    gateway: node.gateway ?? null,
    conflicts: node.conflicts,
  };
}

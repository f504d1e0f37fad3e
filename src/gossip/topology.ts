import { isNewerRecord, type RecordRejectReason, type TopologyRecord } from './records.js';

export type Reachability = 'reachable' | 'unreachable';

/** One remote node as the topology knows it. */
export interface KnownPeer {
  name: string;
  peerId: string;
  underlayAddress: string;
  gossipPort: number;
  dataPort: number;
  version: string;
  incarnation: number;
  state: Reachability;
  /** Wall-clock time (ms since the epoch) when the last valid record from this peer arrived. */
  lastSeenMs: number;
  /** Pods with an address on the peer, as of its last record; undefined if it does not say. */
  addressesInUse: number | undefined;
  /** Data-plane features the peer announced (none from an older agent). */
  features: readonly string[];
}

export type ApplyOutcome =
  | {
      accepted: true;
      /** added/updated change the peer set, an address or reachability; refreshed is a heartbeat only. */
      change: 'added' | 'updated' | 'refreshed';
      /** A peer ID whose name this record took over (the previous holder had gone unreachable). */
      replacedPeerId?: string;
    }
  | { accepted: false; reason: RecordRejectReason; detail: string };

interface PeerEntry {
  record: TopologyRecord;
  lastSeenMs: number;
  state: Reachability;
}

/**
 * Membership as learned from topology records. Pure state: the caller supplies the time.
 *
 * Name ownership: a node name belongs to one peer ID at a time. A different peer ID may take a name
 * over only when the current holder is unreachable and the claimant's record was sent later than the
 * holder's last one (a node reinstalled with a fresh identity). While the holder is alive, claims are
 * rejected as `name-conflict`, so two live nodes with the same name never flap; our own name is never
 * given away. Unreachable peers are kept (with their last record) until `forget`.
 */
export class Topology {
  private readonly byPeerId = new Map<string, PeerEntry>();
  private readonly peerIdByName = new Map<string, string>();

  constructor(
    private readonly self: { name: string; peerId: string },
    private readonly peerTimeoutMs: number,
  ) {}

  apply(record: TopologyRecord, nowMs: number): ApplyOutcome {
    if (record.peerId === this.self.peerId) {
      return { accepted: false, reason: 'self', detail: 'our own record' };
    }
    if (record.name === this.self.name) {
      return { accepted: false, reason: 'name-conflict', detail: `name ${record.name} is ours` };
    }
    const existing = this.byPeerId.get(record.peerId);
    if (existing !== undefined && this.isStale(record, existing)) {
      return {
        accepted: false,
        reason: 'stale',
        detail: `incarnation ${record.incarnation} seq ${record.seq} not newer than ${existing.record.incarnation}/${existing.record.seq}`,
      };
    }

    let replacedPeerId: string | undefined;
    const holderId = this.peerIdByName.get(record.name);
    if (holderId !== undefined && holderId !== record.peerId) {
      const holder = this.byPeerId.get(holderId);
      if (
        holder !== undefined &&
        (holder.state === 'reachable' || record.sentAtMs <= holder.record.sentAtMs)
      ) {
        return {
          accepted: false,
          reason: 'name-conflict',
          detail: `name ${record.name} is held by ${holderId} (${holder.state})`,
        };
      }
      this.forgetPeerId(holderId);
      replacedPeerId = holderId;
    }

    if (existing === undefined) {
      this.byPeerId.set(record.peerId, { record, lastSeenMs: nowMs, state: 'reachable' });
      this.peerIdByName.set(record.name, record.peerId);
      return { accepted: true, change: 'added', ...(replacedPeerId ? { replacedPeerId } : {}) };
    }

    const previous = existing.record;
    const routeRelevantChange =
      existing.state !== 'reachable' ||
      previous.name !== record.name ||
      previous.underlay !== record.underlay ||
      previous.gossipPort !== record.gossipPort ||
      previous.dataPort !== record.dataPort ||
      (previous.features ?? []).join(',') !== (record.features ?? []).join(',');
    if (previous.name !== record.name) {
      this.peerIdByName.delete(previous.name);
      this.peerIdByName.set(record.name, record.peerId);
    }
    existing.record = record;
    existing.lastSeenMs = nowMs;
    existing.state = 'reachable';
    return {
      accepted: true,
      change: routeRelevantChange ? 'updated' : 'refreshed',
      ...(replacedPeerId ? { replacedPeerId } : {}),
    };
  }

  /** Marks peers not heard from within the timeout unreachable; returns the peer IDs that changed. */
  expire(nowMs: number): string[] {
    const expired: string[] = [];
    for (const [peerId, entry] of this.byPeerId) {
      if (entry.state === 'reachable' && nowMs - entry.lastSeenMs > this.peerTimeoutMs) {
        entry.state = 'unreachable';
        expired.push(peerId);
      }
    }
    return expired;
  }

  /** Removes a peer entirely (an admin decision such as `rmpeer`); returns whether it was known. */
  forget(name: string): boolean {
    const peerId = this.peerIdByName.get(name);
    if (peerId === undefined) return false;
    this.forgetPeerId(peerId);
    return true;
  }

  nameOf(peerId: string): string | undefined {
    return this.byPeerId.get(peerId)?.record.name;
  }

  peerIdOf(name: string): string | undefined {
    return this.peerIdByName.get(name);
  }

  record(peerId: string): TopologyRecord | undefined {
    return this.byPeerId.get(peerId)?.record;
  }

  peers(): KnownPeer[] {
    return [...this.byPeerId.values()]
      .map(({ record, lastSeenMs, state }) => ({
        name: record.name,
        peerId: record.peerId,
        underlayAddress: record.underlay,
        gossipPort: record.gossipPort,
        dataPort: record.dataPort,
        version: record.version,
        incarnation: record.incarnation,
        state,
        lastSeenMs,
        addressesInUse: record.addressesInUse,
        features: record.features ?? [],
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * Stale: not newer within the same incarnation, or an older incarnation of a live peer. Once a
   * peer is unreachable any other incarnation is accepted, so a restart with a clock that moved
   * backwards still gets back in.
   */
  private isStale(record: TopologyRecord, existing: PeerEntry): boolean {
    if (record.incarnation === existing.record.incarnation) return !isNewerRecord(record, existing.record);
    return existing.state === 'reachable' && !isNewerRecord(record, existing.record);
  }

  private forgetPeerId(peerId: string): void {
    const entry = this.byPeerId.get(peerId);
    if (entry === undefined) return;
    this.byPeerId.delete(peerId);
    if (this.peerIdByName.get(entry.record.name) === peerId) this.peerIdByName.delete(entry.record.name);
  }
}

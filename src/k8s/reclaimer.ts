import type { RmpeerResult } from '../ipam/index.js';
import type { Logger } from '../util/log.js';
import { ClaimObserver } from './claim-observer.js';
import { type PeerRecord, reclaimCandidates, recordKey, withPeer } from './peer-registry.js';
import type { RegistryStore } from './registry-store.js';

/** What the reclaimer needs from the agent. */
export interface ReclaimTarget {
  /** The agent's IPAM rmpeer (IpamDriver.rmpeer): takes every range `peer` owns; idempotent. */
  rmpeer(peer: string): Promise<RmpeerResult>;
  /** The gossip topology still hears from `peer`: it is not dead, whatever the API server says. */
  isReachable(peer: string): boolean;
}

export interface NodeSet {
  readonly isSynced: boolean;
  has(name: string): boolean;
  on(event: 'deleted', listener: (name: string) => void): unknown;
  off(event: 'deleted', listener: (name: string) => void): unknown;
}

export interface ReclaimerOptions {
  self: string;
  store: RegistryStore;
  nodes: NodeSet;
  target: ReclaimTarget;
  log: Logger;
  /** A claim unchanged this long is taken over; the holder renews it within a third of that. */
  leaseMs: number;
  /** Random delay before reacting to a deletion, so that a large cluster does not write all at once. */
  jitterMs?: number;
  /** Full pass when nothing is pending (catches deletions missed while no agent was watching). */
  idlePassMs?: number;
  random?: () => number;
  now?: () => number;
}

type Outcome = 'done' | 'pending' | 'not-mine';

/**
 * Exactly-once takeover of a deleted node's IP ranges. For each registered or seeded node without a
 * Node object: claim it in the registry (compare-and-swap, so one agent wins however many race), check
 * that the gossip layer no longer hears from it, renew the claim as a fence, run rmpeer, then write the
 * tombstone. A holder that crashes leaves its claim unchanged; once another agent has watched it
 * unchanged for a lease it takes the claim over (attempt + 1) and finishes. A restarted holder finds its
 * own claim and finishes it (rmpeer is idempotent on its own ring).
 */
export class Reclaimer {
  private readonly observer: ClaimObserver;
  private readonly random: () => number;
  private timer: NodeJS.Timeout | undefined;
  private passing: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly onDeleted = () => this.schedule(this.random() * (this.options.jitterMs ?? 1_000));

  constructor(private readonly options: ReclaimerOptions) {
    this.observer = new ClaimObserver(options.leaseMs, options.now);
    this.random = options.random ?? Math.random;
  }

  start(): void {
    this.options.nodes.on('deleted', this.onDeleted);
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.options.nodes.off('deleted', this.onDeleted);
    await this.passing;
  }

  /** Runs one pass now (serialised with any other); resolves when it is over. */
  pass(): Promise<void> {
    this.passing = this.passing
      .then(() => this.passOnce())
      .catch((error: unknown) => {
        this.options.log.warn({ err: (error as Error).message }, 'reclaim pass failed; retrying');
        this.schedule(this.options.leaseMs / 3);
      });
    return this.passing;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.pass(), delayMs);
  }

  private async passOnce(): Promise<void> {
    if (this.stopped) return;
    const { self, store, nodes, leaseMs } = this.options;
    if (!nodes.isSynced) {
      this.schedule(leaseMs / 3);
      return;
    }
    const { registry } = await store.read();
    let pending = false;
    for (const peer of reclaimCandidates(registry, (name) => nodes.has(name), self)) {
      const outcome = await this.reclaim(peer, registry.peers.get(peer));
      if (outcome !== 'done') pending = true;
    }
    for (const [peer, record] of registry.peers) {
      if (record.state === 'reclaiming' && record.holder === self && nodes.has(peer)) {
        await this.tombstoneReturnedNode(peer);
      }
    }
    this.schedule(pending ? leaseMs / 3 : (this.options.idlePassMs ?? 300_000));
  }

  private async reclaim(peer: string, seen: PeerRecord | undefined): Promise<Outcome> {
    const { self, store, nodes, target, log } = this.options;
    if (seen?.state === 'reclaiming' && seen.holder !== self && !this.observer.isStale(peer, seen)) {
      return 'not-mine';
    }
    // Claim, take over a stale claim, or renew our own: the renewal just before rmpeer is the fence
    // that proves nobody took the claim over while we were slow.
    const claim = await store.update((current) => {
      const record = current.peers.get(peer);
      if (nodes.has(peer) || record?.state === 'reclaimed') return null;
      if (record?.state === 'reclaiming' && record.holder !== self && recordKey(record) !== recordKey(seen)) {
        return null;
      }
      const attempt = record?.state === 'reclaiming' ? record.attempt + (record.holder === self ? 0 : 1) : 1;
      return withPeer(current, peer, {
        state: 'reclaiming',
        holder: self,
        attempt,
        renewedAt: new Date().toISOString(),
      });
    });
    if (!claim.wrote) return 'not-mine';
    this.observer.forget(peer);
    const record = claim.registry.peers.get(peer) as PeerRecord & { attempt: number };
    if (seen?.state !== 'reclaiming' || seen.holder !== self) {
      log.info({ peer, attempt: record.attempt }, 'claimed the ranges of a deleted node');
    }
    if (target.isReachable(peer)) {
      log.info({ peer }, 'deleted node still answers gossip; reclaim waits until it stops');
      return 'pending';
    }
    const result = await target.rmpeer(peer);
    if (!result.ok) {
      log.warn({ peer, reason: result.reason, message: result.message }, 'rmpeer refused; retrying');
      return 'pending';
    }
    await store.update((current) =>
      current.peers.get(peer)?.state === 'reclaimed'
        ? null
        : withPeer(current, peer, {
            state: 'reclaimed',
            by: self,
            at: new Date().toISOString(),
            cidrs: result.cidrs,
          }),
    );
    log.info(
      { peer, cidrs: result.cidrs, addresses: result.addresses },
      'took over the IP ranges of a deleted node',
    );
    return 'done';
  }

  /**
   * The node came back while we held its claim. Whether or not our rmpeer ran (we may be a restarted
   * holder that cannot tell), a tombstone is always safe: the returning agent discards its old IPAM
   * state instead of acting on ranges that may have changed hands.
   */
  private async tombstoneReturnedNode(peer: string): Promise<void> {
    const { self, store, log } = this.options;
    const { wrote } = await store.update((current) => {
      const record = current.peers.get(peer);
      if (record?.state !== 'reclaiming' || record.holder !== self) return null;
      return withPeer(current, peer, {
        state: 'reclaimed',
        by: self,
        at: new Date().toISOString(),
        cidrs: [],
      });
    });
    if (wrote) log.info({ peer }, 'node came back during its reclaim; its agent will start afresh');
  }
}

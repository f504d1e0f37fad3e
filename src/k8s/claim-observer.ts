import { type PeerRecord, recordKey } from './peer-registry.js';

/**
 * Tells a stale claim from a live one without trusting anyone's clock: a claim is stale once this
 * process has seen the very same record (holder, attempt, renewedAt) for a whole lease on its own
 * monotonic clock, as client-go's leader election does. A working holder renews well within a lease.
 */
export class ClaimObserver {
  private readonly seen = new Map<string, { key: string; since: number }>();

  constructor(
    private readonly leaseMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  isStale(peer: string, record: PeerRecord | undefined): boolean {
    const key = recordKey(record);
    const at = this.now();
    const seen = this.seen.get(peer);
    if (seen === undefined || seen.key !== key) {
      this.seen.set(peer, { key, since: at });
      return false;
    }
    return at - seen.since >= this.leaseMs;
  }

  forget(peer: string): void {
    this.seen.delete(peer);
  }
}

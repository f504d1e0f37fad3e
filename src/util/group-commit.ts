/**
 * Group commit: callers ask for their change to be written, and every change made before a write
 * starts is carried by that write. Writes run one at a time; callers that arrive while one runs
 * share the next, so 50 concurrent changes cost two writes (one fsync'd file each) instead of 50.
 *
 * A caller's promise settles with the write that carried its change: it resolves only once that
 * write succeeded and rejects with that write's error. A failed write fails exactly the callers it
 * carried; the next write, started by the next caller, is a new attempt.
 */
export class GroupCommit {
  /** The batch that has not started yet: callers arriving now join it. */
  private pending: Promise<void> | undefined;
  /** The last batch scheduled, settled or not; the next one starts after it. */
  private last: Promise<void> = Promise.resolve();

  /** `write` must capture the state to write synchronously, before its first await. */
  constructor(private readonly write: () => Promise<void>) {}

  /** Resolves once a write that started after this call has succeeded. */
  commit(): Promise<void> {
    if (this.pending !== undefined) return this.pending;
    const batch = this.last.then(() => {
      // From here on the write captures every change made so far; later callers need the next one.
      this.pending = undefined;
      return this.write();
    });
    this.pending = batch;
    this.last = batch.catch(() => undefined);
    return batch;
  }

  /** Resolves when every write scheduled so far has finished, whatever its outcome. */
  settled(): Promise<void> {
    return this.last;
  }
}

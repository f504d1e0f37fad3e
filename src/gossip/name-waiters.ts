/** Callers waiting for a peer ID to get a name (its first topology record). */
export class NameWaiters {
  private readonly waiting = new Map<string, Set<(name: string | undefined) => void>>();

  /** Resolves with the name once `settle` provides it, or with undefined when `signal` aborts. */
  wait(peerId: string, signal: AbortSignal): Promise<string | undefined> {
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let waiters = this.waiting.get(peerId);
      if (waiters === undefined) {
        waiters = new Set();
        this.waiting.set(peerId, waiters);
      }
      const settle = (name: string | undefined): void => {
        signal.removeEventListener('abort', onAbort);
        waiters.delete(settle);
        if (waiters.size === 0 && this.waiting.get(peerId) === waiters) this.waiting.delete(peerId);
        resolve(name);
      };
      const onAbort = (): void => settle(undefined);
      signal.addEventListener('abort', onAbort, { once: true });
      waiters.add(settle);
    });
  }

  settle(peerId: string, name: string | undefined): void {
    for (const settle of [...(this.waiting.get(peerId) ?? [])]) settle(name);
  }

  settleAll(): void {
    for (const peerId of [...this.waiting.keys()]) this.settle(peerId, undefined);
  }
}

export interface Deadline {
  signal: AbortSignal;
  /** Stops the timer and detaches from the parent; call when the guarded work is done. */
  clear(): void;
}

/**
 * A signal that aborts after `ms`, or earlier with `parent`. It uses a plain timer on purpose: on
 * Node 20 a signal from `AbortSignal.any([AbortSignal.timeout(ms), …])` can be garbage collected before
 * it fires, and then never fires (a request hung forever in the test suite).
 */
export function deadline(ms: number, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')),
    ms,
  );
  const onParentAbort = (): void => controller.abort(parent?.reason);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}

/**
 * Runs `work` but settles no later than `signal` aborts, whatever libp2p does with the signal: the
 * cleanups `work` registers (aborting its stream) run on abort, and a late result is ignored.
 */
export async function settleBy<T>(
  signal: AbortSignal,
  work: (onAbort: (cleanup: () => void) => void) => Promise<T>,
): Promise<T> {
  if (signal.aborted) throw signal.reason;
  const cleanups: (() => void)[] = [];
  let fire = (): void => {};
  const aborted = new Promise<never>((_, reject) => {
    fire = () => {
      for (const cleanup of cleanups) cleanup();
      reject(signal.reason);
    };
  });
  aborted.catch(() => {});
  signal.addEventListener('abort', fire, { once: true });
  const onAbort = (cleanup: () => void): void => {
    if (signal.aborted) cleanup();
    else cleanups.push(cleanup);
  };
  try {
    return await Promise.race([work(onAbort), aborted]);
  } finally {
    signal.removeEventListener('abort', fire);
  }
}

/** Reconnect delays: exponential growth from `initialMs`, capped at `maxMs`, with downward jitter. */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  /** Fraction in [0, 1]: a delay d becomes uniform in [d·(1 − jitter), d]. */
  jitter: number;
}

export const defaultBackoffPolicy: BackoffPolicy = {
  initialMs: 500,
  maxMs: 30_000,
  multiplier: 2,
  jitter: 0.5,
};

/**
 * Delay before retry number `attempt` (0 = first retry after the first failure).
 * Jitter only shortens the delay, so the cap holds exactly and peers that failed together spread out.
 */
export function backoffDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.floor(attempt));
  const uncapped = policy.initialMs * policy.multiplier ** exponent;
  const capped = Math.min(policy.maxMs, Number.isFinite(uncapped) ? uncapped : policy.maxMs);
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  return Math.round(capped * (1 - jitter * random()));
}

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs, defaultBackoffPolicy } from '../../../src/gossip/backoff.js';

const policy = { initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.5 };

describe('backoffDelayMs', () => {
  it('doubles from the initial delay and stops at the cap (no jitter drawn)', () => {
    const schedule = Array.from({ length: 10 }, (_, attempt) => backoffDelayMs(attempt, policy, () => 0));
    expect(schedule).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000]);
  });

  it('jitters downwards by at most the jitter fraction', () => {
    expect(backoffDelayMs(0, policy, () => 0.999_999)).toBe(250);
    expect(backoffDelayMs(20, policy, () => 1)).toBe(15_000);
  });

  it('stays within [cap·(1-jitter), cap] for any attempt, including huge ones', () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, random) => {
        const delay = backoffDelayMs(attempt, defaultBackoffPolicy, () => random);
        const base = Math.min(defaultBackoffPolicy.maxMs, defaultBackoffPolicy.initialMs * 2 ** attempt);
        expect(delay).toBeLessThanOrEqual(base);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(base * (1 - defaultBackoffPolicy.jitter)));
      }),
    );
  });

  it('treats negative or fractional attempts as the nearest sane attempt', () => {
    expect(backoffDelayMs(-3, policy, () => 0)).toBe(500);
    expect(backoffDelayMs(1.7, policy, () => 0)).toBe(1_000);
  });
});

import { describe, expect, it } from 'vitest';
import { concurrencyLimit } from '../../../src/util/concurrency-limit.js';

describe('concurrencyLimit', () => {
  it('runs at most `max` tasks at once, starting the rest in call order, also after failures', async () => {
    const limit = concurrencyLimit(2);
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    const task = (i: number) => async () => {
      started.push(i);
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, (7 - i) * 2));
      inFlight--;
      if (i % 3 === 0) throw new Error(`task ${i} failed`);
      return i;
    };
    const results = await Promise.allSettled([0, 1, 2, 3, 4, 5, 6].map((i) => limit(task(i))));
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed'))).toEqual([
      'failed',
      1,
      2,
      'failed',
      4,
      5,
      'failed',
    ]);
  });

  it('refuses a limit below one', () => {
    expect(() => concurrencyLimit(0)).toThrow(RangeError);
  });
});

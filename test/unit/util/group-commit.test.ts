import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../../src/util/group-commit.js';

/** A write whose completion the test controls; records what state each write captured. */
function controlledWrites(state: { value: number }) {
  const writes: Array<{ captured: number; finish: (error?: Error) => void }> = [];
  const commit = new GroupCommit(() => {
    const captured = state.value;
    return new Promise<void>((resolve, reject) => {
      writes.push({ captured, finish: (error) => (error ? reject(error) : resolve()) });
    });
  });
  return { commit, writes };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('GroupCommit', () => {
  it('carries every change made before a write in that one write', async () => {
    const state = { value: 0 };
    const { commit, writes } = controlledWrites(state);
    const callers = Array.from({ length: 50 }, () => {
      state.value++;
      return commit.commit();
    });
    await tick();
    expect(writes).toHaveLength(1);
    expect(writes[0]?.captured).toBe(50);
    writes[0]?.finish();
    await Promise.all(callers);
    expect(writes).toHaveLength(1);
  });

  it('resolves a caller only with a write that started after it, one write at a time', async () => {
    const state = { value: 0 };
    const { commit, writes } = controlledWrites(state);
    state.value = 1;
    let firstDone = false;
    const first = commit.commit().then(() => {
      firstDone = true;
    });
    await tick();
    // Arrive while the first write runs: these need the next write, which waits for the first.
    state.value = 2;
    let laterDone = 0;
    const later = [commit.commit(), commit.commit()].map((p) => p.then(() => laterDone++));
    await tick();
    expect(writes).toHaveLength(1);
    writes[0]?.finish();
    await first;
    expect(firstDone).toBe(true);
    expect(laterDone).toBe(0);
    await tick();
    expect(writes).toHaveLength(2);
    expect(writes[1]?.captured).toBe(2);
    writes[1]?.finish();
    await Promise.all(later);
    expect(laterDone).toBe(2);
  });

  it('fails exactly the callers a failed write carried; the next write is a new attempt', async () => {
    const state = { value: 0 };
    const { commit, writes } = controlledWrites(state);
    const carried = [commit.commit(), commit.commit()];
    await tick();
    const next = commit.commit();
    writes[0]?.finish(new Error('disk full'));
    for (const p of carried) await expect(p).rejects.toThrow('disk full');
    await tick();
    expect(writes).toHaveLength(2);
    writes[1]?.finish();
    await expect(next).resolves.toBeUndefined();
    await expect(commit.settled()).resolves.toBeUndefined();
  });
});

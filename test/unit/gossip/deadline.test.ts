import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { deadline, settleBy } from '../../../src/gossip/deadline.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A real collection, without starting the test runner with --expose-gc: the regression this guards
// against (a timeout signal that never fires once collected) only shows after a GC.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

describe('deadline', () => {
  it('fires after its time with only the timer holding it (unlike AbortSignal.timeout inside any)', async () => {
    const { signal, clear } = deadline(50, new AbortController().signal);
    let fired = false;
    signal.addEventListener('abort', () => {
      fired = true;
    });
    collectGarbage();
    await sleep(120);
    expect(fired).toBe(true);
    expect((signal.reason as Error).name).toBe('TimeoutError');
    clear();
  });

  it('follows its parent and stops when cleared', async () => {
    const parent = new AbortController();
    const early = deadline(10_000, parent.signal);
    parent.abort(new Error('stopping'));
    expect(early.signal.aborted).toBe(true);
    expect((early.signal.reason as Error).message).toBe('stopping');
    early.clear();

    const cleared = deadline(20);
    cleared.clear();
    await sleep(50);
    expect(cleared.signal.aborted).toBe(false);
  });
});

describe('settleBy', () => {
  it('returns the work result when it finishes first', async () => {
    const { signal, clear } = deadline(1_000);
    expect(await settleBy(signal, async () => 'done')).toBe('done');
    clear();
  });

  it('rejects on abort even if the work never settles, running its cleanups', async () => {
    const { signal, clear } = deadline(30);
    let cleaned = false;
    const outcome = settleBy(signal, (onAbort) => {
      onAbort(() => {
        cleaned = true;
      });
      return new Promise<never>(() => {});
    });
    await expect(outcome).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(cleaned).toBe(true);
    clear();
  });

  it('does not start work once the signal has aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    let started = false;
    await expect(
      settleBy(controller.signal, async () => {
        started = true;
        return 1;
      }),
    ).rejects.toThrow('gone');
    expect(started).toBe(false);
  });

  it('runs a cleanup registered after the abort at once', async () => {
    const controller = new AbortController();
    let cleaned = false;
    const outcome = settleBy(controller.signal, async (onAbort) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      onAbort(() => {
        cleaned = true;
      });
      return 1;
    });
    controller.abort(new Error('gone'));
    await expect(outcome).rejects.toThrow('gone');
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(cleaned).toBe(true);
  });
});

import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { ABANDONED_TEMP_AGE_MS, type ForwardedRequest, replayDelQueue } from '../../../src/cni/del-queue.js';

describe('CNI DEL queue', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const request = (containerId: string): ForwardedRequest => ({
    env: { CNI_COMMAND: 'DEL', CNI_CONTAINERID: containerId, CNI_IFNAME: 'eth0' },
    config: { cniVersion: '1.0.0', name: 'weft', type: 'weft' },
  });

  // Files as the plugin queues them (test/unit/cni/shim.test.ts has the plugin's own).
  const queue = (containerId: string) =>
    writeFileSync(join(dir, `${containerId}:eth0.del.json`), JSON.stringify(request(containerId)));

  test('replays each queued DEL once, then the queue is empty', async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-delq-'));
    queue('c2');
    queue('c1');
    const seen: string[] = [];
    const outcome = await replayDelQueue(dir, async (r) => {
      seen.push(r.env.CNI_CONTAINERID as string);
    });
    expect(seen).toEqual(['c1', 'c2']);
    expect(outcome.replayed).toEqual(['c1:eth0.del.json', 'c2:eth0.del.json']);
    expect(readdirSync(dir)).toEqual([]);
  });

  test('removes temp files a crashed shim left, but not one a live shim may still be writing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-delq-'));
    const abandoned = 'c1:eth0.del.json.4242.tmp';
    const fresh = 'c2:eth0.del.json.4343.tmp';
    writeFileSync(join(dir, abandoned), '{"env":{');
    writeFileSync(join(dir, fresh), '{"env":{');
    const now = Date.now();
    const old = (now - ABANDONED_TEMP_AGE_MS - 1_000) / 1000;
    utimesSync(join(dir, abandoned), old, old);
    const replayed: ForwardedRequest[] = [];
    const outcome = await replayDelQueue(dir, async (r) => void replayed.push(r), now);
    expect(outcome.abandonedTemps).toEqual([abandoned]);
    expect(replayed).toEqual([]);
    expect(outcome.failed).toEqual([]);
    expect(readdirSync(dir)).toEqual([fresh]);
  });

  test('a missing queue directory is an empty queue', async () => {
    dir = join(tmpdir(), `weft-delq-missing-${process.pid}`);
    expect(await replayDelQueue(dir, async () => {})).toEqual({
      replayed: [],
      failed: [],
      abandonedTemps: [],
    });
  });
});

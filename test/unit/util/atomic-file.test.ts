import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../../src/util/atomic-file.js';

describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-atomic-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes with the given mode and leaves no temporary file', async () => {
    const path = join(dir, 'state.json');
    await writeFileAtomic(path, '{"a":1}\n', 0o600);
    expect(readFileSync(path, 'utf8')).toBe('{"a":1}\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  it('lets the later of two concurrent writes to one path win although its fsync is quicker', async () => {
    const path = join(dir, 'state.json');
    // The first write's fsync has megabytes to flush, the second's a few bytes: unordered, the
    // second would rename first and the first would overwrite it.
    const first = writeFileAtomic(path, Buffer.alloc(16 << 20, 'a'), 0o600);
    const second = writeFileAtomic(path, 'second', 0o600);
    await Promise.all([first, second]);
    expect(readFileSync(path, 'utf8')).toBe('second');
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  it('removes its temporary file when a write fails, and the next write to the path still happens', async () => {
    const path = join(dir, 'state.json');
    const failing = writeFileAtomic(path, 42 as unknown as string, 0o600);
    const next = writeFileAtomic(path, 'next', 0o600);
    await expect(failing).rejects.toThrow();
    await next;
    expect(readFileSync(path, 'utf8')).toBe('next');
    expect(readdirSync(dir)).toEqual(['state.json']);
  });
});

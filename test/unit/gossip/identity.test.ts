import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IDENTITY_FILE_NAME, IdentityFileError, loadOrCreateIdentity } from '../../../src/gossip/identity.js';

describe('loadOrCreateIdentity', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'weft-identity-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates the state directory and a 0600 key file, then reloads the same peer ID', async () => {
    const stateDir = join(root, 'var', 'lib', 'weft');
    const first = await loadOrCreateIdentity(stateDir);
    expect(first.created).toBe(true);
    expect(first.peerId).toMatch(/^12D3KooW/);
    expect((await stat(first.path)).mode & 0o777).toBe(0o600);
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    expect(await readdir(stateDir)).toEqual([IDENTITY_FILE_NAME]);

    const second = await loadOrCreateIdentity(stateDir);
    expect(second.created).toBe(false);
    expect(second.peerId).toBe(first.peerId);
    expect(second.privateKey.equals(first.privateKey)).toBe(true);
  });

  it.each<[string, Uint8Array]>([
    ['empty', new Uint8Array()],
    ['garbage', new TextEncoder().encode('not a protobuf key at all')],
    ['truncated', new Uint8Array([0x08, 0x01, 0x12, 0x40, 1, 2, 3])],
  ])('refuses a %s key file with a clear error and leaves it in place', async (_label, content) => {
    const path = join(root, IDENTITY_FILE_NAME);
    await writeFile(path, content, { mode: 0o600 });
    const error = await loadOrCreateIdentity(root).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(IdentityFileError);
    expect((error as Error).message).toContain(path);
    expect((error as Error).message).toMatch(/empty|corrupted/);
    expect((error as Error).message).toMatch(/delete it/);
    expect(new Uint8Array(await readFile(path))).toEqual(content);
  });

  it('reports an unreadable key path instead of replacing it', async () => {
    await mkdir(join(root, IDENTITY_FILE_NAME));
    await expect(loadOrCreateIdentity(root)).rejects.toThrow(IdentityFileError);
  });
});

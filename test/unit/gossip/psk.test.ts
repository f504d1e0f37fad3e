import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey } from '@libp2p/pnet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSecretError, loadClusterSecret, pskFromClusterSecret } from '../../../src/gossip/psk.js';

const decode = (psk: Uint8Array) => new TextDecoder().decode(psk);
const hex = 'a1'.repeat(32);

describe('pskFromClusterSecret', () => {
  it('passes a libp2p swarm key through unchanged (trailing newline ignored)', () => {
    const swarmKey = new Uint8Array(95);
    generateKey(swarmKey);
    expect(pskFromClusterSecret(swarmKey)).toEqual(swarmKey);
    expect(pskFromClusterSecret(`${decode(swarmKey)}\n`)).toEqual(swarmKey);
    expect(pskFromClusterSecret(decode(swarmKey).replaceAll('\n', '\r\n'))).toEqual(swarmKey);
  });

  it('wraps 64 hex digits as the key itself', () => {
    const psk = pskFromClusterSecret(hex);
    expect(psk.byteLength).toBe(95);
    expect(decode(psk)).toBe(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}`);
  });

  it('derives a stable, distinct key from a passphrase', () => {
    const a = pskFromClusterSecret('  long random cluster passphrase  ');
    expect(a).toEqual(pskFromClusterSecret('long random cluster passphrase'));
    expect(a).not.toEqual(pskFromClusterSecret('long random cluster passphrasf'));
    expect(decode(a)).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/);
  });

  it.each([
    ['empty', ''],
    ['blank', ' \n '],
    ['wrong codec', `/key/swarm/psk/1.0.0/\n/base64/\n${hex}`],
    ['short key', `/key/swarm/psk/1.0.0/\n/base16/\n${hex.slice(2)}`],
    ['non-hex key', `/key/swarm/psk/1.0.0/\n/base16/\n${'zz'.repeat(32)}`],
    ['trailing junk', `/key/swarm/psk/1.0.0/\n/base16/\n${hex}\nmore`],
    ['missing key line', '/key/swarm/psk/1.0.0/\n/base16/'],
  ])('rejects a %s secret', (_label, secret) => {
    expect(() => pskFromClusterSecret(secret)).toThrow(ClusterSecretError);
  });
});

describe('loadClusterSecret', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-psk-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads a key file, takes a value, or returns undefined when neither is set', async () => {
    const file = join(dir, 'secret');
    await writeFile(file, `${hex}\n`);
    expect(await loadClusterSecret({ file })).toEqual(pskFromClusterSecret(hex));
    expect(await loadClusterSecret({ value: hex })).toEqual(pskFromClusterSecret(hex));
    expect(await loadClusterSecret({})).toBeUndefined();
  });

  it('names the file in errors and refuses two sources', async () => {
    const empty = join(dir, 'empty');
    await writeFile(empty, '\n');
    await expect(loadClusterSecret({ file: empty })).rejects.toThrow(empty);
    await expect(loadClusterSecret({ file: join(dir, 'missing') })).rejects.toThrow(/cannot read/);
    await expect(loadClusterSecret({ file: empty, value: 'x' })).rejects.toThrow(/not both/);
  });
});

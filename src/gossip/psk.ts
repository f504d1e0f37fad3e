import { hkdfSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';

const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/';
const KEY_BYTES = 32;
const hex64 = /^[0-9a-fA-F]{64}$/;

export class ClusterSecretError extends Error {
  override readonly name = 'ClusterSecretError';
}

/**
 * Turns a cluster secret into the 95-byte PSK document `@libp2p/pnet` expects. Accepted forms:
 * - a libp2p swarm key (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits), as `generateKey` writes;
 * - 64 hex digits: the 32-byte key itself;
 * - any other text: a passphrase, stretched with HKDF-SHA256 under a weft-specific label. HKDF does
 *   not slow down guessing, so a passphrase must itself be long and random.
 * Surrounding whitespace (e.g. a file's trailing newline) is ignored.
 */
export function pskFromClusterSecret(secret: string | Uint8Array): Uint8Array {
  const text = (typeof secret === 'string' ? secret : new TextDecoder().decode(secret)).trim();
  if (text.length === 0) throw new ClusterSecretError('cluster secret is empty');
  return encodeSwarmKey(keyFromText(text));
}

/** Reads the secret from a file or takes it from a string (e.g. an environment variable); not both. */
export async function loadClusterSecret(source: {
  file?: string;
  value?: string;
}): Promise<Uint8Array | undefined> {
  if (source.file !== undefined && source.value !== undefined) {
    throw new ClusterSecretError('give the cluster secret either as a file or as a value, not both');
  }
  if (source.value !== undefined) return pskFromClusterSecret(source.value);
  if (source.file === undefined) return undefined;
  let bytes: Buffer;
  try {
    bytes = await readFile(source.file);
  } catch (err) {
    throw new ClusterSecretError(
      `cannot read cluster secret file ${source.file}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  try {
    return pskFromClusterSecret(bytes);
  } catch (err) {
    throw new ClusterSecretError(`cluster secret file ${source.file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function keyFromText(text: string): Buffer {
  if (text.startsWith(SWARM_KEY_HEADER)) return parseSwarmKey(text);
  if (hex64.test(text)) return Buffer.from(text, 'hex');
  return Buffer.from(hkdfSync('sha256', text, 'weft-cluster-secret', 'libp2p-pnet-psk-v1', KEY_BYTES));
}

function parseSwarmKey(text: string): Buffer {
  const [, codec, key, ...rest] = text.split(/\r?\n/);
  if (codec !== '/base16/') {
    throw new ClusterSecretError(`swarm key codec ${JSON.stringify(codec)} is not supported (only /base16/)`);
  }
  if (key === undefined || !hex64.test(key) || rest.some((line) => line.trim() !== '')) {
    throw new ClusterSecretError('swarm key must end with exactly 64 hex digits (32 bytes)');
  }
  return Buffer.from(key, 'hex');
}

function encodeSwarmKey(key: Buffer): Uint8Array {
  return new TextEncoder().encode(`${SWARM_KEY_HEADER}\n/base16/\n${key.toString('hex')}`);
}

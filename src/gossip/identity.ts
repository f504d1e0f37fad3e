import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../util/atomic-file.js';

export const IDENTITY_FILE_NAME = 'identity.key';

export class IdentityFileError extends Error {
  override readonly name = 'IdentityFileError';
}

export interface LoadedIdentity {
  privateKey: PrivateKey;
  peerId: string;
  path: string;
  created: boolean;
}

/**
 * Loads the node's libp2p key from `<stateDir>/identity.key` (protobuf-encoded, as libp2p writes
 * keys), creating it on first start. The peer ID is derived from this key, so an unreadable file is an
 * error and is never replaced: replacing it would silently turn this node into a different peer.
 */
export async function loadOrCreateIdentity(stateDir: string, logger?: Logger): Promise<LoadedIdentity> {
  const path = join(stateDir, IDENTITY_FILE_NAME);
  let bytes: Buffer | undefined;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new IdentityFileError(`cannot read identity key ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  if (bytes !== undefined) {
    const privateKey = decodeIdentity(path, bytes);
    await warnIfReadableByOthers(path, logger);
    const peerId = peerIdFromPrivateKey(privateKey).toString();
    logger?.debug({ path, peerId }, 'loaded identity key');
    return { privateKey, peerId, path, created: false };
  }

  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const privateKey = await generateKeyPair('Ed25519');
  await writeFileAtomic(path, privateKeyToProtobuf(privateKey), 0o600);
  const peerId = peerIdFromPrivateKey(privateKey).toString();
  logger?.info({ path, peerId }, 'created identity key');
  return { privateKey, peerId, path, created: true };
}

function decodeIdentity(path: string, bytes: Uint8Array): PrivateKey {
  const advice = 'restore it from a backup, or delete it to start this node under a new peer ID';
  if (bytes.byteLength === 0) {
    throw new IdentityFileError(`identity key ${path} is empty (corrupted); ${advice}`);
  }
  try {
    return privateKeyFromProtobuf(bytes);
  } catch (err) {
    throw new IdentityFileError(`identity key ${path} is corrupted (${(err as Error).message}); ${advice}`, {
      cause: err,
    });
  }
}

async function warnIfReadableByOthers(path: string, logger: Logger | undefined): Promise<void> {
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) {
    logger?.warn({ path, mode: (mode & 0o777).toString(8) }, 'identity key is readable by group or others');
  }
}

import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeAbandonedTemps, writeFileAtomic } from '../util/atomic-file.js';
import { formatCidr, parseCidr } from './address.js';
import { IpamStateError } from './errors.js';
import { type IpamSnapshot, parseSnapshot } from './snapshot.js';

/**
 * The IPAM state on disk: one JSON file holding ring, allocations and Paxos votes together, wrapped in
 * an envelope with a format tag and a SHA-256 of the state. Writes are atomic: temp file, fsync, rename,
 * fsync of the directory. Anything unexpected on load is an IpamStateError, never a guess.
 */

export const IPAM_STATE_FILE = 'ipam-state.json';
const ENVELOPE_FORMAT = 'weft-ipam-state';

export interface ExpectedIdentity {
  readonly clusterRange: string;
  /** Omit to learn the peer name from the file (the agent's identity survives restarts this way). */
  readonly peer?: string;
}

function checksum(stateJson: string): string {
  return createHash('sha256').update(stateJson).digest('hex');
}

function canonicalCidr(text: string): string {
  try {
    return formatCidr(parseCidr(text));
  } catch {
    return text;
  }
}

export function ipamStatePath(dir: string): string {
  return join(dir, IPAM_STATE_FILE);
}

export async function saveIpamState(dir: string, snapshot: IpamSnapshot): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const stateJson = JSON.stringify(snapshot);
  const body = `{"format":"${ENVELOPE_FORMAT}","checksum":"${checksum(stateJson)}","state":${stateJson}}\n`;
  await writeFileAtomic(ipamStatePath(dir), body, 0o600);
}

/**
 * Loads the saved state, or undefined if there is none. A leftover temp file (a write interrupted
 * before its rename) is removed: the state file itself is always the last complete write.
 */
export async function loadIpamState(
  dir: string,
  expected: ExpectedIdentity,
): Promise<IpamSnapshot | undefined> {
  const path = ipamStatePath(dir);
  await removeAbandonedTemps(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new IpamStateError(`cannot read IPAM state file ${path}: ${(error as Error).message}`);
  }
  const advice =
    "Restore it from a backup, or move it away and run 'rmpeer' for this node's old peer name from another " +
    'node before starting afresh (starting without it forgets which addresses this node handed out).';
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch (error) {
    throw new IpamStateError(
      `IPAM state file ${path} is not valid JSON (${(error as Error).message}); it is truncated or corrupted. ${advice}`,
    );
  }
  if (
    typeof envelope !== 'object' ||
    envelope === null ||
    (envelope as { format?: unknown }).format !== ENVELOPE_FORMAT
  ) {
    throw new IpamStateError(
      `${path} is not a weft IPAM state file (no "format": "${ENVELOPE_FORMAT}"). ${advice}`,
    );
  }
  const { state, checksum: recorded } = envelope as { state?: unknown; checksum?: unknown };
  if (typeof recorded !== 'string' || checksum(JSON.stringify(state)) !== recorded) {
    throw new IpamStateError(
      `IPAM state file ${path} fails its checksum: it was corrupted or edited. ${advice}`,
    );
  }
  const snapshot = parseSnapshot(state, `IPAM state file ${path}`);
  if (canonicalCidr(snapshot.clusterRange) !== canonicalCidr(expected.clusterRange)) {
    throw new IpamStateError(
      `IPAM state file ${path} is for cluster range ${snapshot.clusterRange}, but this agent is configured with ` +
        `${expected.clusterRange}. Configure the range the cluster was created with, or use a fresh state ` +
        'directory on every node to change it.',
    );
  }
  if (expected.peer !== undefined && snapshot.peer !== expected.peer) {
    throw new IpamStateError(
      `IPAM state file ${path} belongs to peer '${snapshot.peer}', but this agent is peer '${expected.peer}'. ` +
        'Start the agent with its old peer name, or point it at its own state directory.',
    );
  }
  return snapshot;
}

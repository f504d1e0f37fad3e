import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a file so that readers see either the old content or the complete new content: write a
 * temporary sibling with the final mode, fsync it, rename it over the target, then fsync the directory
 * so the rename itself survives a crash.
 *
 * The steps run synchronously: the files are small (keys, IPAM state), and with the promise API each of
 * the seven steps waited for the event loop's next turn. With 20 agents on 2 cores that made an IPAM save,
 * which every Paxos step waits for, take seconds; blocking for the fsync itself costs milliseconds.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `${tempPrefix(path)}${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const file = openSync(tmp, 'wx', mode);
  try {
    writeFileSync(file, data);
    fsyncSync(file);
  } catch (err) {
    closeSync(file);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(file);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const dirHandle = openSync(dir, 'r');
  try {
    fsyncSync(dirHandle);
  } finally {
    closeSync(dirHandle);
  }
}

function tempPrefix(path: string): string {
  return `.${basename(path)}.`;
}

/** Removes temp files that writeFileAtomic left for `path` when a process died mid-write. */
export async function removeAbandonedTemps(path: string): Promise<void> {
  const prefix = tempPrefix(path);
  const dir = dirname(path);
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith(prefix) && name.endsWith('.tmp')) await rm(join(dir, name), { force: true });
  }
}

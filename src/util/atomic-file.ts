import { randomBytes } from 'node:crypto';
import { closeSync, fsync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const fsyncOnThreadpool = promisify(fsync);

/** The write in progress per path: writes to one path complete in the order they were called. */
const writing = new Map<string, Promise<void>>();

/**
 * Writes a file so that readers see either the old content or the complete new content: write a
 * temporary sibling with the final mode, fsync it, rename it over the target, then fsync the directory
 * so the rename itself survives a crash.
 *
 * The cheap steps (open, write, close, rename) run synchronously: with the promise API each step
 * waited for the event loop's next turn, and with 20 agents on 2 cores that made an IPAM save, which
 * every Paxos step waits for, take seconds. The two fsyncs wait for the disk (milliseconds each) and
 * run on the threadpool: blocking the loop for them stalled every request, e.g. each IPAM save of 50
 * concurrent CNI ADDs. A later write to the same path waits for the earlier one, so that it renames last.
 */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode: number): Promise<void> {
  const previous = writing.get(path) ?? Promise.resolve();
  const mine = previous.then(
    () => writeNow(path, data, mode),
    () => writeNow(path, data, mode),
  );
  writing.set(path, mine);
  const forget = () => {
    if (writing.get(path) === mine) writing.delete(path);
  };
  mine.then(forget, forget);
  return mine;
}

async function writeNow(path: string, data: Uint8Array | string, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `${tempPrefix(path)}${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const file = openSync(tmp, 'wx', mode);
  try {
    writeFileSync(file, data);
    await fsyncOnThreadpool(file);
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
    await fsyncOnThreadpool(dirHandle);
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

/**
 * DELs that arrived while the agent was down (as Cilium does): the plugin (queue_del in
 * cni-shim/weft-cni.c) writes the request it would have forwarded to `<containerID>:<ifname>.del.json`
 * (a temp sibling, fsync, rename, fsync of the directory), and the agent replays the files on start
 * and before each CNI request it serves, so a release is never lost and never races a later ADD of
 * the same attachment.
 */
import { readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** What the plugin forwards to the agent: the CNI_* environment and its stdin. */
export interface ForwardedRequest {
  env: Record<string, string>;
  config: Record<string, unknown>;
}

const SUFFIX = '.del.json';
const TEMP_SUFFIX = '.tmp';
/**
 * A shim writes its temp file within milliseconds; one older than this was left by a shim that died
 * mid-write. An age, not the writer's pid: the agent may run in another pid namespace than the shim.
 */
export const ABANDONED_TEMP_AGE_MS = 60_000;

export interface ReplayOutcome {
  replayed: string[];
  /** Files that could not be parsed or replayed; renamed to *.failed and kept for a person. */
  failed: Array<{ file: string; error: string }>;
  /** Temp files of shims that died mid-write (their DEL never reached the queue), removed. */
  abandonedTemps: string[];
}

/**
 * Replays and removes every queued DEL, and removes abandoned temp files; a missing directory means
 * an empty queue.
 */
export async function replayDelQueue(
  dir: string,
  replay: (request: ForwardedRequest) => Promise<void>,
  now: number = Date.now(),
): Promise<ReplayOutcome> {
  const outcome: ReplayOutcome = { replayed: [], failed: [], abandonedTemps: [] };
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return outcome;
    throw error;
  }
  for (const name of names.filter((n) => n.endsWith(SUFFIX)).sort()) {
    const file = join(dir, name);
    try {
      const request = JSON.parse(await readFile(file, 'utf8')) as ForwardedRequest;
      await replay(request);
      await unlink(file);
      outcome.replayed.push(name);
    } catch (error) {
      await rename(file, `${file}.failed`).catch(() => undefined);
      outcome.failed.push({ file: name, error: (error as Error).message });
    }
  }
  for (const name of names.filter((n) => n.endsWith(TEMP_SUFFIX))) {
    const file = join(dir, name);
    const modified = await stat(file).then(
      (s) => s.mtimeMs,
      () => undefined,
    );
    if (modified === undefined || now - modified < ABANDONED_TEMP_AGE_MS) continue;
    await unlink(file).catch(() => undefined);
    outcome.abandonedTemps.push(name);
  }
  return outcome;
}

/**
 * Lab processes outlive the `lab` command that started them (agents keep running after `lab up`
 * returns), so they are started detached and stopped later by a recorded pid and start time.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProcessRef } from './state.js';

const TERM_GRACE_MS = 3_000;

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), if it lives. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

export function isRunning(ref: ProcessRef | undefined): boolean {
  return ref !== undefined && processStartTime(ref.pid) === ref.startTime;
}

/** Starts `argv` inside network namespace `ns`, detached, output appended to `logFile`. */
export function spawnDetached(ns: string, argv: readonly string[], logFile: string): ProcessRef {
  const fd = openSync(logFile, 'a');
  try {
    // `ip netns exec` (not nsenter) so /sys shows the namespace's own devices; it execs the
    // program, so the pid is the program's own.
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start ${argv[0]} in ${ns}`);
    return { pid, startTime: processStartTime(pid) ?? '' };
  } finally {
    closeSync(fd);
  }
}

/** Sends `signal` if the process is still the one recorded. */
export function signalProcess(ref: ProcessRef, signal: NodeJS.Signals): boolean {
  if (!isRunning(ref)) return false;
  try {
    process.kill(ref.pid, signal);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(ref: ProcessRef, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(ref)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/** SIGTERM (or SIGKILL at once), then SIGKILL after a grace period; waits until it is gone. */
export async function stopProcess(
  ref: ProcessRef | undefined,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  if (ref === undefined || !signalProcess(ref, signal)) return;
  if (await waitGone(ref, TERM_GRACE_MS)) return;
  signalProcess(ref, 'SIGKILL');
  await waitGone(ref, TERM_GRACE_MS);
}

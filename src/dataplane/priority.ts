import { getPriority, setPriority } from 'node:os';
import type { Logger } from '../util/log.js';

/**
 * Nice value for the agent process, which carries the data plane. The kernel's own tunnel runs in
 * softirq context, ahead of every process; a userspace data plane competing with the pods on equal
 * terms gets a fair share of a busy node's CPU instead, drops packets and adds scheduling delay to
 * every hop (measured in bench/README.md).
 */
export const DATAPLANE_NICE = -10;

/** Raises the process's priority to {@link DATAPLANE_NICE} (never lowers it); logs when it cannot. */
export function raiseDataplanePriority(log: Logger): void {
  const current = getPriority(0);
  if (current <= DATAPLANE_NICE) return;
  try {
    setPriority(0, DATAPLANE_NICE);
  } catch (error) {
    log.warn({ err: error, nice: current }, 'cannot raise the data plane priority; it will compete with pods');
  }
}

/**
 * Runs NetlinkPodLinks (and inspectPod, the oracle) inside the network namespace this process was
 * started in, as the agent does: `node … pod-links-driver.ts <batches json>`. Each batch is a list of
 * operations run concurrently (each on a thread of its own); batches run in order.
 * Prints one JSON line: every operation's outcome, and the threads whose network namespace is not
 * the process's after all of it.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import type { NetlinkError } from '../../../src/native/addon.js';
import { type HostRoute, NetlinkPodLinks } from '../../../src/plumbing/pod-links.js';
import { inspectPod, type PodLinkSpec } from '../../../src/plumbing/pod-network.js';

export type DriverOp =
  | { attach: PodLinkSpec }
  | { detach: string; route?: HostRoute }
  | { inspect: PodLinkSpec };
export type Outcome =
  | { ok: true; existed?: boolean; problems?: string[] }
  | { ok: false; code?: string; step?: string; message: string };
export interface DriverReport {
  outcomes: Outcome[][];
  threadsElsewhere: string[];
}

const links = new NetlinkPodLinks();

async function perform(op: DriverOp): Promise<Outcome> {
  try {
    if ('attach' in op) await links.attach(op.attach);
    else if ('detach' in op) return { ok: true, existed: await links.detach(op.detach, op.route) };
    else return { ok: true, problems: await inspectPod(op.inspect) };
    return { ok: true };
  } catch (error) {
    const { code, step, message } = error as NetlinkError;
    return { ok: false, code, step, message };
  }
}

const batches = JSON.parse(process.argv[2] ?? '[]') as DriverOp[][];
const outcomes: Outcome[][] = [];
for (const batch of batches) outcomes.push(await Promise.all(batch.map(perform)));
const own = readlinkSync('/proc/self/ns/net');
const tasks = readdirSync('/proc/self/task');
const threadsElsewhere = tasks
  .map((tid) => `${tid}: ${readlinkSync(`/proc/self/task/${tid}/ns/net`)}`)
  .filter((entry) => !entry.endsWith(own));
const report: DriverReport = { outcomes, threadsElsewhere };
process.stdout.write(`${JSON.stringify(report)}\n`);

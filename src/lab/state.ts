/**
 * What a running lab consists of, kept on disk (`/run/weft-lab/<lab>/state.json`) so that every
 * `lab` command, and `down` after a crash, knows what exists. Written atomically after each change.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';

export const LAB_ROOT = '/run/weft-lab';
const LAB_NAME = /^[a-z][a-z0-9]{0,5}$/;

/** How pods get their network: weft's CNI plugin, or the reference bridge + host-local with static routes. */
export type CniFlavor = 'weft' | 'reference';

export interface ProcessRef {
  pid: number;
  /** Start time in clock ticks since boot: a recycled pid is never mistaken for ours. */
  startTime: string;
}

export interface LabNode {
  name: string;
  ns: string;
  underlayIp: string;
  dir: string;
  /** Switch port (the veth end on the underlay bridge). */
  switchPort: string;
  agent?: ProcessRef | undefined;
  /** Reference flavor: this node's fixed pod subnet. */
  podSubnet?: string | undefined;
}

export interface LabPod {
  name: string;
  node: string;
  ip: string;
  containerId: string;
  role: 'web' | 'shell';
  /** `podman run` until the address was known, in ms. */
  startMs?: number;
}

export interface LabState {
  name: string;
  dir: string;
  cni: CniFlavor;
  switchNs: string;
  underlayPrefix: string;
  /** Next node index to hand out (names are never reused within a lab). */
  nextIndex: number;
  nodes: LabNode[];
  pods: LabPod[];
  partitions: Array<[string, string]>;
}

export function checkLabName(name: string): void {
  if (!LAB_NAME.test(name))
    throw new RangeError(`lab name "${name}" must be a lowercase letter then up to 5 of [a-z0-9]`);
}

export function labDir(name: string): string {
  checkLabName(name);
  return join(LAB_ROOT, name);
}

export function stateFile(name: string): string {
  return join(labDir(name), 'state.json');
}

export function loadState(name: string): LabState | undefined {
  const file = stateFile(name);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as LabState;
}

export async function saveState(state: LabState): Promise<void> {
  await mkdir(state.dir, { recursive: true });
  await writeFileAtomic(stateFile(state.name), `${JSON.stringify(state, null, 2)}\n`, 0o644);
}

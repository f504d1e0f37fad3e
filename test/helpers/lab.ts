import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Lab, type LabOptions } from '../../src/lab/lab.js';
import { LAB_ROOT } from '../../src/lab/state.js';
import { ownerRecordAlive, writeOwnerRecord } from './netns.js';

/** Test labs are named `e<4 hex>`; the owner file lets a later run remove those of dead runs. */
const TEST_LAB = /^e[0-9a-f]{4}$/;
const OWNER = 'owner';

/** Removes test labs whose test process is gone. */
export async function sweepStaleTestLabs(): Promise<void> {
  const names = existsSync(LAB_ROOT) ? readdirSync(LAB_ROOT) : [];
  for (const name of names)
    if (TEST_LAB.test(name) && !ownerRecordAlive(join(LAB_ROOT, name, OWNER))) await Lab.down(name);
}

/** A fresh test lab name, marked as this process's so that no other run sweeps it. */
export async function reserveTestLabName(): Promise<string> {
  await sweepStaleTestLabs();
  const name = `e${randomBytes(2).toString('hex')}`;
  mkdirSync(join(LAB_ROOT, name), { recursive: true });
  writeOwnerRecord(join(LAB_ROOT, name, OWNER));
  return name;
}

/** A lab for one test file; tear it down with `Lab.down(lab.name)` in afterAll. */
export async function startTestLab(options: LabOptions): Promise<Lab> {
  const name = await reserveTestLabName();
  try {
    return await Lab.up(name, options);
  } catch (error) {
    await Lab.down(name);
    throw error;
  }
}

/**
 * One lab shared by the tests of a describe block: started in beforeAll, torn down in afterAll.
 * Returns a getter for the lab (valid inside the tests).
 */
export function useTestLab(options: LabOptions, startTimeoutMs: number): () => Lab {
  let lab: Lab | undefined;
  beforeAll(async () => {
    lab = await startTestLab(options);
  }, startTimeoutMs);
  afterAll(async () => {
    if (lab) await Lab.down(lab.name);
  }, 60_000);
  return () => {
    if (lab === undefined) throw new Error('the test lab did not start');
    return lab;
  };
}

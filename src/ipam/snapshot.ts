import { z } from 'zod';
import { IpamStateError } from './errors.js';
import { acceptedSchema, proposalSchema, wireRingSchema } from './messages.js';

/**
 * Everything an IpamNode must remember across restarts, as one JSON-serialisable value, so that the ring,
 * the allocations and the Paxos votes are always saved together (one atomic write, see persistence.ts).
 */

export const SNAPSHOT_FORMAT = 1;

const conflictSchema = z.object({
  kind: z.enum(['seed-mismatch', 'range-mismatch', 'invalid-message', 'version-tie', 'ownership-lost']),
  from: z.string(),
  message: z.string(),
  atMs: z.number(),
  orphaned: z.array(z.object({ containerId: z.string(), address: z.string() })),
});
export type IpamConflict = z.infer<typeof conflictSchema>;
export type IpamConflictKind = IpamConflict['kind'];

export const snapshotSchema = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  peer: z.string().min(1),
  clusterRange: z.string(),
  ring: wireRingSchema.nullable(),
  paxos: z.object({
    promised: proposalSchema.nullable(),
    accepted: acceptedSchema.nullable(),
    lastRound: z.number().int().min(0),
  }),
  allocations: z.array(z.object({ containerId: z.string().min(1), address: z.string() })),
  conflicts: z.array(conflictSchema),
});
export type IpamSnapshot = z.infer<typeof snapshotSchema>;

/** Validates a JSON-decoded snapshot; `source` names where it came from in the error message. */
export function parseSnapshot(raw: unknown, source: string): IpamSnapshot {
  const result = snapshotSchema.safeParse(raw);
  if (!result.success) {
    throw new IpamStateError(
      `${source} is not a valid weft IPAM state (${z.prettifyError(result.error).replaceAll('\n', '; ')}). ` +
        'It is damaged or was written by an incompatible version: restore it from a backup, or move it ' +
        "away and run 'rmpeer' for this node's old peer name from another node before starting afresh.",
    );
  }
  return result.data;
}

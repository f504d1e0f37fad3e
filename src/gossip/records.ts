import { z } from 'zod';
import { dataplaneFeaturesSchema } from '../dataplane/features.js';
import { nodeNameSchema } from '../util/node-name.js';

/**
 * The topology record every node gossips about itself. Records are JSON so that they stay readable
 * in logs and tolerant of added fields (unknown fields are stripped, not rejected).
 */
export const TOPOLOGY_RECORD_VERSION = 1;
export const DEFAULT_MAX_RECORD_BYTES = 1024;

const base58Pattern = /^[1-9A-HJ-NP-Za-km-z]{1,128}$/;
const port = z.int().min(1).max(65_535);

export const topologyRecordSchema = z.object({
  v: z.literal(TOPOLOGY_RECORD_VERSION),
  name: nodeNameSchema,
  peerId: z.string().regex(base58Pattern),
  underlay: z.ipv4(),
  gossipPort: port,
  dataPort: port,
  version: z.string().min(1).max(64),
  /** Start time (ms since epoch) of the sending process: a restart begins a new, larger incarnation. */
  incarnation: z.int().nonnegative(),
  /** Heartbeat counter within an incarnation. */
  seq: z.int().nonnegative(),
  sentAtMs: z.int().nonnegative(),
  /** Pods holding an address on the sender (for `agent status peers`); absent from older agents. */
  addressesInUse: z.int().nonnegative().optional(),
  /** Data-plane features the sender supports (src/dataplane/features.ts); absent from older agents. */
  features: dataplaneFeaturesSchema.optional(),
});

export type TopologyRecord = z.infer<typeof topologyRecordSchema>;

export type RecordRejectReason =
  | 'oversize'
  | 'malformed'
  | 'schema'
  | 'unsigned'
  | 'peer-id-mismatch'
  | 'stale'
  | 'name-conflict'
  | 'self';

export const recordRejectReasons: readonly RecordRejectReason[] = [
  'oversize',
  'malformed',
  'schema',
  'unsigned',
  'peer-id-mismatch',
  'stale',
  'name-conflict',
  'self',
];

export type RecordCheck =
  | { ok: true; record: TopologyRecord }
  | { ok: false; reason: RecordRejectReason; detail: string };

/** What a record check needs from a gossipsub message; `from` is present only on signed messages. */
export interface ReceivedMessage {
  data: Uint8Array;
  signedBy: string | undefined;
}

export function encodeRecord(record: TopologyRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(record));
}

/**
 * Decodes a record and checks everything that needs no knowledge of other records: size, JSON, schema,
 * and that the record speaks for the peer that signed the message (so nobody can announce another
 * peer's ID or address). Staleness and name ownership are the topology's job.
 */
export function checkReceivedRecord(
  message: ReceivedMessage,
  maxBytes = DEFAULT_MAX_RECORD_BYTES,
): RecordCheck {
  if (message.data.byteLength > maxBytes) {
    return { ok: false, reason: 'oversize', detail: `${message.data.byteLength} bytes > ${maxBytes}` };
  }
  if (message.signedBy === undefined) {
    return { ok: false, reason: 'unsigned', detail: 'message carries no signed sender' };
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(message.data));
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message };
  }
  const parsed = topologyRecordSchema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, reason: 'schema', detail: z.prettifyError(parsed.error).replaceAll('\n', '; ') };
  }
  if (parsed.data.peerId !== message.signedBy) {
    return {
      ok: false,
      reason: 'peer-id-mismatch',
      detail: `record claims ${parsed.data.peerId} but was signed by ${message.signedBy}`,
    };
  }
  return { ok: true, record: parsed.data };
}

/** Orders records of one peer: a later incarnation wins, then a higher heartbeat counter. */
export function isNewerRecord(candidate: TopologyRecord, current: TopologyRecord): boolean {
  if (candidate.incarnation !== current.incarnation) return candidate.incarnation > current.incarnation;
  return candidate.seq > current.seq;
}

import { z } from 'zod';
import type { Interval } from './address.js';
import type { Ring, RingEntry } from './ring.js';

/**
 * IPAM messages: plain JSON objects. `ring` is gossiped to everyone (broadcast) and also sent to one peer
 * as the answer to space-request, ring-request and paxos-prepare; all other types are addressed to one
 * peer. Every message names the cluster range so that peers of different clusters never act on each
 * other's messages. Validate anything received with parseIpamMessage before IpamNode.receive.
 */

/** 2: addressed messages travel as gossip broadcasts with a `to` list (src/control/ipam-wire.ts). */
export const IPAM_PROTOCOL_VERSION = 2;
const MAX_PEER_NAME = 256;
const MAX_RING_ENTRIES = 1 << 20;

const peerName = z.string().min(1).max(MAX_PEER_NAME);
const uint32 = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);
const version = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const count = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32);
const cidrText = z.string().max(32);

export const proposalSchema = z.object({
  round: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  proposer: peerName,
});
export type Proposal = z.infer<typeof proposalSchema>;

/** A Paxos value: the sorted peer names to split the range among. */
const seedValue = z.array(peerName).min(1).max(MAX_RING_ENTRIES);

export const acceptedSchema = z.object({ proposal: proposalSchema, value: seedValue });
export type AcceptedValue = z.infer<typeof acceptedSchema>;

/** The ring on the wire: peer names once in `peers`, entries as [token, peer index, version, free]. */
export const wireRingSchema = z
  .object({
    seedId: z.string().min(1).max(128),
    peers: z.array(peerName).max(MAX_RING_ENTRIES),
    entries: z
      .array(z.tuple([uint32, z.number().int().min(0), version, count]))
      .min(1)
      .max(MAX_RING_ENTRIES),
  })
  .superRefine((ring, ctx) => {
    let previous = -1;
    for (const [token, peerIndex] of ring.entries) {
      if (peerIndex >= ring.peers.length) {
        ctx.addIssue({ code: 'custom', message: `peer index ${peerIndex} out of bounds` });
        return;
      }
      if (token <= previous) {
        ctx.addIssue({ code: 'custom', message: 'ring tokens are not strictly ascending' });
        return;
      }
      previous = token;
    }
  });
export type WireRing = z.infer<typeof wireRingSchema>;

const base = { v: z.literal(IPAM_PROTOCOL_VERSION), range: cidrText };

export const ipamMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ring'), ...base, ring: wireRingSchema }),
  z.object({ type: z.literal('ring-request'), ...base }),
  z.object({ type: z.literal('space-request'), ...base, seedId: z.string().max(128) }),
  z.object({ type: z.literal('space-denied'), ...base, seedId: z.string().max(128) }),
  z.object({ type: z.literal('paxos-prepare'), ...base, proposal: proposalSchema }),
  z.object({
    type: z.literal('paxos-promise'),
    ...base,
    proposal: proposalSchema,
    accepted: acceptedSchema.nullable(),
  }),
  z.object({ type: z.literal('paxos-accept'), ...base, proposal: proposalSchema, value: seedValue }),
  z.object({ type: z.literal('paxos-accepted'), ...base, proposal: proposalSchema }),
  z.object({ type: z.literal('paxos-reject'), ...base, proposal: proposalSchema, promised: proposalSchema }),
]);
export type IpamMessage = z.infer<typeof ipamMessageSchema>;
export type IpamMessageType = IpamMessage['type'];

/** Where a message goes: one peer, or everyone through gossip. */
export const BROADCAST = 'broadcast';
export interface Outbound {
  readonly to: string;
  readonly message: IpamMessage;
}

export type ParsedMessage = { ok: true; message: IpamMessage } | { ok: false; error: string };

/** Validates a received, JSON-decoded message. */
export function parseIpamMessage(raw: unknown): ParsedMessage {
  const result = ipamMessageSchema.safeParse(raw);
  if (result.success) return { ok: true, message: result.data };
  return { ok: false, error: z.prettifyError(result.error) };
}

const encoded = new WeakMap<Ring, WireRing>();

/** The wire form of a ring; rings are immutable, so each one is encoded once. Do not mutate the result. */
export function encodeRing(ring: Ring): WireRing {
  let wire = encoded.get(ring);
  if (wire === undefined) {
    wire = encodeRingUncached(ring);
    encoded.set(ring, wire);
  }
  return wire;
}

function encodeRingUncached(ring: Ring): WireRing {
  const index = new Map<string, number>();
  const peers: string[] = [];
  const entries = ring.entries.map((entry): [number, number, number, number] => {
    let i = index.get(entry.peer);
    if (i === undefined) {
      i = peers.length;
      peers.push(entry.peer);
      index.set(entry.peer, i);
    }
    return [entry.token, i, entry.version, entry.free];
  });
  return { seedId: ring.seedId, peers, entries };
}

/**
 * True if merging `wire` into `local` would change nothing: every token it holds is in `local` with a
 * newer version, or the same version and content. Allocates nothing; lets a node skip the common
 * case of a gossiped ring it already has.
 */
export function ringAddsNothing(local: Ring, wire: WireRing): boolean {
  const mine = local.entries;
  let i = 0;
  for (const [token, peerIndex, entryVersion, free] of wire.entries) {
    while (i < mine.length && (mine[i] as RingEntry).token < token) i++;
    const entry = mine[i];
    if (entry === undefined || entry.token !== token || entry.version < entryVersion) return false;
    if (entry.version === entryVersion && (entry.peer !== wire.peers[peerIndex] || entry.free !== free))
      return false;
  }
  return true;
}

/**
 * True if `wire` says `owner` owns a token that `local` has a newer version of: the sender acts on
 * ownership that was changed behind its back (rmpeer, a restored old state). Allocates nothing.
 */
export function staleOwnership(local: Ring, wire: WireRing, owner: string): boolean {
  const ownerIndex = wire.peers.indexOf(owner);
  if (ownerIndex < 0) return false;
  const mine = local.entries;
  let i = 0;
  for (const [token, peerIndex, entryVersion] of wire.entries) {
    while (i < mine.length && (mine[i] as RingEntry).token < token) i++;
    const entry = mine[i];
    if (
      peerIndex === ownerIndex &&
      entry !== undefined &&
      entry.token === token &&
      entry.version > entryVersion
    ) {
      return true;
    }
  }
  return false;
}

export function decodeRing(wire: WireRing, range: Interval): Ring {
  const entries = wire.entries.map(
    ([token, peerIndex, entryVersion, free]): RingEntry => ({
      token,
      peer: wire.peers[peerIndex] as string,
      version: entryVersion,
      free,
    }),
  );
  return { range, seedId: wire.seedId, entries };
}

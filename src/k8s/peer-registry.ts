import { z } from 'zod';
import { isNodeName, nodeNameSchema } from '../util/node-name.js';

/**
 * The peer registry: what every agent of the cluster agrees on through one ConfigMap, changed only by
 * optimistic-concurrency writes (see registry-store.ts). It holds
 * - `seeds`: the node names that split the IP range first, decided once by the first agent to write it;
 * - `peer.<node>`: one record per node that ever ran an agent (or was a seed):
 *     member      the node's agent registered; if its Node object disappears, its ranges are reclaimed;
 *     reclaiming  `holder` claimed the job of taking over the ranges (rmpeer); `attempt` counts takeovers
 *                 of stale claims, `renewedAt` changes while the holder works;
 *     reclaimed   done, by `by`: the tombstone. An agent that finds its own tombstone at start discards its
 *                 old IPAM state rather than resurrect ranges that now belong to someone else.
 * This file is pure: parsing, rendering and the transitions' preconditions.
 */

export const SEEDS_KEY = 'seeds';
const PEER_KEY_PREFIX = 'peer.';

const peerRecordSchema = z.discriminatedUnion('state', [
  z.object({ state: z.literal('member'), since: z.string() }),
  z.object({
    state: z.literal('reclaiming'),
    holder: nodeNameSchema,
    attempt: z.int().min(1),
    renewedAt: z.string(),
  }),
  z.object({
    state: z.literal('reclaimed'),
    by: nodeNameSchema,
    at: z.string(),
    cidrs: z.array(z.string()),
  }),
]);
export type PeerRecord = z.infer<typeof peerRecordSchema>;

export interface Registry {
  readonly seeds: readonly string[] | null;
  readonly peers: ReadonlyMap<string, PeerRecord>;
}

export const emptyRegistry: Registry = { seeds: null, peers: new Map() };

export class RegistryFormatError extends Error {}

/** Reads the ConfigMap's data; anything malformed is an error naming the key (never guessed at). */
export function parseRegistry(data: Readonly<Record<string, string>> | undefined): Registry {
  let seeds: string[] | null = null;
  const peers = new Map<string, PeerRecord>();
  for (const [key, value] of Object.entries(data ?? {})) {
    if (key === SEEDS_KEY) {
      const parsed = z.array(nodeNameSchema).min(1).safeParse(parseJson(value));
      if (!parsed.success) throw new RegistryFormatError(`key ${key}: ${z.prettifyError(parsed.error)}`);
      seeds = parsed.data;
    } else if (key.startsWith(PEER_KEY_PREFIX)) {
      const name = key.slice(PEER_KEY_PREFIX.length);
      if (!isNodeName(name)) throw new RegistryFormatError(`key ${key}: not a node name`);
      const parsed = peerRecordSchema.safeParse(parseJson(value));
      if (!parsed.success) throw new RegistryFormatError(`key ${key}: ${z.prettifyError(parsed.error)}`);
      peers.set(name, parsed.data);
    }
  }
  return { seeds, peers };
}

export function registryData(registry: Registry): Record<string, string> {
  const data: Record<string, string> = {};
  if (registry.seeds !== null) data[SEEDS_KEY] = JSON.stringify(registry.seeds);
  for (const name of [...registry.peers.keys()].sort()) {
    data[`${PEER_KEY_PREFIX}${name}`] = JSON.stringify(registry.peers.get(name));
  }
  return data;
}

export function withPeer(registry: Registry, name: string, record: PeerRecord): Registry {
  const peers = new Map(registry.peers);
  peers.set(name, record);
  return { ...registry, peers };
}

/** Same record, field for field: used to tell a stale claim (unchanged for a lease) from a live one. */
export function recordKey(record: PeerRecord | undefined): string {
  return record === undefined ? '-' : JSON.stringify(record);
}

/**
 * Nodes whose ranges should be reclaimed: registered or seeded, not already reclaimed, and without a
 * Node object. `self` is never a candidate.
 */
export function reclaimCandidates(
  registry: Registry,
  nodeExists: (name: string) => boolean,
  self: string,
): string[] {
  const names = new Set<string>([...(registry.seeds ?? []), ...registry.peers.keys()]);
  return [...names]
    .filter((name) => name !== self && !nodeExists(name) && registry.peers.get(name)?.state !== 'reclaimed')
    .sort();
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

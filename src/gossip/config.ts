import { z } from 'zod';
import { dataplaneFeaturesSchema } from '../dataplane/features.js';
import { nodeNameSchema } from '../util/node-name.js';
import { GPE_DEFAULT_PORT } from '../wire/index.js';
import { defaultBackoffPolicy } from './backoff.js';
import { defaultChannelLimits } from './channel.js';
import { DEFAULT_MAX_RECORD_BYTES } from './records.js';

export const DEFAULT_GOSSIP_PORT = 6783;
export const DEFAULT_DATA_PORT = GPE_DEFAULT_PORT;
export const DEFAULT_HEARTBEAT_MS = 10_000;
export const DEFAULT_PEER_TIMEOUT_MS = 40_000;
export const DEFAULT_STATE_DIR = '/var/lib/weft';

const port = z.int().min(1).max(65_535);
const positiveMs = z.int().min(1);

const backoffSchema = z.object({
  initialMs: positiveMs.default(defaultBackoffPolicy.initialMs),
  maxMs: positiveMs.default(defaultBackoffPolicy.maxMs),
  multiplier: z.number().min(1).max(10).default(defaultBackoffPolicy.multiplier),
  jitter: z.number().min(0).max(1).default(defaultBackoffPolicy.jitter),
});

const channelLimitsSchema = z.object({
  maxPayloadBytes: z
    .int()
    .min(1)
    .max(3 * 1024 * 1024)
    .default(defaultChannelLimits.maxPayloadBytes),
  requestTimeoutMs: positiveMs.default(defaultChannelLimits.requestTimeoutMs),
  unknownSenderWaitMs: positiveMs.default(defaultChannelLimits.unknownSenderWaitMs),
  maxQueuedPerUnknownPeer: z.int().min(0).default(defaultChannelLimits.maxQueuedPerUnknownPeer),
  maxUnknownPeers: z.int().min(0).default(defaultChannelLimits.maxUnknownPeers),
});

export const gossipConfigSchema = z
  .object({
    nodeName: nodeNameSchema,
    stateDir: z.string().min(1).default(DEFAULT_STATE_DIR),
    listenAddress: z.ipv4().default('0.0.0.0'),
    listenPort: port.default(DEFAULT_GOSSIP_PORT),
    /** IPv4 address other nodes reach us on (gossip and data plane); defaults to a specific listenAddress. */
    underlayAddress: z.ipv4().optional(),
    dataPort: port.default(DEFAULT_DATA_PORT),
    /** Data-plane features this node announces in its record (src/dataplane/features.ts). */
    dataplaneFeatures: dataplaneFeaturesSchema.default([]),
    agentVersion: z.string().min(1).max(64).default('0.0.0'),
    /** `host[:port]` entries of the static peer list (`--peers`). */
    peers: z.array(z.string()).default([]),
    /** A pnet PSK document (see `loadClusterSecret`); when set the node only talks to holders of it. */
    clusterSecret: z
      .custom<Uint8Array>((value) => value instanceof Uint8Array, 'must be a PSK (bytes)')
      .optional(),
    heartbeatIntervalMs: positiveMs.default(DEFAULT_HEARTBEAT_MS),
    peerTimeoutMs: positiveMs.default(DEFAULT_PEER_TIMEOUT_MS),
    /** libp2p ping on every connection (RTT; a connection that stops answering is aborted); see node.ts. */
    pingIntervalMs: positiveMs.default(30_000),
    dialTimeoutMs: positiveMs.default(10_000),
    backoff: backoffSchema.prefault({}),
    /** Full mesh up to this many other nodes, then a ring lattice of about this degree (see connections.ts). */
    targetDegree: z.int().min(2).default(8),
    minConnectedPeers: z.int().min(0).default(3),
    tieBreakGraceMs: z.int().min(0).default(10_000),
    stableConnectionMs: positiveMs.default(60_000),
    /** Multiaddr prefixes (e.g. `/ip4/10.0.0.0/ipcidr/8`) exempt from libp2p's per-host inbound rate limit. */
    connectionAllowList: z.array(z.string()).default([]),
    maxRecordBytes: z
      .int()
      .min(256)
      .max(64 * 1024)
      .default(DEFAULT_MAX_RECORD_BYTES),
    /**
     * gossipsub mesh degree (target, low and high watermarks); each message reaches a node about D to
     * Dhi times, and every copy costs CPU. Below gossipsub's 6/4/12: our own records are flood-published
     * to every direct neighbour and repeated each heartbeat, so the mesh only needs to stay connected.
     * 3/2/5 rather than 4/3/6: 20 booting agents needed about a tenth less CPU to converge (bench/README.md).
     */
    mesh: z
      .object({
        D: z.int().min(1).default(3),
        Dlo: z.int().min(1).default(2),
        Dhi: z.int().min(1).default(5),
      })
      .prefault({})
      .refine((mesh) => mesh.Dlo <= mesh.D && mesh.D <= mesh.Dhi, 'mesh degrees need Dlo <= D <= Dhi'),
    channel: channelLimitsSchema.prefault({}),
  })
  .transform((config, ctx) => {
    const underlayAddress =
      config.underlayAddress ?? (config.listenAddress === '0.0.0.0' ? undefined : config.listenAddress);
    if (underlayAddress === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['underlayAddress'],
        message: 'underlayAddress is required when listening on 0.0.0.0',
      });
      return z.NEVER;
    }
    if (config.peerTimeoutMs <= longestRecordGapMs(config.heartbeatIntervalMs)) {
      ctx.addIssue({
        code: 'custom',
        path: ['peerTimeoutMs'],
        message: `peerTimeoutMs must be longer than the longest gap between a peer's records (${longestRecordGapMs(
          config.heartbeatIntervalMs,
        )} ms with this heartbeatIntervalMs)`,
      });
      return z.NEVER;
    }
    return { ...config, underlayAddress };
  });

export type GossipConfigInput = z.input<typeof gossipConfigSchema>;
export type GossipConfig = z.output<typeof gossipConfigSchema>;

export function parseGossipConfig(input: GossipConfigInput): GossipConfig {
  const parsed = gossipConfigSchema.safeParse(input);
  if (!parsed.success) throw new Error(`invalid gossip config: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/**
 * Unscheduled publishes are at least this far apart. While N nodes boot at once each learns its peers
 * one batch after another, and every batch used to send our record again: N² records, each received
 * about D times per node, on CPUs already busy with handshakes.
 */
export const PUBLISH_SOON_MIN_GAP_MS = 1_000;

/** A heartbeat is skipped within this long after a news publish (the news carried the same record). */
export function heartbeatSkipWindowMs(heartbeatIntervalMs: number): number {
  return Math.min(PUBLISH_SOON_MIN_GAP_MS, heartbeatIntervalMs / 2);
}

/** The longest a live peer goes without sending its record: a heartbeat interval plus a skipped beat's window. */
export function longestRecordGapMs(heartbeatIntervalMs: number): number {
  return heartbeatIntervalMs + heartbeatSkipWindowMs(heartbeatIntervalMs);
}

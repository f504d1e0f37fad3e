import { z } from 'zod';
import { type DropReasonName, dropReasonNames } from '../dataplane/counters.js';
import { CONNECTION_STATES } from '../gossip/connections.js';

/**
 * The one status model (`GET /v1/status`, `agent report`). Text views are rendered from it and
 * every `--json` output is checked against these schemas in tests, so scripts can rely on them.
 * Bump STATUS_SCHEMA_VERSION when a field changes meaning or disappears (adding fields is fine).
 */
export const STATUS_SCHEMA_VERSION = 1;

const count = z.number().nonnegative();
const dropReasonList = Object.values(dropReasonNames) as [DropReasonName, ...DropReasonName[]];

export const counterSnapshotSchema = z.object({
  encapsulated: z.object({ packets: count, bytes: count }),
  decapsulated: z.object({ packets: count, bytes: count }),
  batches: z.object({ tunReads: count, udpReceives: count }),
  dropped: z.record(z.enum(dropReasonList), count),
  droppedTotal: count,
});

export const peerTrafficSchema = z.object({
  name: z.string(),
  underlayAddress: z.string(),
  port: z.number().int(),
  cidrs: z.array(z.string()),
  txPackets: count,
  txBytes: count,
  rxPackets: count,
  rxBytes: count,
});

export const dataplaneSchema = z.object({
  mode: z.string(),
  /** False until the forwarder runs (and after it stopped). */
  running: z.boolean(),
  tun: z.string(),
  bridge: z.string(),
  mtu: z.number().int(),
  vni: z.number().int(),
  listen: z.string(),
  counters: counterSnapshotSchema,
  peers: z.array(peerTrafficSchema),
});

/** The latest ICMP probe of one peer's underlay address: reachability, RTT, path MTU. */
export const pathProbeSchema = z.object({
  address: z.string(),
  reachable: z.boolean(),
  rttMs: z.number().nonnegative().nullable(),
  /** Largest IPv4 packet (bytes, headers included) that got through with DF set; null if none did. */
  pmtu: z.number().int().positive().nullable(),
  probedAtMs: z.number(),
  error: z.string().nullable(),
});

export const controlPlanePeerSchema = z.object({
  name: z.string(),
  peerId: z.string(),
  underlayAddress: z.string(),
  dataPort: z.number().int(),
  version: z.string(),
  state: z.enum(['reachable', 'unreachable']),
  lastSeenMs: z.number(),
  /** libp2p ping over the direct connection, in whole milliseconds (libp2p's clock); null without one. */
  rttMs: z.number().nonnegative().nullable(),
  /** Pods with an address on the peer, from its last topology record; null if it does not say. */
  addressesInUse: count.nullable(),
});

export { CONNECTION_STATES };

export const connectionSchema = z.object({
  direction: z.enum(['inbound', 'outbound']),
  address: z.string(),
  state: z.enum(CONNECTION_STATES),
  detail: z.string(),
  peerName: z.string().nullable(),
  nextRetryAtMs: z.number().nullable(),
});

export const ipamOwnerSchema = z.object({
  peer: z.string(),
  addresses: count,
  percent: z.number().min(0).max(100),
  cidrs: z.array(z.string()),
  reachable: z.boolean(),
  /** Free addresses as the owner last wrote them into the ring (advisory). */
  reportedFree: count,
});

export const ipamSchema = z.object({
  state: z.enum(['idle', 'awaiting-consensus', 'ready', 'out-of-space']),
  summary: z.string(),
  clusterRange: z.string(),
  totalAddresses: count,
  seedId: z.string().nullable(),
  owners: z.array(ipamOwnerSchema),
  /** Pods holding an address on this node. */
  allocations: count,
  freeAddresses: count,
  gateway: z.string().nullable(),
  conflicts: z.array(z.unknown()),
});

export const controlPlaneSchema = z.object({
  peerId: z.string(),
  encryption: z.boolean(),
  gossipListen: z.string(),
  peers: z.array(controlPlanePeerSchema),
  connections: z.array(connectionSchema),
  ipam: ipamSchema,
});

export const readinessSchema = z.object({
  ready: z.boolean(),
  dataplane: z.boolean(),
  ipam: z.boolean(),
  /** Why not ready, for people (empty when ready). */
  reasons: z.array(z.string()),
});

export const nodeSchema = z.object({
  name: z.string(),
  underlayAddress: z.string(),
  podCidrs: z.array(z.string()),
});

export const statusReportSchema = z.object({
  schemaVersion: z.literal(STATUS_SCHEMA_VERSION),
  version: z.string(),
  generatedAtMs: z.number(),
  node: nodeSchema,
  clusterCidr: z.string(),
  readiness: readinessSchema,
  /** Null in static mode (`--peers-file`): no gossip, no IPAM. */
  controlPlane: controlPlaneSchema.nullable(),
  dataplane: dataplaneSchema,
  /** ICMP probes of the peers' underlay addresses, by address; empty when probing is off. */
  paths: z.array(pathProbeSchema),
});

import { z } from 'zod';
import type { StatusReport } from '../status-report.js';
import { STATUS_SCHEMA_VERSION } from '../status-schema.js';
import { addressCount, ago, cidrList, count, millis, shortPeerId, table, wholeMillis } from './format.js';

export const peerRowSchema = z.object({
  name: z.string(),
  self: z.boolean(),
  peerId: z.string().nullable(),
  underlayAddress: z.string(),
  /** `static`: a peer from the peer file, no control plane to say more. */
  state: z.enum(['self', 'reachable', 'unreachable', 'static']),
  lastSeenMs: z.number().nullable(),
  /** libp2p's round trip, whole milliseconds (0 on a sub-millisecond link). */
  rttMs: z.number().nullable(),
  icmp: z
    .object({
      reachable: z.boolean(),
      rttMs: z.number().nullable(),
      pmtu: z.number().nullable(),
      error: z.string().nullable(),
    })
    .nullable(),
  cidrs: z.array(z.string()),
  addresses: z.number(),
  /** Pods with an address: this node's now, a peer's as of its last heartbeat; null if unknown. */
  inUse: z.number().nullable(),
});

export const peersViewSchema = z.object({
  schemaVersion: z.literal(STATUS_SCHEMA_VERSION),
  generatedAtMs: z.number(),
  peers: z.array(peerRowSchema),
});

export type PeerRow = z.infer<typeof peerRowSchema>;
export type PeersView = z.infer<typeof peersViewSchema>;

/** This node first, then every peer by name. */
export function peersView(report: StatusReport): PeersView {
  const cp = report.controlPlane;
  const icmpOf = (address: string): PeerRow['icmp'] => {
    const path = report.paths.find((p) => p.address === address);
    return path ? { reachable: path.reachable, rttMs: path.rttMs, pmtu: path.pmtu, error: path.error } : null;
  };
  const owner = (name: string) => cp?.ipam.owners.find((o) => o.peer === name);
  const self: PeerRow = {
    name: report.node.name,
    self: true,
    peerId: cp?.peerId ?? null,
    underlayAddress: report.node.underlayAddress,
    state: 'self',
    lastSeenMs: null,
    rttMs: null,
    icmp: null,
    cidrs: report.node.podCidrs,
    addresses: owner(report.node.name)?.addresses ?? addressCount(report.node.podCidrs),
    inUse: cp ? cp.ipam.allocations : null,
  };
  const others: PeerRow[] = cp
    ? cp.peers.map((p) => {
        const o = owner(p.name);
        return {
          name: p.name,
          self: false,
          peerId: p.peerId,
          underlayAddress: p.underlayAddress,
          state: p.state,
          lastSeenMs: p.lastSeenMs,
          rttMs: p.rttMs,
          icmp: icmpOf(p.underlayAddress),
          cidrs: o?.cidrs ?? [],
          addresses: o?.addresses ?? 0,
          inUse: p.addressesInUse,
        };
      })
    : report.dataplane.peers.map((p) => ({
        name: p.name,
        self: false,
        peerId: null,
        underlayAddress: p.underlayAddress,
        state: 'static' as const,
        lastSeenMs: null,
        rttMs: null,
        icmp: icmpOf(p.underlayAddress),
        cidrs: p.cidrs,
        addresses: addressCount(p.cidrs),
        inUse: null,
      }));
  others.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    schemaVersion: STATUS_SCHEMA_VERSION,
    generatedAtMs: report.generatedAtMs,
    peers: [self, ...others],
  };
}

export function renderPeers(view: PeersView): string {
  const rows = view.peers.map((p) => [
    p.self ? `${p.name} (this node)` : p.name,
    shortPeerId(p.peerId),
    p.underlayAddress,
    p.state,
    p.lastSeenMs === null ? '-' : ago(p.lastSeenMs, view.generatedAtMs),
    wholeMillis(p.rttMs),
    p.icmp === null ? '-' : p.icmp.reachable ? millis(p.icmp.rttMs) : 'no reply',
    p.icmp?.pmtu == null ? '-' : `${p.icmp.pmtu} B`,
    cidrList(p.cidrs),
    count(p.addresses),
    p.inUse === null ? '-' : count(p.inUse),
  ]);
  const header = [
    'NODE',
    'PEER ID',
    'UNDERLAY',
    'STATE',
    'LAST SEEN',
    'RTT',
    'ICMP RTT',
    'PMTU',
    'RANGES',
    'ADDRESSES',
    'IN USE',
  ];
  return `${table(header, rows)}\n`;
}

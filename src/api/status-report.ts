import type { z } from 'zod';
import { uint32ToIpv4 } from '../dataplane/io.js';
import type { RouteTable } from '../dataplane/route-table.js';
import type {
  controlPlaneSchema,
  dataplaneSchema,
  nodeSchema,
  pathProbeSchema,
  peerTrafficSchema,
  readinessSchema,
  statusReportSchema,
} from './status-schema.js';

export type PeerTrafficReport = z.infer<typeof peerTrafficSchema>;
export type DataplaneReport = z.infer<typeof dataplaneSchema>;
export type ControlPlaneReport = z.infer<typeof controlPlaneSchema>;
export type PathProbe = z.infer<typeof pathProbeSchema>;
export type Readiness = z.infer<typeof readinessSchema>;
export type StatusReport = z.infer<typeof statusReportSchema>;

/** The mode-specific part of the status: static peers or the control plane. */
export interface NodeReport {
  node: z.infer<typeof nodeSchema>;
  clusterCidr: string;
  controlPlane: ControlPlaneReport | null;
}

export function peerTraffic(routes: RouteTable): PeerTrafficReport[] {
  return routes.peerNames.map((name, i) => ({
    name,
    underlayAddress: uint32ToIpv4(routes.peerAddrs[i] as number),
    port: routes.peerPorts[i] as number,
    cidrs: routes.spec.peers[i]?.cidrs ?? [],
    ...routes.peerTraffic(i),
  }));
}

const READY_IPAM_STATES: ReadonlySet<string> = new Set(['ready', 'out-of-space']);

/**
 * Ready = the data plane forwards and IPAM can hand out addresses from a ring (static mode has
 * fixed ranges, so only the data plane counts). Out of space is ready: the ring exists and the
 * node asks peers for more; a CNI ADD fails with that reason instead.
 */
export function readinessOf(node: NodeReport, dataplaneRunning: boolean): Readiness {
  const ipam = node.controlPlane === null || READY_IPAM_STATES.has(node.controlPlane.ipam.state);
  const reasons: string[] = [];
  if (!dataplaneRunning) reasons.push('data plane not running');
  if (!ipam) reasons.push(`IPAM ${node.controlPlane?.ipam.summary}`);
  return { ready: dataplaneRunning && ipam, dataplane: dataplaneRunning, ipam, reasons };
}

/**
 * The peers' underlay addresses worth probing: every known peer, once, never this node. Built from the
 * route table and the gossip peer list rather than a whole status report: the path monitor asks every
 * second.
 */
export function probeTargets(selfAddress: string, peerAddresses: Iterable<string>): string[] {
  const addresses = new Set(peerAddresses);
  addresses.delete(selfAddress);
  return [...addresses].sort();
}

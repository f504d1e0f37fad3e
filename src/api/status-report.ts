import type { CounterSnapshot } from '../dataplane/counters.js';
import { uint32ToIpv4 } from '../dataplane/io.js';
import type { RouteTable } from '../dataplane/route-table.js';

export interface PeerTrafficReport {
  name: string;
  underlayAddress: string;
  port: number;
  cidrs: string[];
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
}

export interface DataplaneReport {
  mode: string;
  tun: string;
  bridge: string;
  mtu: number;
  vni: number;
  listen: string;
  counters: CounterSnapshot;
  peers: PeerTrafficReport[];
}

export interface ControlPlaneReport {
  peerId: string;
  encryption: boolean;
  gossipListen: string;
  peers: Array<{
    name: string;
    peerId: string;
    underlayAddress: string;
    dataPort: number;
    version: string;
    state: string;
    lastSeenMs: number;
    rttMs: number | null;
  }>;
  connections: Array<{ direction: string; address: string; state: string; detail: string }>;
  ipam: {
    state: string;
    summary: string;
    seedId: string | null;
    owners: Array<{ peer: string; addresses: number; percent: number; cidrs: string[]; reachable: boolean }>;
    allocations: number;
    freeAddresses: number;
    gateway: string | null;
    conflicts: readonly unknown[];
  };
}

/** The mode-specific part of the status: static peers or the control plane. */
export interface NodeReport {
  node: { name: string; underlayAddress: string; podCidrs: string[] };
  clusterCidr: string;
  controlPlane: ControlPlaneReport | null;
}

export interface StatusReport extends NodeReport {
  version: string;
  dataplane: DataplaneReport;
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

import type { CounterSnapshot, DataplaneCounters } from '../dataplane/counters.js';
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

export interface StatusReport {
  version: string;
  node: { name: string; underlayAddress: string; podCidrs: string[] };
  clusterCidr: string;
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

export function countersReport(counters: DataplaneCounters): CounterSnapshot {
  return counters.snapshot();
}

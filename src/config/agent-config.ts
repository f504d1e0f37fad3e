import ipaddr from 'ipaddr.js';
import { acceptsPartialChecksums } from '../dataplane/features.js';
import { ipv4ToUint32, uint32ToIpv4 } from '../dataplane/io.js';
import type { PeerRoute } from '../dataplane/route-table.js';
import { DEFAULT_CLUSTER_RANGE } from '../ipam/node.js';
import { GPE_DEFAULT_PORT, GPE_MAX_VNI } from '../wire/index.js';
import { type ListenAddress, parseListenAddress } from './listen-address.js';
import { ConfigError, type StaticPeerFile } from './static-peers.js';

export interface AgentConfig {
  nodeName: string;
  underlayAddress: string;
  podCidrs: string[];
  peers: PeerRoute[];
  clusterCidr: string;
  vni: number;
  dataPort: number;
  tunName: string;
  bridgeName: string;
  /** Overlay MTU; undefined means underlay MTU minus the encapsulation overhead. */
  mtu: number | undefined;
  adminSocket: string;
  /** `/healthz` and `/readyz`; null when off. */
  healthListen: ListenAddress | null;
  /** Prometheus `/metrics`; null when off. */
  metricsListen: ListenAddress | null;
  peersFile: string;
  /** Kernel offloads in the data plane (`--offload on|off`). */
  offload: boolean;
  /** Announce that this node completes inner checksums peers leave partial (`--partial-checksums on|off`). */
  partialChecksums: boolean;
}

export interface AgentFlags {
  peersFile?: string | undefined;
  clusterCidr?: string | undefined;
  vni?: string | undefined;
  port?: string | undefined;
  tun?: string | undefined;
  bridge?: string | undefined;
  mtu?: string | undefined;
  adminSocket?: string | undefined;
  healthListen?: string | undefined;
  metricsListen?: string | undefined;
  offload?: string | undefined;
  partialChecksums?: string | undefined;
}

export const defaults = {
  clusterCidr: DEFAULT_CLUSTER_RANGE,
  vni: 1,
  dataPort: GPE_DEFAULT_PORT,
  tunName: 'weft0',
  bridgeName: 'weave',
  adminSocket: '/run/weft/weft.sock',
  healthListen: '127.0.0.1:6784',
  metricsListen: '0.0.0.0:6782',
} as const;

export type CommonSettings = Pick<
  AgentConfig,
  | 'clusterCidr'
  | 'vni'
  | 'dataPort'
  | 'tunName'
  | 'bridgeName'
  | 'mtu'
  | 'adminSocket'
  | 'healthListen'
  | 'metricsListen'
  | 'offload'
  | 'partialChecksums'
>;

/** The flags both modes share: cluster range, data-plane port and VNI, device names, MTU, socket. */
export function buildCommonSettings(flags: AgentFlags): CommonSettings {
  const clusterCidr = flags.clusterCidr ?? defaults.clusterCidr;
  parseClusterCidr(clusterCidr);
  return {
    clusterCidr,
    vni: parseInteger('--vni', flags.vni, defaults.vni, 0, GPE_MAX_VNI),
    dataPort: parseInteger('--port', flags.port, defaults.dataPort, 1, 65535),
    tunName: parseInterfaceName('--tun', flags.tun ?? defaults.tunName),
    bridgeName: parseInterfaceName('--bridge', flags.bridge ?? defaults.bridgeName),
    mtu: flags.mtu === undefined ? undefined : parseInteger('--mtu', flags.mtu, 0, 576, 9000),
    adminSocket: flags.adminSocket ?? defaults.adminSocket,
    healthListen: parseListenAddress('--health-listen', flags.healthListen ?? defaults.healthListen),
    metricsListen: parseListenAddress('--metrics-listen', flags.metricsListen ?? defaults.metricsListen),
    offload: parseOnOff('--offload', flags.offload ?? 'on'),
    partialChecksums: parseOnOff('--partial-checksums', flags.partialChecksums ?? 'on'),
  };
}

function parseOnOff(flag: string, value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new ConfigError(`${flag} ${value} must be on or off`);
}

/** Combines command-line flags with the peer file, checking everything a person could get wrong. */
export function buildAgentConfig(flags: AgentFlags, file: StaticPeerFile): AgentConfig {
  const common = buildCommonSettings(flags);
  const cluster = parseClusterCidr(common.clusterCidr);
  const config: AgentConfig = {
    ...common,
    nodeName: file.node.name,
    underlayAddress: file.node.underlayAddress,
    podCidrs: file.node.podCidrs,
    peers: file.peers.map((peer) => ({
      name: peer.name,
      underlayAddress: peer.underlayAddress,
      port: peer.port ?? common.dataPort,
      cidrs: peer.podCidrs,
      partialChecksums: acceptsPartialChecksums(peer.features),
    })),
    peersFile: flags.peersFile ?? '',
  };
  const owners = [
    { owner: `node ${config.nodeName}`, cidrs: config.podCidrs },
    ...config.peers.map((p) => ({ owner: `peer ${p.name}`, cidrs: p.cidrs })),
  ];
  for (const { owner, cidrs } of owners) {
    for (const cidr of cidrs) {
      if (!ipaddr.parseCIDR(cidr)[0].match(cluster)) {
        throw new ConfigError(
          `${owner}: pod range ${cidr} is outside the cluster range ${config.clusterCidr}`,
        );
      }
    }
  }
  return config;
}

function parseClusterCidr(cidr: string): [ipaddr.IPv4, number] {
  try {
    const parsed = ipaddr.IPv4.parseCIDR(cidr);
    if (ipaddr.IPv4.networkAddressFromCIDR(cidr).toString() !== parsed[0].toString()) throw new Error();
    return parsed;
  } catch {
    throw new ConfigError(
      `--cluster-cidr ${cidr} must be an IPv4 network like 10.32.0.0/12 (no host bits set)`,
    );
  }
}

export function parseInteger(
  flag: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new ConfigError(`${flag} ${value} must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

function parseInterfaceName(flag: string, name: string): string {
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(name)) {
    throw new ConfigError(
      `${flag} ${name} must be an interface name of 1 to 15 letters, digits, '_', '.' or '-'`,
    );
  }
  return name;
}

/** The bridge's own address in a pod range: the first usable address, as pods' default gateway. */
export function gatewayOf(podCidr: string): { address: string; prefix: number } {
  const [network, prefix] = ipaddr.IPv4.parseCIDR(podCidr);
  return { address: uint32ToIpv4(ipv4ToUint32(network.toString()) + 1), prefix };
}

import { hostname } from 'node:os';
import ipaddr from 'ipaddr.js';
import {
  DEFAULT_GOSSIP_PORT,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_PEER_TIMEOUT_MS,
  DEFAULT_STATE_DIR,
  heartbeatSkipWindowMs,
  longestRecordGapMs,
  parsePeerAddress,
} from '../gossip/index.js';
import type { SeedingMode } from '../ipam/index.js';
import { isNodeName, NODE_NAME_RULE } from '../util/node-name.js';
import { type CommonSettings, parseInteger } from './agent-config.js';
import { ConfigError } from './static-peers.js';

/** `agent run` without a peer file: gossip discovery and IPAM decide peers and ranges. */
export interface ClusterConfig extends CommonSettings {
  nodeName: string;
  underlayAddress: string;
  peers: string[];
  gossipPort: number;
  stateDir: string;
  clusterSecretFile: string | undefined;
  /** Consensus carries the expected cluster size: given, the --peers count, or (--kube-peers) unset. */
  seeding: SeedingMode;
  heartbeatMs: number;
  peerTimeoutMs: number;
  /** `--kube-peers`: peers from Node objects, reclaim of deleted nodes (src/k8s). */
  kube: KubeSettings | undefined;
}

export interface KubeSettings {
  kubeconfig: string | undefined;
  reclaimLeaseMs: number;
  /** --ipam-init was given; otherwise the seed list comes from the peer registry. */
  explicitSeeding: boolean;
}

export interface ClusterFlags {
  name?: string | undefined;
  underlayAddress?: string | undefined;
  peers?: string | undefined;
  gossipPort?: string | undefined;
  stateDir?: string | undefined;
  clusterSecretFile?: string | undefined;
  ipamInit?: string | undefined;
  heartbeatMs?: string | undefined;
  peerTimeoutMs?: string | undefined;
  kubePeers?: boolean | undefined;
  kubeconfig?: string | undefined;
  kubeReclaimLeaseMs?: string | undefined;
}

export const clusterDefaults = {
  gossipPort: DEFAULT_GOSSIP_PORT,
  stateDir: DEFAULT_STATE_DIR,
  heartbeatMs: DEFAULT_HEARTBEAT_MS,
  peerTimeoutMs: DEFAULT_PEER_TIMEOUT_MS,
  kubeReclaimLeaseMs: 30_000,
} as const;

export function buildClusterConfig(flags: ClusterFlags, common: CommonSettings): ClusterConfig {
  // NODE_NAME is the downward API's spec.nodeName in the DaemonSet. As kubelet does, a host name
  // becomes a node name in lower case.
  const nodeName = flags.name ?? (process.env.NODE_NAME || hostname().toLowerCase());
  if (!isNodeName(nodeName)) {
    throw new ConfigError(`--name ${nodeName} must be ${NODE_NAME_RULE}`);
  }
  const underlayAddress = flags.underlayAddress;
  if (underlayAddress === undefined) {
    throw new ConfigError('--underlay-address is required: the IPv4 address other nodes reach this node on');
  }
  if (!ipaddr.IPv4.isValidFourPartDecimal(underlayAddress)) {
    throw new ConfigError(`--underlay-address ${underlayAddress} must be an IPv4 address like 192.168.1.10`);
  }
  const gossipPort = parseInteger('--gossip-port', flags.gossipPort, clusterDefaults.gossipPort, 1, 65535);
  const peers = (flags.peers ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  for (const peer of peers) {
    try {
      parsePeerAddress(peer, gossipPort);
    } catch (error) {
      throw new ConfigError(`--peers: ${(error as Error).message}`);
    }
  }
  const others = new Set(peers.map((p) => p.split(':')[0]).filter((host) => host !== underlayAddress));
  const seeding = parseIpamInit(flags.ipamInit, flags.kubePeers ? undefined : others.size + 1);
  const heartbeatMs = parseInteger(
    '--heartbeat-ms',
    flags.heartbeatMs,
    clusterDefaults.heartbeatMs,
    100,
    600_000,
  );
  const peerTimeoutMs = parseInteger(
    '--peer-timeout-ms',
    flags.peerTimeoutMs,
    clusterDefaults.peerTimeoutMs,
    200,
    3_600_000,
  );
  if (peerTimeoutMs <= longestRecordGapMs(heartbeatMs)) {
    throw new ConfigError(
      `--peer-timeout-ms ${peerTimeoutMs} must be longer than ${longestRecordGapMs(heartbeatMs)} ms: ` +
        `--heartbeat-ms ${heartbeatMs} plus the up to ${heartbeatSkipWindowMs(heartbeatMs)} ms a heartbeat ` +
        'may be skipped after a record went out for news',
    );
  }
  const kube: KubeSettings | undefined = flags.kubePeers
    ? {
        kubeconfig: flags.kubeconfig,
        reclaimLeaseMs: parseInteger(
          '--kube-reclaim-lease-ms',
          flags.kubeReclaimLeaseMs,
          clusterDefaults.kubeReclaimLeaseMs,
          1_000,
          3_600_000,
        ),
        explicitSeeding: flags.ipamInit !== undefined,
      }
    : undefined;
  if (!kube && flags.kubeconfig !== undefined) throw new ConfigError('--kubeconfig needs --kube-peers');
  return {
    ...common,
    kube,
    nodeName,
    underlayAddress,
    peers,
    gossipPort,
    stateDir: flags.stateDir ?? clusterDefaults.stateDir,
    clusterSecretFile: flags.clusterSecretFile,
    seeding,
    heartbeatMs,
    peerTimeoutMs,
  };
}

/**
 * `--ipam-init`, as Weave's --ipalloc-init: `consensus` (quorum of the expected cluster size,
 * by default `peerCount`: the --peers count plus this node, or undefined with --kube-peers, which
 * fills in the Node count), `consensus=N`, `seeds=a,b,c` (these nodes split the range at once) or
 * `observer` (join an existing ring, never seed one).
 */
export function parseIpamInit(value: string | undefined, peerCount: number | undefined): SeedingMode {
  const text = value ?? 'consensus';
  if (text === 'observer') return { kind: 'observer' };
  if (text === 'consensus')
    return peerCount === undefined ? { kind: 'consensus' } : { kind: 'consensus', expectedPeers: peerCount };
  const consensus = /^consensus=(\d+)$/.exec(text);
  if (consensus) {
    const n = Number(consensus[1]);
    if (n < 1) throw new ConfigError('--ipam-init consensus=N needs N of at least 1');
    return { kind: 'consensus', expectedPeers: n };
  }
  const seeds = /^seeds=(.+)$/.exec(text);
  if (seeds) {
    const names = (seeds[1] as string).split(',').map((s) => s.trim());
    if (names.some((n) => !isNodeName(n)))
      throw new ConfigError(`--ipam-init ${text}: seeds must be node names`);
    return { kind: 'seeds', seeds: names };
  }
  throw new ConfigError(`--ipam-init ${text} must be consensus, consensus=N, seeds=a,b,… or observer`);
}

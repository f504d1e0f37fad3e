/**
 * The two-node topology of the data-plane baselines (/work/shared/notes/baselines.md), built in a
 * {@link NetnsGroup}, plus overlay modes that connect the two pod networks:
 *
 *   p1 10.32.1.2 --veth-- [weave 10.32.1.1] n1 192.168.199.1 ==ul0== 192.168.199.2 n2 [weave 10.32.2.1] --veth-- p2 10.32.2.2
 *
 * A mode is applied per node ({@link NodeOverlay}) so that nodes can run different data planes:
 * the interop test runs the weft agent on one node and kernel VXLAN-GPE on the other.
 */
import { hostAddress, overlayMtu, parseIpv4Cidr } from '../../src/plumbing/index.js';
import type { NetnsGroup } from './netns.js';

export type NodeIndex = 0 | 1;
export type Undo = () => Promise<void>;

/** Connects the pod networks of both nodes; the returned function undoes it. */
export type OverlayMode = (group: NetnsGroup, topo: TwoNodeTopology) => Promise<Undo>;
/** One node's half of an overlay: what runs on `topo.nodes[node]` to reach the other node's pods. */
export type NodeOverlay = (group: NetnsGroup, topo: TwoNodeTopology, node: NodeIndex) => Promise<Undo>;
/**
 * The weft agent as an overlay: starts the agent in the node namespaces (tracked by the group via
 * `group.spawn`), routes the remote pod range into its TUN, and returns how to stop it. Supplied
 * by the agent's test setup; as a {@link NodeOverlay} it combines with {@link kernelVxlanGpeNode}
 * through {@link perNode} for interop.
 */
export type WeftOverlay = NodeOverlay;

export interface TwoNodeTopologyOptions {
  /** Underlay /24, nodes get .1 and .2. Default 192.168.199.0/24. */
  underlayCidr?: string;
  /** Default 1500. */
  underlayMtu?: number;
  /** Pod networks of the two nodes; gateway .1, pod .2. Default 10.32.1.0/24 and 10.32.2.0/24. */
  podCidrs?: readonly [string, string];
  /** MTU of the pod veths and the bridges; set by the caller per mode. Default 1500. */
  podMtu?: number;
}

export interface TopologyNode {
  /** Full namespace name. */
  ns: string;
  /** Short name inside the group (`n1`, `n2`). */
  shortName: string;
  underlayIf: string;
  underlayIp: string;
  bridge: string;
  gatewayIp: string;
  podCidr: string;
}

export interface TopologyPod {
  ns: string;
  shortName: string;
  ifname: string;
  ip: string;
  /** Name of the pod veth's node end, attached to the bridge. */
  hostIf: string;
}

export interface TwoNodeTopology {
  nodes: readonly [TopologyNode, TopologyNode];
  pods: readonly [TopologyPod, TopologyPod];
  underlayCidr: string;
  underlayMtu: number;
  podMtu: number;
}

const UNDERLAY_IF = 'ul0';
const BRIDGE = 'weave';
const POD_IF = 'eth0';

async function sysctls(group: NetnsGroup, shortName: string, settings: readonly string[]): Promise<void> {
  await group.exec(shortName, ['sysctl', '-q', '-w', ...settings]);
}

/** Builds both nodes and pods as in the baselines notes; pods can reach their own gateway only. */
export async function buildTwoNodeTopology(
  group: NetnsGroup,
  opts: TwoNodeTopologyOptions = {},
): Promise<TwoNodeTopology> {
  const underlayCidr = parseIpv4Cidr(opts.underlayCidr ?? '192.168.199.0/24');
  const underlayMtu = opts.underlayMtu ?? 1500;
  const podMtu = opts.podMtu ?? 1500;
  const podCidrs = opts.podCidrs ?? ['10.32.1.0/24', '10.32.2.0/24'];
  const underlayPrefix = `/${underlayCidr.prefixLength}`;

  for (const shortName of ['n1', 'n2', 'p1', 'p2']) {
    await group.addNamespace(shortName);
    // No IPv6: its router solicitations and DAD traffic would only add noise to captures.
    // rp_filter before any device exists, so every device inherits 0 from `default`.
    await sysctls(group, shortName, [
      'net.ipv6.conf.all.disable_ipv6=1',
      'net.ipv6.conf.default.disable_ipv6=1',
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
    ]);
  }
  const nodes = ([0, 1] as const).map(
    (i): TopologyNode => ({
      ns: group.ns(`n${i + 1}`),
      shortName: `n${i + 1}`,
      underlayIf: UNDERLAY_IF,
      underlayIp: hostAddress(underlayCidr.network, i + 1),
      bridge: BRIDGE,
      gatewayIp: hostAddress(podCidrs[i], 1),
      podCidr: parseIpv4Cidr(podCidrs[i]).network,
    }),
  ) as [TopologyNode, TopologyNode];
  const pods = ([0, 1] as const).map(
    (i): TopologyPod => ({
      ns: group.ns(`p${i + 1}`),
      shortName: `p${i + 1}`,
      ifname: POD_IF,
      ip: hostAddress(podCidrs[i], 2),
      hostIf: `vp${i + 1}`,
    }),
  ) as [TopologyPod, TopologyPod];

  const [n1, n2] = nodes;
  await group.addVethPair(
    { ns: n1.shortName, ifname: n1.underlayIf },
    { ns: n2.shortName, ifname: n2.underlayIf },
    {
      mtu: underlayMtu,
    },
  );
  for (const [i, node] of nodes.entries()) {
    const pod = pods[i] as TopologyPod;
    await sysctls(group, node.shortName, ['net.ipv4.ip_forward=1']);
    await group.addAddress(node.shortName, node.underlayIf, `${node.underlayIp}${underlayPrefix}`);
    await group.linkUp(node.shortName, node.underlayIf);

    const prefix = `/${parseIpv4Cidr(node.podCidr).prefixLength}`;
    await group.exec(node.shortName, ['ip', 'link', 'add', 'name', node.bridge, 'type', 'bridge']);
    await group.exec(node.shortName, ['ip', 'link', 'set', 'dev', node.bridge, 'mtu', String(podMtu)]);
    await group.addAddress(node.shortName, node.bridge, `${node.gatewayIp}${prefix}`);
    await group.linkUp(node.shortName, node.bridge);

    await group.addVethPair(
      { ns: node.shortName, ifname: pod.hostIf },
      { ns: pod.shortName, ifname: pod.ifname },
      {
        mtu: podMtu,
      },
    );
    await group.attachToBridge(node.shortName, pod.hostIf, node.bridge);
    await group.linkUp(node.shortName, pod.hostIf);
    await group.addAddress(pod.shortName, pod.ifname, `${pod.ip}${prefix}`);
    await group.linkUp(pod.shortName, pod.ifname);
    await group.exec(pod.shortName, ['ip', 'route', 'add', 'default', 'via', node.gatewayIp]);
  }
  return { nodes, pods, underlayCidr: underlayCidr.network, underlayMtu, podMtu };
}

function other(node: NodeIndex): NodeIndex {
  return node === 0 ? 1 : 0;
}

/** Runs `first` on node 1 and `second` on node 2; undo runs in reverse order. */
export function perNode(first: NodeOverlay, second: NodeOverlay): OverlayMode {
  return async (group, topo) => {
    const undoFirst = await first(group, topo, 0);
    try {
      const undoSecond = await second(group, topo, 1);
      return async () => {
        await undoSecond();
        await undoFirst();
      };
    } catch (error) {
      await undoFirst();
      throw error;
    }
  };
}

/** The same half on both nodes. */
export function onBothNodes(half: NodeOverlay): OverlayMode {
  return perNode(half, half);
}

/** No encapsulation: the remote pod network via the peer's underlay address. */
export const plainRoutingNode: NodeOverlay = async (group, topo, node) => {
  const self = topo.nodes[node];
  const peer = topo.nodes[other(node)];
  const route = [peer.podCidr, 'via', peer.underlayIp, 'dev', self.underlayIf];
  await group.exec(self.shortName, ['ip', 'route', 'add', ...route]);
  return async () => {
    await group.exec(self.shortName, ['ip', 'route', 'del', ...route], { allowFail: true });
  };
};

export const plainRouting: OverlayMode = onBothNodes(plainRoutingNode);

export const KERNEL_GPE_DEV = 'vg0';
export const GPE_PORT = 4790;
export const DEFAULT_VNI = 1;

/**
 * Kernel VXLAN-GPE in metadata (collect_md) mode, the recipe verified in the baselines notes:
 * the inner packet is raw IP, the remote node comes from the route's `encap ip … dst`. The
 * device MTU is the underlay's minus 36; the pods' MTU must not exceed it (the caller's choice).
 */
export function kernelVxlanGpeNodeWith(opts: { vni?: number; dev?: string } = {}): NodeOverlay {
  const vni = opts.vni ?? DEFAULT_VNI;
  const dev = opts.dev ?? KERNEL_GPE_DEV;
  return async (group, topo, node) => {
    const self = topo.nodes[node];
    const peer = topo.nodes[other(node)];
    const gpeDevice = ['type', 'vxlan', 'gpe', 'external', 'dstport', String(GPE_PORT)];
    await group.exec(self.shortName, ['ip', 'link', 'add', dev, ...gpeDevice]);
    const undo = async () => {
      await group.exec(self.shortName, ['ip', 'link', 'del', 'dev', dev], { allowFail: true });
    };
    try {
      const mtu = overlayMtu(topo.underlayMtu);
      await group.exec(self.shortName, ['ip', 'link', 'set', 'dev', dev, 'mtu', String(mtu), 'up']);
      const encap = ['encap', 'ip', 'id', String(vni), 'dst', peer.underlayIp, 'ttl', '64'];
      await group.exec(self.shortName, ['ip', 'route', 'add', peer.podCidr, ...encap, 'dev', dev]);
    } catch (error) {
      await undo();
      throw error;
    }
    return undo;
  };
}

export const kernelVxlanGpeNode: NodeOverlay = kernelVxlanGpeNodeWith();
export const kernelVxlanGpe: OverlayMode = onBothNodes(kernelVxlanGpeNode);

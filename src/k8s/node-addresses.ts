import { isIPv4 } from 'node:net';
import type { KubeNode } from './kube-objects.js';

/** What the agent needs from a Node object. */
export interface NodeInfo {
  readonly name: string;
  /** The first IPv4 InternalIP, which other nodes' agents dial; undefined until the kubelet reports one. */
  readonly internalIPv4: string | undefined;
}

export function nodeInfo(node: KubeNode): NodeInfo {
  const internal = node.status?.addresses?.find((a) => a.type === 'InternalIP' && isIPv4(a.address));
  return { name: node.metadata.name, internalIPv4: internal?.address };
}

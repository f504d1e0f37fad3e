import { isIPv4 } from 'node:net';
import type { V1Node } from '@kubernetes/client-node';

/** What the agent needs from a Node object. */
export interface NodeInfo {
  readonly name: string;
  /** The first IPv4 InternalIP, which other nodes' agents dial; undefined until the kubelet reports one. */
  readonly internalIPv4: string | undefined;
}

export function nodeInfo(node: V1Node): NodeInfo | undefined {
  const name = node.metadata?.name;
  if (name === undefined) return undefined;
  const internal = node.status?.addresses?.find((a) => a.type === 'InternalIP' && isIPv4(a.address));
  return { name, internalIPv4: internal?.address };
}

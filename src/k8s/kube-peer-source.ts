import type { PeerSource } from '../gossip/peer-source.js';
import { tcpMultiaddr } from '../gossip/peer-source.js';
import type { NodeInfo } from './node-addresses.js';
import type { NodeWatcher } from './node-watcher.js';

/** Gossip addresses of every other Node's InternalIP, reported again whenever the set changes. */
export class KubePeerSource implements PeerSource {
  readonly name = 'kubernetes';
  private listener: ((nodes: NodeInfo[]) => void) | undefined;
  private lastReported: string | undefined;

  constructor(
    private readonly watcher: NodeWatcher,
    private readonly options: { selfName: string; gossipPort: number },
  ) {}

  start(onAddresses: (addresses: string[]) => void): void {
    const report = (nodes: NodeInfo[]) => {
      const addresses = gossipAddresses(nodes, this.options.selfName, this.options.gossipPort);
      const key = addresses.join(' ');
      if (key === this.lastReported) return;
      this.lastReported = key;
      onAddresses(addresses);
    };
    this.listener = report;
    this.watcher.on('changed', report);
    report(this.watcher.list());
  }

  stop(): void {
    if (this.listener) this.watcher.off('changed', this.listener);
    this.listener = undefined;
  }
}

export function gossipAddresses(nodes: readonly NodeInfo[], selfName: string, port: number): string[] {
  const addresses = new Set<string>();
  for (const node of nodes) {
    if (node.name !== selfName && node.internalIPv4 !== undefined) {
      addresses.add(tcpMultiaddr(node.internalIPv4, port));
    }
  }
  return [...addresses].sort();
}

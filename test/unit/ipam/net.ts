import { BROADCAST, type IpamMessage, parseIpamMessage } from '../../../src/ipam/messages.js';
import type { IpamNode } from '../../../src/ipam/node.js';

/**
 * A lossless, in-order network for unit tests: every message goes through JSON and parseIpamMessage,
 * as it would on the wire. `drop` filters messages (return true to lose one).
 */
export class TinyNet {
  readonly nodes = new Map<string, IpamNode>();
  readonly log: Array<{ from: string; to: string; type: IpamMessage['type'] }> = [];
  now = 0;
  drop: (from: string, to: string, message: IpamMessage) => boolean = () => false;

  constructor(nodes: IpamNode[] = []) {
    for (const node of nodes) this.nodes.set(node.peer, node);
  }

  add(node: IpamNode): IpamNode {
    this.nodes.set(node.peer, node);
    return node;
  }

  /** Tells every node that all nodes are reachable. */
  connectAll(): void {
    for (const node of this.nodes.values()) node.setKnownPeers(this.nodes.keys());
  }

  /** Delivers queued messages until no node has anything to send; returns how many were delivered. */
  flush(maxMessages = 100_000): number {
    let delivered = 0;
    for (;;) {
      const batch: Array<{ from: string; to: string; message: IpamMessage }> = [];
      for (const node of this.nodes.values()) {
        for (const { to, message } of node.drainOutbox()) {
          const targets = to === BROADCAST ? [...this.nodes.keys()].filter((p) => p !== node.peer) : [to];
          for (const target of targets) batch.push({ from: node.peer, to: target, message });
        }
      }
      if (batch.length === 0) return delivered;
      for (const { from, to, message } of batch) {
        const receiver = this.nodes.get(to);
        if (receiver === undefined || this.drop(from, to, message)) continue;
        const parsed = parseIpamMessage(JSON.parse(JSON.stringify(message)));
        if (!parsed.ok) throw new Error(`invalid message from ${from}: ${parsed.error}`);
        this.log.push({ from, to, type: message.type });
        receiver.receive(from, parsed.message);
        if (++delivered > maxMessages) throw new Error('the network does not go quiet');
      }
    }
  }

  /** Advances the clock by `ms`, ticks every node, and flushes. */
  tick(ms = 1000): number {
    this.now += ms;
    for (const node of this.nodes.values()) node.tick(this.now);
    return this.flush();
  }

  run(rounds: number, ms = 1000): void {
    for (let i = 0; i < rounds; i++) this.tick(ms);
  }
}

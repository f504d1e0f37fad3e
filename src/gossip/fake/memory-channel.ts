import type { GossipChannel } from '../channel.js';
import { ChannelRequestError } from '../request-framing.js';

type BroadcastHandler = (fromPeerName: string, payload: Uint8Array) => void;
type RequestHandler = (fromPeerName: string, payload: Uint8Array) => Promise<Uint8Array | undefined>;

/**
 * In-memory stand-in for a cluster's gossip channel, for unit tests of subsystems such as IPAM:
 * `hub.join('node-a')` returns node-a's GossipChannel. Delivery is asynchronous (a microtask), payloads
 * are copied, and `isolate`/`heal` cut a node off to simulate partitions.
 */
export class MemoryChannelHub {
  private readonly members = new Map<string, MemoryChannel>();
  private readonly isolated = new Set<string>();

  join(peerName: string): MemoryChannel {
    if (this.members.has(peerName)) throw new Error(`${peerName} already joined`);
    const channel = new MemoryChannel(peerName, this);
    this.members.set(peerName, channel);
    return channel;
  }

  leave(peerName: string): void {
    this.members.delete(peerName);
  }

  isolate(peerName: string): void {
    this.isolated.add(peerName);
  }

  heal(peerName: string): void {
    this.isolated.delete(peerName);
  }

  /** @internal */
  reachable(from: string, to: string): MemoryChannel | undefined {
    if (from === to || this.isolated.has(from) || this.isolated.has(to)) return undefined;
    return this.members.get(to);
  }

  /** @internal */
  others(from: string): MemoryChannel[] {
    return [...this.members.keys()].flatMap((name) => this.reachable(from, name) ?? []);
  }
}

export class MemoryChannel implements GossipChannel {
  private readonly broadcastHandlers = new Set<BroadcastHandler>();
  private requestHandler: RequestHandler | undefined;

  constructor(
    readonly peerName: string,
    private readonly hub: MemoryChannelHub,
  ) {}

  async broadcast(payload: Uint8Array): Promise<void> {
    for (const member of this.hub.others(this.peerName)) {
      const copy = payload.slice();
      queueMicrotask(() => member.receiveBroadcast(this.peerName, copy));
    }
  }

  onBroadcast(handler: BroadcastHandler): void {
    this.broadcastHandlers.add(handler);
  }

  async send(toPeerName: string, payload: Uint8Array): Promise<Uint8Array | undefined> {
    const member = this.hub.reachable(this.peerName, toPeerName);
    if (member === undefined) throw new ChannelRequestError('unknown-peer', `${toPeerName} is not reachable`);
    await Promise.resolve();
    const answer = await member.answer(this.peerName, payload.slice());
    return answer?.slice();
  }

  onRequest(handler: RequestHandler): void {
    this.requestHandler = handler;
  }

  isConnected(peerName: string): boolean {
    return this.hub.reachable(this.peerName, peerName) !== undefined;
  }

  private receiveBroadcast(fromPeerName: string, payload: Uint8Array): void {
    for (const handler of this.broadcastHandlers) handler(fromPeerName, payload);
  }

  private async answer(fromPeerName: string, payload: Uint8Array): Promise<Uint8Array | undefined> {
    const handler = this.requestHandler;
    if (handler === undefined)
      throw new ChannelRequestError('no-handler', `${this.peerName} has no request handler`);
    try {
      return await handler(fromPeerName, payload);
    } catch (err) {
      throw new ChannelRequestError('handler-failed', `${this.peerName}'s request handler failed`, {
        cause: err,
      });
    }
  }
}

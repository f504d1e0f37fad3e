import type { Stream } from '@libp2p/interface';
import type { Logger } from 'pino';
import { deadline, settleBy } from './deadline.js';
import {
  ChannelRequestError,
  decodeResponse,
  encodeResponse,
  MessageTooLargeError,
  ResponseStatus,
  readToEnd,
} from './request-framing.js';

/** What other subsystems (IPAM) see of gossip: named broadcast plus request/response between nodes. */
export interface GossipChannel {
  /** Delivers to every other node subscribed to the channel (not to ourselves); best effort. */
  broadcast(payload: Uint8Array): Promise<void>;
  onBroadcast(handler: (fromPeerName: string, payload: Uint8Array) => void): void;
  /** Asks one node; resolves with its answer (undefined when it chose not to answer), rejects with ChannelRequestError. */
  send(toPeerName: string, payload: Uint8Array): Promise<Uint8Array | undefined>;
  /** The single handler answering `send`; a later call replaces it. */
  onRequest(handler: (fromPeerName: string, payload: Uint8Array) => Promise<Uint8Array | undefined>): void;
  /** A connection to this node is open: `send` to it needs a new stream, not a new connection. */
  isConnected(peerName: string): boolean;
}

/** The parts of the gossip node a channel uses. */
export interface ChannelHost {
  publish(topic: string, data: Uint8Array): Promise<void>;
  openStream(peerId: string, protocol: string, signal: AbortSignal): Promise<Stream>;
  nameOf(peerId: string): string | undefined;
  peerIdOf(name: string): string | undefined;
  /** A connection to this peer is open. */
  isConnected(peerId: string): boolean;
  /** Resolves once the peer's topology record names it, or with undefined when `signal` aborts first. */
  waitForName(peerId: string, signal: AbortSignal): Promise<string | undefined>;
}

export interface ChannelLimits {
  maxPayloadBytes: number;
  requestTimeoutMs: number;
  /** How long an incoming request from a peer without a known record waits for that record. */
  unknownSenderWaitMs: number;
  /** Broadcasts held per peer whose record has not arrived yet; the oldest is dropped beyond this. */
  maxQueuedPerUnknownPeer: number;
  maxUnknownPeers: number;
}

export const defaultChannelLimits: ChannelLimits = {
  maxPayloadBytes: 1024 * 1024,
  requestTimeoutMs: 5_000,
  unknownSenderWaitMs: 2_000,
  maxQueuedPerUnknownPeer: 64,
  maxUnknownPeers: 256,
};

export interface ChannelCounters {
  broadcastsSent: number;
  broadcastsDelivered: number;
  broadcastsDroppedOversize: number;
  broadcastsDroppedQueueFull: number;
  broadcastHandlerErrors: number;
  requestsServed: number;
  requestsFailed: number;
}

const channelNamePattern = /^[a-z0-9][a-z0-9-]{0,31}$/;

export function channelTopic(name: string): string {
  return `/weft/${name}/1`;
}

export function channelProtocol(name: string): string {
  return `/weft/${name}/req/1.0.0`;
}

export function assertChannelName(name: string): void {
  if (!channelNamePattern.test(name)) {
    throw new Error(`invalid channel name ${JSON.stringify(name)}: use 1-32 of [a-z0-9-]`);
  }
}

type BroadcastHandler = (fromPeerName: string, payload: Uint8Array) => void;
type RequestHandler = (fromPeerName: string, payload: Uint8Array) => Promise<Uint8Array | undefined>;

/**
 * A channel over one gossipsub topic and one libp2p request protocol. Senders are identified by the
 * signed gossipsub `from` (or the connection's peer), then named through the topology. Broadcasts from a
 * peer whose record has not arrived yet are held (bounded) and delivered once it is named, so handlers
 * only ever see node names.
 */
export class TopicChannel implements GossipChannel {
  readonly topic: string;
  readonly protocol: string;
  private readonly broadcastHandlers = new Set<BroadcastHandler>();
  private readonly peerJoinedHandlers = new Set<(peerName: string) => void>();
  private requestHandler: RequestHandler | undefined;
  private readonly queuedByPeerId = new Map<string, Uint8Array[]>();
  private readonly joinPendingName = new Set<string>();
  private readonly closed = new AbortController();
  private readonly counters: ChannelCounters = {
    broadcastsSent: 0,
    broadcastsDelivered: 0,
    broadcastsDroppedOversize: 0,
    broadcastsDroppedQueueFull: 0,
    broadcastHandlerErrors: 0,
    requestsServed: 0,
    requestsFailed: 0,
  };

  constructor(
    readonly name: string,
    private readonly host: ChannelHost,
    private readonly limits: ChannelLimits,
    private readonly logger: Logger,
  ) {
    assertChannelName(name);
    this.topic = channelTopic(name);
    this.protocol = channelProtocol(name);
  }

  async broadcast(payload: Uint8Array): Promise<void> {
    this.assertOpen();
    if (payload.byteLength > this.limits.maxPayloadBytes) {
      throw new ChannelRequestError(
        'too-large',
        `broadcast of ${payload.byteLength} bytes exceeds the limit`,
      );
    }
    await this.host.publish(this.topic, payload);
    this.counters.broadcastsSent += 1;
  }

  onBroadcast(handler: BroadcastHandler): void {
    this.broadcastHandlers.add(handler);
  }

  onRequest(handler: RequestHandler): void {
    this.requestHandler = handler;
  }

  isConnected(peerName: string): boolean {
    const peerId = this.host.peerIdOf(peerName);
    return peerId !== undefined && this.host.isConnected(peerId);
  }

  /**
   * Called when a node newly subscribes to this channel on a direct connection (a new or restarted
   * neighbour): the moment to send it full state, as Weave does on every new connection.
   */
  onPeerJoined(handler: (peerName: string) => void): void {
    this.peerJoinedHandlers.add(handler);
  }

  async send(toPeerName: string, payload: Uint8Array): Promise<Uint8Array | undefined> {
    this.assertOpen();
    if (payload.byteLength > this.limits.maxPayloadBytes) {
      throw new ChannelRequestError('too-large', `request of ${payload.byteLength} bytes exceeds the limit`);
    }
    const peerId = this.host.peerIdOf(toPeerName);
    if (peerId === undefined) throw new ChannelRequestError('unknown-peer', `no peer named ${toPeerName}`);

    const { signal, clear } = deadline(this.limits.requestTimeoutMs, this.closed.signal);
    try {
      const frame = await settleBy(signal, (onAbort) => this.exchange(peerId, payload, signal, onAbort));
      return decodeResponse(frame, toPeerName);
    } catch (err) {
      throw this.requestError(err, toPeerName, signal);
    } finally {
      clear();
    }
  }

  /** A broadcast arrived, signed by `fromPeerId`. */
  deliverBroadcast(fromPeerId: string, payload: Uint8Array): void {
    if (payload.byteLength > this.limits.maxPayloadBytes) {
      this.counters.broadcastsDroppedOversize += 1;
      return;
    }
    const name = this.host.nameOf(fromPeerId);
    if (name !== undefined) {
      this.dispatch(name, payload);
      return;
    }
    let queue = this.queuedByPeerId.get(fromPeerId);
    if (queue === undefined) {
      if (this.queuedByPeerId.size >= this.limits.maxUnknownPeers) {
        this.counters.broadcastsDroppedQueueFull += 1;
        return;
      }
      queue = [];
      this.queuedByPeerId.set(fromPeerId, queue);
    }
    queue.push(payload);
    if (queue.length > this.limits.maxQueuedPerUnknownPeer) {
      queue.shift();
      this.counters.broadcastsDroppedQueueFull += 1;
    }
  }

  /** The topology learned the name of `peerId`: deliver what was held for it. */
  peerNamed(peerId: string, name: string): void {
    const queue = this.queuedByPeerId.get(peerId);
    if (queue !== undefined) {
      this.queuedByPeerId.delete(peerId);
      for (const payload of queue) this.dispatch(name, payload);
    }
    if (this.joinPendingName.delete(peerId)) this.announceJoin(name);
  }

  /** A directly connected peer subscribed to this channel's topic. */
  peerSubscribed(peerId: string): void {
    const name = this.host.nameOf(peerId);
    if (name === undefined) this.joinPendingName.add(peerId);
    else this.announceJoin(name);
  }

  /** Serves one inbound request stream from `fromPeerId`. */
  async serveRequest(stream: Stream, fromPeerId: string): Promise<void> {
    // Twice the requester's budget: the requester should time out (and report 'timeout') before we
    // reset the stream, even when timers run late under load.
    const { signal, clear } = deadline(2 * this.limits.requestTimeoutMs, this.closed.signal);
    try {
      await settleBy(signal, async (onAbort) => {
        onAbort(() => stream.abort(new Error('request timed out')));
        const frame = await this.answer(stream, fromPeerId, signal);
        if (!stream.send(frame)) await stream.onDrain({ signal });
        await stream.close({ signal });
      });
      this.counters.requestsServed += 1;
    } catch (err) {
      this.counters.requestsFailed += 1;
      this.logger.debug(
        { channel: this.name, peerId: fromPeerId, err: (err as Error).message },
        'request failed',
      );
      stream.abort(err as Error);
    } finally {
      clear();
    }
  }

  stats(): ChannelCounters & { queuedFromUnknownPeers: number } {
    let queued = 0;
    for (const queue of this.queuedByPeerId.values()) queued += queue.length;
    return { ...this.counters, queuedFromUnknownPeers: queued };
  }

  close(): void {
    this.closed.abort(new Error('channel closed'));
    this.queuedByPeerId.clear();
    this.joinPendingName.clear();
  }

  /** One request on a fresh stream: payload, half-close, then the whole answer frame. */
  private async exchange(
    peerId: string,
    payload: Uint8Array,
    signal: AbortSignal,
    onAbort: (cleanup: () => void) => void,
  ): Promise<Uint8Array> {
    const stream = await this.host.openStream(peerId, this.protocol, signal);
    onAbort(() => stream.abort(new Error('request aborted')));
    if (!stream.send(payload)) await stream.onDrain({ signal });
    await stream.close({ signal });
    return readToEnd(stream, this.limits.maxPayloadBytes + 1);
  }

  private requestError(err: unknown, peerName: string, signal: AbortSignal): ChannelRequestError {
    if (err instanceof ChannelRequestError) return err;
    if (this.closed.signal.aborted)
      return new ChannelRequestError('stopped', 'gossip node stopped', { cause: err });
    if (signal.aborted) {
      const message = `no answer from ${peerName} within ${this.limits.requestTimeoutMs} ms`;
      return new ChannelRequestError('timeout', message, { cause: err });
    }
    if (err instanceof MessageTooLargeError) {
      return new ChannelRequestError('protocol', `answer from ${peerName} exceeds the limit`, { cause: err });
    }
    const message = `request to ${peerName} failed: ${(err as Error).message}`;
    return new ChannelRequestError('transport', message, { cause: err });
  }

  private async answer(stream: Stream, fromPeerId: string, signal: AbortSignal): Promise<Uint8Array> {
    let request: Uint8Array;
    try {
      request = await readToEnd(stream, this.limits.maxPayloadBytes);
    } catch (err) {
      if (err instanceof MessageTooLargeError) return encodeResponse(ResponseStatus.TooLarge);
      throw err;
    }
    const handler = this.requestHandler;
    if (handler === undefined) return encodeResponse(ResponseStatus.NoHandler);
    let name = this.host.nameOf(fromPeerId);
    if (name === undefined) {
      const wait = deadline(this.limits.unknownSenderWaitMs, signal);
      name = await this.host.waitForName(fromPeerId, wait.signal).finally(wait.clear);
    }
    if (name === undefined) return encodeResponse(ResponseStatus.UnknownSender);
    try {
      const answer = await handler(name, request);
      if (answer === undefined) return encodeResponse(ResponseStatus.NoAnswer);
      if (answer.byteLength > this.limits.maxPayloadBytes) {
        this.logger.error(
          { channel: this.name, bytes: answer.byteLength },
          'request handler answer too large',
        );
        return encodeResponse(ResponseStatus.HandlerFailed);
      }
      return encodeResponse(ResponseStatus.Ok, answer);
    } catch (err) {
      this.logger.warn(
        { channel: this.name, from: name, err: (err as Error).message },
        'request handler failed',
      );
      return encodeResponse(ResponseStatus.HandlerFailed);
    }
  }

  private dispatch(fromPeerName: string, payload: Uint8Array): void {
    for (const handler of this.broadcastHandlers) {
      try {
        handler(fromPeerName, payload);
        this.counters.broadcastsDelivered += 1;
      } catch (err) {
        this.counters.broadcastHandlerErrors += 1;
        this.logger.warn(
          { channel: this.name, from: fromPeerName, err: (err as Error).message },
          'broadcast handler failed',
        );
      }
    }
  }

  private announceJoin(peerName: string): void {
    for (const handler of this.peerJoinedHandlers) {
      try {
        handler(peerName);
      } catch (err) {
        this.logger.warn(
          { channel: this.name, peer: peerName, err: (err as Error).message },
          'peer-joined handler failed',
        );
      }
    }
  }

  private assertOpen(): void {
    if (this.closed.signal.aborted) throw new ChannelRequestError('stopped', 'gossip node stopped');
  }
}

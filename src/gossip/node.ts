import { EventEmitter } from 'node:events';
import type { Message, SubscriptionChangeData } from '@libp2p/gossipsub';
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { Logger } from 'pino';
import { type ChannelHost, channelTopic, TopicChannel } from './channel.js';
import {
  type GossipConfig,
  type GossipConfigInput,
  heartbeatSkipWindowMs,
  PUBLISH_SOON_MIN_GAP_MS,
  parseGossipConfig,
} from './config.js';
import { type ConnectionView, describeConnections } from './connection-view.js';
import { ConnectionMaker } from './connections.js';
import { loadOrCreateIdentity } from './identity.js';
import { createGossipLibp2p, type GossipLibp2p } from './libp2p-node.js';
import { NameWaiters } from './name-waiters.js';
import { type PeerSource, StaticPeerSource, tcpMultiaddr } from './peer-source.js';
import {
  checkReceivedRecord,
  encodeRecord,
  type RecordRejectReason,
  recordRejectReasons,
  TOPOLOGY_RECORD_VERSION,
  type TopologyRecord,
} from './records.js';
import { type KnownPeer, Topology } from './topology.js';

export const TOPOLOGY_TOPIC = '/weft/topology/1';

/** One remote node as `agent status` shows it. */
export interface PeerView extends KnownPeer {
  /** Round trip of libp2p's periodic ping on a direct connection; undefined without one or before the first ping. */
  rttMs: number | undefined;
}

export type GossipNodeEvents = {
  /** The peer set, a peer's name or addresses, or reachability changed (not mere heartbeats). */
  'topology-changed': [peers: PeerView[]];
};

/**
 * How long an unscheduled publish of our record (for a new neighbour or a newly learned peer) waits so
 * that bursts coalesce: during a boot storm each node otherwise publishes once per join it sees, and
 * the bench converged faster with fewer, slightly later publishes (CPU was the bottleneck).
 */
const PUBLISH_SOON_DELAY_MS = 200;
/**
 * The first heartbeat comes after this long, and each gap grows by half up to `heartbeatIntervalMs`. While
 * a cluster boots, a record sent before a peer joined the mesh never reaches it, and the two sides may miss
 * each other's records entirely until a heartbeat: with a 10 s heartbeat, 20 booting agents took 10 s to
 * know each other. With the ramp the first heartbeats go 1, 2.5, 4.8, 8.1, 13 and 21 s after start.
 */
const FIRST_HEARTBEAT_MS = 1_000;
/**
 * libp2p's connection monitor pings every `pingIntervalMs` (30 s by default: each ping is a new stream,
 * and at 10 s the pings of 20 agents cost a fifth of their idle CPU), so a new connection would show no
 * RTT for up to that long. It is pinged once this long after it opens instead, off the busy boot moment.
 */
const FIRST_PING_DELAY_MS = 3_000;
const HEARTBEAT_RAMP = 1.5;
const MAX_LOGGED_REJECTIONS = 4096;

/**
 * One agent's libp2p node: identity, private network, connection upkeep, topology records over
 * gossipsub, peer RTTs, and named channels for other subsystems. Single use: start once, stop once.
 */
export class GossipNode extends EventEmitter<GossipNodeEvents> {
  readonly config: GossipConfig;
  private readonly logger: Logger;
  private readonly peerSources: PeerSource[] = [];
  private readonly channels = new Map<string, TopicChannel>();
  private readonly channelsByTopic = new Map<string, TopicChannel>();
  private readonly nameWaiters = new NameWaiters();
  private readonly droppedByReason = Object.fromEntries(
    recordRejectReasons.map((reason) => [reason, 0]),
  ) as Record<RecordRejectReason, number>;
  private readonly loggedRejections = new Set<string>();
  private readonly stopping = new AbortController();
  private lifecycle: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  private libp2p: GossipLibp2p | undefined;
  private topology: Topology | undefined;
  private connectionMaker: ConnectionMaker | undefined;
  private ownPeerId: string | undefined;
  private readonly incarnation = Date.now();
  private seq = 0;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private addressesInUse: (() => number) | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private publishSoonTimer: NodeJS.Timeout | undefined;
  private lastPublishAtMs = Number.NEGATIVE_INFINITY;
  private lastNewsPublishAtMs = Number.NEGATIVE_INFINITY;
  private readonly firstRttByPeer = new Map<string, number>();
  private readonly firstPingTimers = new Set<NodeJS.Timeout>();

  constructor(config: GossipConfigInput, logger: Logger, peerSources: readonly PeerSource[] = []) {
    super();
    this.config = parseGossipConfig(config);
    this.logger = logger.child({ component: 'gossip', node: this.config.nodeName });
    if (this.config.peers.length > 0) {
      this.peerSources.push(
        new StaticPeerSource(this.config.peers, { defaultPort: this.config.listenPort, logger: this.logger }),
      );
    }
    this.peerSources.push(...peerSources);
  }

  get peerId(): string {
    if (this.ownPeerId === undefined) throw new Error('gossip node not started');
    return this.ownPeerId;
  }

  async start(): Promise<void> {
    if (this.lifecycle !== 'new') throw new Error(`gossip node cannot start: it is ${this.lifecycle}`);
    this.lifecycle = 'starting';
    const identity = await loadOrCreateIdentity(this.config.stateDir, this.logger);
    this.ownPeerId = identity.peerId;
    this.topology = new Topology(
      { name: this.config.nodeName, peerId: identity.peerId },
      this.config.peerTimeoutMs,
    );

    this.libp2p = await createGossipLibp2p(this.config, identity.privateKey);
    if (this.stopping.signal.aborted) {
      await this.libp2p.stop();
      return;
    }

    const pubsub = this.libp2p.services.pubsub;
    pubsub.addEventListener('message', this.onMessage);
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange);
    this.libp2p.addEventListener('peer:connect', this.onPeerConnect);
    this.libp2p.addEventListener('peer:disconnect', this.onPeerDisconnect);
    pubsub.subscribe(TOPOLOGY_TOPIC);
    for (const channel of this.channels.values()) await this.attachChannel(channel);

    this.connectionMaker = new ConnectionMaker({
      selfPeerId: identity.peerId,
      selfAddress: tcpMultiaddr(this.config.underlayAddress, this.config.listenPort),
      dialer: { dial: (address, expectedPeerId, signal) => this.dial(address, expectedPeerId, signal) },
      backoff: this.config.backoff,
      dialTimeoutMs: this.config.dialTimeoutMs,
      targetDegree: this.config.targetDegree,
      minConnectedPeers: this.config.minConnectedPeers,
      tieBreakGraceMs: this.config.tieBreakGraceMs,
      stableConnectionMs: this.config.stableConnectionMs,
      logger: this.logger,
    });
    for (const source of this.peerSources) this.startPeerSource(source);

    this.lifecycle = 'running';
    this.scheduleHeartbeat(Math.min(FIRST_HEARTBEAT_MS, this.config.heartbeatIntervalMs));
    const expiryEveryMs = Math.max(
      50,
      Math.min(this.config.heartbeatIntervalMs, this.config.peerTimeoutMs / 4),
    );
    this.expiryTimer = setInterval(() => this.expirePeers(), expiryEveryMs);
    void this.publishOwnRecord('start');
    this.logger.info(
      {
        peerId: identity.peerId,
        listen: this.libp2p.getMultiaddrs().map(String),
        privateNetwork: this.config.clusterSecret !== undefined,
      },
      'gossip node started',
    );
  }

  async stop(): Promise<void> {
    if (this.lifecycle === 'stopped') return;
    this.lifecycle = 'stopped';
    this.stopping.abort(new Error('gossip node stopped'));
    clearTimeout(this.heartbeatTimer);
    clearInterval(this.expiryTimer);
    clearTimeout(this.publishSoonTimer);
    for (const timer of this.firstPingTimers) clearTimeout(timer);
    this.firstPingTimers.clear();
    for (const source of this.peerSources) source.stop();
    this.connectionMaker?.stop();
    for (const channel of this.channels.values()) channel.close();
    this.nameWaiters.settleAll();
    const libp2p = this.libp2p;
    if (libp2p !== undefined) {
      libp2p.services.pubsub.removeEventListener('message', this.onMessage);
      libp2p.services.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange);
      libp2p.removeEventListener('peer:connect', this.onPeerConnect);
      libp2p.removeEventListener('peer:disconnect', this.onPeerDisconnect);
      await libp2p.stop();
    }
    this.logger.info('gossip node stopped');
  }

  /** The channel `name` (topic `/weft/<name>/1`, protocol `/weft/<name>/req/1.0.0`), created on first use. */
  channel(name: string): TopicChannel {
    const existing = this.channels.get(name);
    if (existing !== undefined) return existing;
    if (this.lifecycle === 'stopped') throw new Error('gossip node stopped');
    if (channelTopic(name) === TOPOLOGY_TOPIC) throw new Error(`channel name ${name} is reserved`);
    const channel = new TopicChannel(
      name,
      this.channelHost,
      this.config.channel,
      this.logger.child({ channel: name }),
    );
    this.channels.set(name, channel);
    this.channelsByTopic.set(channel.topic, channel);
    if (this.lifecycle === 'running') {
      this.attachChannel(channel).catch((err: Error) =>
        this.logger.error({ channel: name, err: err.message }, 'cannot register channel protocol'),
      );
    }
    return channel;
  }

  /** Remote nodes known from topology records (this node excluded), sorted by name. */
  peers(): PeerView[] {
    const known = this.topology?.peers() ?? [];
    const rttByPeer = new Map<string, number>();
    for (const connection of this.libp2p?.getConnections() ?? []) {
      if (connection.rtt === undefined) continue;
      const peerId = connection.remotePeer.toString();
      rttByPeer.set(peerId, Math.min(connection.rtt, rttByPeer.get(peerId) ?? Number.POSITIVE_INFINITY));
    }
    return known.map((peer) => ({
      ...peer,
      rttMs:
        peer.state === 'reachable'
          ? (rttByPeer.get(peer.peerId) ?? this.firstRttByPeer.get(peer.peerId))
          : undefined,
    }));
  }

  connections(): ConnectionView[] {
    const libp2p = this.libp2p;
    const maker = this.connectionMaker;
    if (libp2p === undefined || maker === undefined || this.lifecycle !== 'running') return [];
    const open = libp2p
      .getConnections()
      .filter((connection) => connection.status === 'open')
      .map((connection) => ({
        peerId: connection.remotePeer.toString(),
        direction: connection.direction,
        remoteAddress: connection.remoteAddr.toString(),
      }));
    return describeConnections(maker.views(), open, (peerId) => this.topology?.nameOf(peerId), Date.now());
  }

  /** Records dropped on receipt, by reason. */
  droppedRecords(): Record<RecordRejectReason, number> {
    return { ...this.droppedByReason };
  }

  /** Our records carry this count from now on (read at every heartbeat, no extra publish). */
  provideAddressesInUse(count: () => number): void {
    this.addressesInUse = count;
  }

  /** Removes a peer from the topology (admin `rmpeer`); it reappears if it is still alive. */
  forgetPeer(name: string): boolean {
    const forgotten = this.topology?.forget(name) ?? false;
    if (forgotten) this.topologyChanged();
    return forgotten;
  }

  private readonly channelHost: ChannelHost = {
    publish: async (topic, data) => {
      await this.requireLibp2p().services.pubsub.publish(topic, data);
    },
    openStream: (peerId, protocol, signal) =>
      this.requireLibp2p().dialProtocol(peerIdFromString(peerId), protocol, { signal }),
    nameOf: (peerId) => this.topology?.nameOf(peerId),
    peerIdOf: (name) => this.topology?.peerIdOf(name),
    isConnected: (peerId) =>
      this.libp2p?.getConnections(peerIdFromString(peerId)).some((c) => c.status === 'open') ?? false,
    waitForName: (peerId, signal) => {
      const known = this.topology?.nameOf(peerId);
      return known !== undefined || this.lifecycle === 'stopped'
        ? Promise.resolve(known)
        : this.nameWaiters.wait(peerId, signal);
    },
  };

  private readonly onMessage = (event: CustomEvent<Message>): void => {
    const message = event.detail;
    const signedBy = message.type === 'signed' ? message.from.toString() : undefined;
    if (message.topic === TOPOLOGY_TOPIC) {
      this.receiveRecord(message.data, signedBy);
      return;
    }
    const channel = this.channelsByTopic.get(message.topic);
    if (channel !== undefined && signedBy !== undefined) channel.deliverBroadcast(signedBy, message.data);
  };

  private readonly onSubscriptionChange = (event: CustomEvent<SubscriptionChangeData>): void => {
    const peerId = event.detail.peerId.toString();
    for (const subscription of event.detail.subscriptions) {
      if (!subscription.subscribe) continue;
      // A publish only reaches peers whose subscription we have seen, so answer each new one.
      if (subscription.topic === TOPOLOGY_TOPIC) this.publishSoon();
      else this.channelsByTopic.get(subscription.topic)?.peerSubscribed(peerId);
    }
  };

  private readonly onPeerConnect = (event: CustomEvent<PeerId>): void => {
    this.connectionMaker?.peerConnected(event.detail.toString());
    this.pingOnceSoon(event.detail);
  };

  private readonly onPeerDisconnect = (event: CustomEvent<PeerId>): void => {
    const peerId = event.detail.toString();
    this.firstRttByPeer.delete(peerId);
    this.connectionMaker?.peerDisconnected(peerId);
  };

  private pingOnceSoon(peer: PeerId): void {
    const timer = setTimeout(() => {
      this.firstPingTimers.delete(timer);
      const libp2p = this.libp2p;
      // Only over a connection that is still there: a ping to a peer without one would dial it.
      if (libp2p === undefined || this.lifecycle !== 'running' || libp2p.getConnections(peer).length === 0)
        return;
      libp2p.services.ping
        .ping(peer, { signal: AbortSignal.timeout(this.config.dialTimeoutMs) })
        .then((rttMs) => {
          if (libp2p.getConnections(peer).length > 0) this.firstRttByPeer.set(peer.toString(), rttMs);
        })
        .catch(() => undefined);
    }, FIRST_PING_DELAY_MS);
    timer.unref();
    this.firstPingTimers.add(timer);
  }

  private receiveRecord(data: Uint8Array, signedBy: string | undefined): void {
    const topology = this.topology;
    if (topology === undefined) return;
    const check = checkReceivedRecord({ data, signedBy }, this.config.maxRecordBytes);
    if (!check.ok) {
      this.dropRecord(signedBy, check.reason, check.detail);
      return;
    }
    const record = check.record;
    const outcome = topology.apply(record, Date.now());
    if (!outcome.accepted) {
      this.dropRecord(signedBy, outcome.reason, outcome.detail);
      return;
    }
    if (outcome.change === 'refreshed') return;
    if (outcome.replacedPeerId !== undefined) {
      this.logger.warn(
        { name: record.name, peerId: record.peerId, previousPeerId: outcome.replacedPeerId },
        'node name taken over by a new peer ID',
      );
    }
    this.logger.info(
      { name: record.name, peerId: record.peerId, underlay: record.underlay, change: outcome.change },
      outcome.change === 'added' ? 'peer joined' : 'peer updated',
    );
    this.rememberAddress(record);
    this.nameWaiters.settle(record.peerId, record.name);
    for (const channel of this.channels.values()) channel.peerNamed(record.peerId, record.name);
    // A peer we had not heard (new, restarted, or healed) gets our record without waiting a heartbeat.
    this.publishSoon();
    this.topologyChanged();
  }

  private dropRecord(peerId: string | undefined, reason: RecordRejectReason, detail: string): void {
    this.droppedByReason[reason] += 1;
    // Out-of-order delivery over several mesh paths makes stale records routine.
    if (reason === 'stale' || reason === 'self') {
      this.logger.trace({ peerId, reason, detail }, 'dropped topology record');
      return;
    }
    const key = `${peerId ?? 'unsigned'}|${reason}`;
    if (this.loggedRejections.has(key)) return;
    if (this.loggedRejections.size >= MAX_LOGGED_REJECTIONS) this.loggedRejections.clear();
    this.loggedRejections.add(key);
    this.logger.warn(
      { peerId, reason, detail },
      'dropped topology record (repeats from this peer are only counted)',
    );
  }

  private expirePeers(): void {
    const expired = this.topology?.expire(Date.now()) ?? [];
    if (expired.length === 0) return;
    for (const peerId of expired) {
      this.logger.info({ peerId, name: this.topology?.nameOf(peerId) }, 'peer unreachable');
    }
    this.topologyChanged();
  }

  private topologyChanged(): void {
    const peers = this.peers();
    // Only live peers take places on the address ring: dead nodes of one subnet form a consecutive run
    // there, and two such runs could otherwise leave the live arcs between them without a connection.
    this.connectionMaker?.setLearnedPeers(
      peers
        .filter((peer) => peer.state === 'reachable')
        .map((peer) => ({
          peerId: peer.peerId,
          address: tcpMultiaddr(peer.underlayAddress, peer.gossipPort),
        })),
    );
    try {
      this.emit('topology-changed', peers);
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'topology-changed listener failed');
    }
  }

  private rememberAddress(record: TopologyRecord): void {
    const libp2p = this.libp2p;
    if (libp2p === undefined) return;
    // Lets dialProtocol(peerId) reach peers we only know through gossip.
    libp2p.peerStore
      .merge(peerIdFromString(record.peerId), {
        multiaddrs: [multiaddr(tcpMultiaddr(record.underlay, record.gossipPort))],
      })
      .catch((err: Error) =>
        this.logger.debug({ peerId: record.peerId, err: err.message }, 'peer store update failed'),
      );
  }

  private async publishOwnRecord(reason: 'start' | 'heartbeat' | 'news'): Promise<void> {
    const libp2p = this.libp2p;
    if (libp2p === undefined || this.lifecycle !== 'running') return;
    this.lastPublishAtMs = Date.now();
    const record: TopologyRecord = {
      v: TOPOLOGY_RECORD_VERSION,
      name: this.config.nodeName,
      peerId: this.peerId,
      underlay: this.config.underlayAddress,
      gossipPort: this.config.listenPort,
      dataPort: this.config.dataPort,
      version: this.config.agentVersion,
      incarnation: this.incarnation,
      seq: this.seq++,
      sentAtMs: Date.now(),
      ...(this.addressesInUse === undefined ? {} : { addressesInUse: this.addressesInUse() }),
      ...(this.config.dataplaneFeatures.length > 0 ? { features: [...this.config.dataplaneFeatures] } : {}),
    };
    try {
      const sent = await libp2p.services.pubsub.publish(TOPOLOGY_TOPIC, encodeRecord(record));
      this.logger.debug({ seq: record.seq, reason, recipients: sent.recipients.length }, 'record published');
    } catch (err) {
      if (this.lifecycle === 'running') this.logger.debug({ err: (err as Error).message }, 'publish failed');
    }
  }

  private scheduleHeartbeat(delayMs: number): void {
    this.heartbeatTimer = setTimeout(() => {
      // A record published moments ago for news did this heartbeat's work: while 20 agents booted,
      // half the heartbeats came less than a second after such a publish. (Only news counts: the
      // record at start reaches nobody yet, and a short test heartbeat must not skip every other one.)
      const skipWithinMs = heartbeatSkipWindowMs(this.config.heartbeatIntervalMs);
      if (Date.now() - this.lastNewsPublishAtMs >= skipWithinMs) void this.publishOwnRecord('heartbeat');
      if (this.lifecycle === 'running') {
        this.scheduleHeartbeat(Math.min(delayMs * HEARTBEAT_RAMP, this.config.heartbeatIntervalMs));
      }
    }, delayMs);
  }

  private publishSoon(): void {
    if (this.publishSoonTimer !== undefined || this.lifecycle !== 'running') return;
    const delay = Math.max(
      PUBLISH_SOON_DELAY_MS,
      this.lastPublishAtMs + PUBLISH_SOON_MIN_GAP_MS - Date.now(),
    );
    this.publishSoonTimer = setTimeout(() => {
      this.publishSoonTimer = undefined;
      this.lastNewsPublishAtMs = Date.now();
      void this.publishOwnRecord('news');
    }, delay);
  }

  private async dial(
    address: string,
    expectedPeerId: string | undefined,
    signal: AbortSignal,
  ): Promise<string> {
    const target = multiaddr(expectedPeerId === undefined ? address : `${address}/p2p/${expectedPeerId}`);
    const connection = await this.requireLibp2p().dial(target, { signal });
    return connection.remotePeer.toString();
  }

  private startPeerSource(source: PeerSource): void {
    source.start((addresses) => {
      this.logger.debug({ source: source.name, addresses }, 'peer source addresses');
      this.connectionMaker?.setSourceAddresses(source.name, addresses);
    });
  }

  private async attachChannel(channel: TopicChannel): Promise<void> {
    const libp2p = this.requireLibp2p();
    libp2p.services.pubsub.subscribe(channel.topic);
    await libp2p.handle(
      channel.protocol,
      (stream, connection) => channel.serveRequest(stream, connection.remotePeer.toString()),
      { maxInboundStreams: 32 },
    );
  }

  private requireLibp2p(): GossipLibp2p {
    if (this.libp2p === undefined || this.lifecycle === 'stopped') throw new Error('gossip node not running');
    return this.libp2p;
  }
}

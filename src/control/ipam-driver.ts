import { EventEmitter } from 'node:events';
import type { GossipChannel } from '../gossip/channel.js';
import {
  type AllocateResult,
  type IpamNode,
  type IpamSnapshot,
  type Outbound,
  type Ring,
  type RmpeerResult,
  saveIpamState,
} from '../ipam/index.js';
import { GroupCommit } from '../util/group-commit.js';
import type { Logger } from '../util/log.js';
import { type Packet, packOutbox, unpack } from './ipam-wire.js';

export interface IpamDriverOptions {
  ipam: IpamNode;
  channel: GossipChannel;
  stateDir: string;
  log: Logger;
  tickIntervalMs?: number;
  now?: () => number;
  save?: (dir: string, snapshot: IpamSnapshot) => Promise<void>;
}

export interface IpamDriverCounters {
  received: number;
  /** Addressed to other peers and dropped unread. */
  forOthers: number;
  rejected: number;
  sent: number;
  /** Of the messages sent, copies that went over a direct stream to one recipient. */
  sentDirect: number;
  sendFailures: number;
  saves: number;
}

/** Beyond this many recipients a message is broadcast even when all are directly connected. */
const MAX_DIRECT_RECIPIENTS = 3;

type DriverEvents = { 'ring-changed': []; 'save-failed': [Error] };

/**
 * Drives the pure {@link IpamNode} over a gossip channel: feeds it time and validated messages,
 * and carries out what it asks for. The one rule that IPAM's safety rests on lives here: state
 * is on disk before any message produced from it leaves the node, and before an allocation is
 * reported to the caller. Flushes run strictly one after another, so saves never race, and changes
 * made while one runs share the next (group commit): a burst of allocations costs two saves.
 */
export class IpamDriver extends EventEmitter<DriverEvents> {
  readonly counters: IpamDriverCounters = {
    received: 0,
    forOthers: 0,
    rejected: 0,
    sent: 0,
    sentDirect: 0,
    sendFailures: 0,
    saves: 0,
  };
  private readonly ipam: IpamNode;
  private readonly channel: GossipChannel;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly save: (dir: string, snapshot: IpamSnapshot) => Promise<void>;
  private savedRevision = -1;
  private lastRing: Ring | null = null;
  /** Messages drained before a save that failed: they leave with the next successful save. */
  private heldBack: Outbound[] = [];
  private readonly flushes = new GroupCommit(() => this.flushOnce());
  private timer: NodeJS.Timeout | undefined;
  private readonly rejectedFrom = new Set<string>();
  private readonly sending = new Set<Promise<void>>();

  constructor(private readonly options: IpamDriverOptions) {
    super();
    this.ipam = options.ipam;
    this.channel = options.channel;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.save = options.save ?? saveIpamState;
  }

  get node(): IpamNode {
    return this.ipam;
  }

  start(): void {
    this.channel.onBroadcast((from, payload) => this.deliver(from, payload));
    this.channel.onRequest(async (from, payload) => {
      this.deliver(from, payload);
      return undefined;
    });
    const tick = () => this.background((ipam) => ipam.tick(this.now()));
    this.timer = setInterval(tick, this.options.tickIntervalMs ?? 500);
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flushes.settled();
    await Promise.all(this.sending);
  }

  /**
   * The topology's reachable peers changed (the expected cluster size comes with the seeding mode).
   * Ticks at once: a proposer that now knows a quorum, or a prepare phase that can ask a new peer,
   * need not wait for the next timer tick.
   */
  setKnownPeers(names: Iterable<string>): Promise<void> {
    return this.apply((ipam) => {
      ipam.setKnownPeers(names);
      ipam.tick(this.now());
    });
  }

  /** Allocates for a container; resolves only once the allocation is on disk. */
  allocate(containerId: string): Promise<AllocateResult> {
    return this.apply((ipam) => ipam.allocate(containerId));
  }

  release(containerId: string): Promise<string | undefined> {
    return this.apply((ipam) => ipam.release(containerId));
  }

  gc(validContainerIds: Iterable<string>): Promise<Array<{ containerId: string; address: string }>> {
    return this.apply((ipam) => ipam.gc(validContainerIds));
  }

  rmpeer(peer: string, options: { allowReachable?: boolean } = {}): Promise<RmpeerResult> {
    return this.apply((ipam) => ipam.rmpeer(peer, options));
  }

  /**
   * Runs a state change, then waits until it is saved and its messages are on their way (not
   * delivered). Rejects if the save that carried the change failed; the change stays in memory and
   * goes to disk with the next save.
   */
  async apply<T>(change: (ipam: IpamNode) => T): Promise<T> {
    const result = change(this.ipam);
    await this.flush();
    return result;
  }

  /** A change nobody awaits; a failed save is already logged and reported as 'save-failed'. */
  private background(change: (ipam: IpamNode) => void): void {
    this.apply(change).catch(() => undefined);
  }

  private deliver(from: string, payload: Uint8Array): void {
    const unpacked = unpack(payload, this.ipam.peer);
    if (unpacked.kind === 'elsewhere') {
      this.counters.forOthers++;
      return;
    }
    if (unpacked.kind === 'invalid') {
      this.counters.rejected++;
      if (!this.rejectedFrom.has(from)) {
        this.rejectedFrom.add(from);
        this.log.warn(
          { peer: from, error: unpacked.error },
          'dropping invalid IPAM message (logged once per peer)',
        );
      }
      return;
    }
    this.counters.received++;
    const { message } = unpacked;
    this.log.debug({ from, type: message.type }, 'IPAM message received');
    this.background((ipam) => ipam.receive(from, message));
  }

  private flush(): Promise<void> {
    return this.flushes.commit();
  }

  private async flushOnce(): Promise<void> {
    // Drain and snapshot in one synchronous step: the snapshot covers every message drained.
    const outbox = [...this.heldBack, ...this.ipam.drainOutbox()];
    this.heldBack = [];
    const revision = this.ipam.revision;
    if (revision !== this.savedRevision) {
      try {
        const started = performance.now();
        await this.save(this.options.stateDir, this.ipam.snapshot());
        this.log.debug({ ms: Math.round(performance.now() - started), revision }, 'IPAM state saved');
      } catch (error) {
        // Nothing derived from unsaved state may leave the node: keep it for the next save.
        this.heldBack = outbox;
        this.log.error({ err: error }, 'cannot save IPAM state; holding back its messages');
        this.emit('save-failed', error as Error);
        throw error;
      }
      this.savedRevision = revision;
      this.counters.saves++;
      this.noticeRingChange();
    }
    if (outbox.length > 0) this.ipam.messagesSent(this.now());
    // Started, not awaited: a publish under load can take a while, and no later save should wait
    // for it. Safety needs only the save above to come first.
    for (const packet of packOutbox(outbox)) {
      const sending = this.send(packet).finally(() => this.sending.delete(sending));
      this.sending.add(sending);
    }
  }

  /** Rings are immutable values: a new object is a change. */
  private noticeRingChange(): void {
    if (this.ipam.ring === this.lastRing) return;
    this.lastRing = this.ipam.ring;
    this.emit('ring-changed');
  }

  private async send(packet: Packet): Promise<void> {
    const direct = this.directRecipients(packet);
    try {
      if (direct.length > 0) {
        const sent = await Promise.allSettled(direct.map((to) => this.channel.send(to, packet.payload)));
        this.counters.sentDirect += direct.length;
        const failed = sent.find((outcome) => outcome.status === 'rejected');
        // A connection that just closed: the broadcast may still reach the peer through the mesh.
        if (failed !== undefined && packet.type !== 'space-request') {
          this.log.debug({ to: packet.to, type: packet.type, err: failed.reason }, 'IPAM direct send failed');
          await this.channel.broadcast(packet.payload);
        } else if (failed !== undefined) throw failed.reason;
      } else await this.channel.broadcast(packet.payload);
      this.counters.sent++;
      this.log.debug(
        { to: packet.to ?? 'everyone', type: packet.type, direct: direct.length > 0 },
        'IPAM message sent',
      );
    } catch (error) {
      this.counters.sendFailures++;
      this.log.debug(
        { to: packet.to ?? 'everyone', type: packet.type, err: error },
        'IPAM message not sent; IPAM retries',
      );
    }
  }

  /**
   * Who gets `packet` over a direct stream instead of the broadcast: a space request always goes to
   * its donor; any other message for a few peers does when every one of them is directly connected. A
   * broadcast is flooded to every node and forwarded along the mesh (about N × D transmissions, N
   * signature checks) while a direct message costs one stream on a connection that is already there:
   * during a 20-agent boot the promises and acceptances of one Paxos round alone were 38 broadcasts.
   */
  private directRecipients(packet: Packet): readonly string[] {
    const to = packet.to;
    if (to === null) return [];
    if (packet.type === 'space-request') return to.length === 1 ? to : [];
    return to.length <= MAX_DIRECT_RECIPIENTS && to.every((peer) => this.channel.isConnected(peer)) ? to : [];
  }
}

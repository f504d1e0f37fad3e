import {
  formatAddress,
  formatCidr,
  type Interval,
  intervalsSize,
  intervalToCidrs,
  parseAddress,
  parseCidr,
  subtractIntervals,
} from './address.js';
import { AllocationTable } from './allocator.js';
import { IpamStateError } from './errors.js';
import {
  type AcceptedValue,
  BROADCAST,
  decodeRing,
  encodeRing,
  IPAM_PROTOCOL_VERSION,
  type IpamMessage,
  type Outbound,
  type Proposal,
  ringAddsNothing,
  staleOwnership,
  type WireRing,
} from './messages.js';
import {
  entryEnd,
  grantRange,
  mergeRings,
  ownedIntervals,
  type Ring,
  reportFree,
  ringDefect,
  seedRing,
  transferPeer,
} from './ring.js';
import {
  type AcceptorReply,
  type AcceptorState,
  compareProposals,
  onAccept,
  onPrepare,
  ProposalAttempt,
  quorumOf,
  type SeedingMode,
  seedIdFor,
} from './seeding.js';
import type { IpamConflict, IpamConflictKind, IpamSnapshot } from './snapshot.js';
import { SNAPSHOT_FORMAT } from './snapshot.js';
import { chooseDonation, countBetween, isUsable, ownedBlocks, usableWithin } from './space.js';

export const DEFAULT_CLUSTER_RANGE = '10.32.0.0/12';
/** The allocation that holds this node's bridge (gateway) address; made before any pod's. */
export const GATEWAY_ID = 'weft:gateway';
/** Smallest block a peer gives away, and the smallest share a seeded peer gets. */
export const DEFAULT_MIN_DONATION = 16;
const MAX_CONFLICTS = 50;
/**
 * How many retry intervals a proposer stays quiet after hearing a lower-named one. A Paxos round on a
 * loaded machine (20 agents on 2 shared cores) took over 10 s; with 2 intervals the others gave up
 * waiting mid-round, proposed themselves, and the rounds outbid each other for minutes.
 */
const PREFERRED_PROPOSER_YIELD_RETRIES = 4;
const MAX_CONTAINER_ID = 256;

export interface IpamTiming {
  /** Space requests and Paxos attempts are retried after this long without an answer. */
  readonly retryMs: number;
  /**
   * Every node gossips the whole ring about this often (±25 %) while the cluster has at most
   * RING_GOSSIPERS_PER_INTERVAL nodes, which repairs lost messages; in larger clusters each node waits
   * proportionally longer, so that the cluster as a whole still sends a full ring about every
   * gossipMs / RING_GOSSIPERS_PER_INTERVAL (6 s by default) instead of N per gossipMs: any node's ring
   * repairs everyone, and 20 agents' rings every 30 s were a quarter of their idle CPU.
   */
  readonly gossipMs: number;
  /**
   * With an expected cluster size, how long the first proposer waits, once it knows a quorum, to hear
   * of every expected peer. The first ring splits the range among the peers the proposer knows; one it
   * had not heard of yet must later ask a donor for space, which waits for the owners' free counts and
   * takes seconds longer than the whole Paxos round. 0: propose on a quorum at once.
   */
  readonly fullViewGraceMs: number;
}
export const DEFAULT_IPAM_TIMING: IpamTiming = { retryMs: 5_000, gossipMs: 30_000, fullViewGraceMs: 0 };
export const RING_GOSSIPERS_PER_INTERVAL = 5;

export interface IpamConfig {
  readonly peer: string;
  readonly clusterRange?: string;
  readonly seeding: SeedingMode;
  readonly timing?: Partial<IpamTiming>;
  readonly minDonation?: number;
  /** Jitter source in [0, 1) for backoff and donor choice; inject a seeded one for reproducible runs. */
  readonly random?: () => number;
}

export type AllocateResult =
  | { readonly ok: true; readonly containerId: string; readonly address: string; readonly gateway: string }
  | {
      readonly ok: false;
      readonly reason: 'awaiting-consensus';
      readonly quorum: number;
      readonly known: number;
      readonly message: string;
    }
  | {
      readonly ok: false;
      readonly reason: 'no-ring' | 'out-of-space' | 'invalid-container-id';
      readonly message: string;
    };

export type RmpeerResult =
  | { readonly ok: true; readonly peer: string; readonly cidrs: string[]; readonly addresses: number }
  | { readonly ok: false; readonly reason: 'self' | 'no-ring' | 'reachable'; readonly message: string };

export type SeedingState =
  | { readonly kind: 'seeded'; readonly seedId: string }
  | { readonly kind: 'awaiting-consensus'; readonly quorum: number; readonly known: number }
  | { readonly kind: 'awaiting-ring' };

interface OwnedSpace {
  readonly ring: Ring;
  readonly owned: Interval[];
  readonly blocks: Interval[];
}

/**
 * One peer's IP address manager: a deterministic state machine with no timers and no I/O.
 *
 * Inputs: tick(nowMs), receive(from, message), allocate, release, gc, rmpeer, setKnownPeers.
 * Outputs: drainOutbox() returns the messages to send ({ to: peer | 'broadcast' }). Contract with the
 * agent (safety rule R3 in ring.ts): after any input, if `revision` changed, save snapshot() durably
 * BEFORE sending what drainOutbox() returns; then it may report messagesSent(nowMs).
 */
export class IpamNode {
  readonly peer: string;
  readonly clusterRange: string;
  readonly range: Interval;
  readonly seeding: SeedingMode;
  private readonly timing: IpamTiming;
  private readonly minDonation: number;
  private readonly random: () => number;
  private readonly expectedSeedId: string | undefined;

  private ringState: Ring | null = null;
  private acceptor: AcceptorState = { promised: null, accepted: null };
  private lastRound = 0;
  private highestRoundSeen = 0;
  private attempt: ProposalAttempt | null = null;
  /** The current attempt has messages in the outbox / drained but not reported sent yet. */
  private attemptMessagesQueued = false;
  private attemptMessagesDrained = false;
  private nextAttemptAt: number | null = null;
  /** The first attempt's wait (rank order, full-view grace), which a complete view may cut short. */
  private firstAttemptAt: number | null = null;
  /**
   * When a proposer that sorts before this node last showed Paxos activity (prepared, asked to accept,
   * or outbid us). Proposers yield to lower names, so concurrent proposers (each ranking itself first
   * in its partial view of a booting cluster) settle on one instead of duelling round after round.
   */
  private lastPreferredPaxosAt = Number.NEGATIVE_INFINITY;
  private readonly allocations = new AllocationTable();
  private conflictList: IpamConflict[] = [];
  private known = new Set<string>();
  private readonly expectedPeers: number | undefined;
  private nowMs = 0;
  private revisionCounter = 0;
  private broadcastPending = false;
  private outbox: Outbound[] = [];
  private lastGossipAt = Number.NEGATIVE_INFINITY;
  /** Drawn per broadcast: nodes seeded together would otherwise gossip their rings in lockstep. */
  private gossipJitter = 1;
  private lastRingRequestAt = Number.NEGATIVE_INFINITY;
  private spaceRequest: { readonly to: string; readonly sentAt: number } | null = null;
  private readonly deniedUntil = new Map<string, number>();
  private space: OwnedSpace | null = null;

  private constructor(config: IpamConfig) {
    if (config.peer.length === 0 || config.peer === BROADCAST) {
      throw new Error(`invalid peer name '${config.peer}'`);
    }
    const cidr = parseCidr(config.clusterRange ?? DEFAULT_CLUSTER_RANGE);
    if (cidr.prefix > 30) throw new Error(`cluster range ${formatCidr(cidr)} is too small`);
    this.peer = config.peer;
    this.clusterRange = formatCidr(cidr);
    this.range = { start: cidr.start, end: cidr.start + 2 ** (32 - cidr.prefix) };
    this.seeding = config.seeding;
    this.timing = { ...DEFAULT_IPAM_TIMING, ...config.timing };
    this.minDonation = config.minDonation ?? DEFAULT_MIN_DONATION;
    this.random = config.random ?? Math.random;
    this.known.add(this.peer);
    if (config.seeding.kind === 'consensus') this.expectedPeers = config.seeding.expectedPeers;
    this.expectedSeedId =
      config.seeding.kind === 'seeds'
        ? seedIdFor('seeds', this.clusterRange, config.seeding.seeds)
        : undefined;
  }

  /** A node with no history. A peer named in a seed list creates its ring at once. */
  static create(config: IpamConfig): IpamNode {
    const node = new IpamNode(config);
    node.seedFromListIfMember();
    return node;
  }

  /** A node from its saved state; throws IpamStateError if the state does not belong to this config. */
  static restore(config: IpamConfig, snapshot: IpamSnapshot, source = 'the IPAM state'): IpamNode {
    const node = new IpamNode(config);
    if (snapshot.peer !== node.peer) {
      throw new IpamStateError(
        `${source} belongs to peer '${snapshot.peer}', but this agent is peer '${node.peer}'. Start the agent ` +
          `with its old peer name, or point it at its own state directory.`,
      );
    }
    let savedRange: string;
    try {
      savedRange = formatCidr(parseCidr(snapshot.clusterRange));
    } catch {
      savedRange = snapshot.clusterRange;
    }
    if (savedRange !== node.clusterRange) {
      throw new IpamStateError(
        `${source} is for cluster range ${snapshot.clusterRange}, but this agent is configured with ` +
          `${node.clusterRange}. Configure the range the cluster was created with; changing the range of a ` +
          `running cluster needs a fresh IPAM state on every node.`,
      );
    }
    if (snapshot.ring !== null) {
      const ring = decodeRing(snapshot.ring, node.range);
      const defect = ringDefect(ring, node.range);
      if (defect !== undefined) throw new IpamStateError(`${source} holds a damaged ring (${defect}).`);
      if (node.expectedSeedId !== undefined && ring.seedId !== node.expectedSeedId) {
        throw new IpamStateError(
          `${source} holds a ring seeded as ${ring.seedId}, but the configured seed list gives ` +
            `${node.expectedSeedId}. Use the seed list the cluster was created with.`,
        );
      }
      node.ringState = ring;
    }
    node.acceptor = { promised: snapshot.paxos.promised, accepted: snapshot.paxos.accepted };
    node.lastRound = snapshot.paxos.lastRound;
    node.conflictList = snapshot.conflicts.map((c) => ({ ...c, orphaned: [...c.orphaned] }));
    const blocks = node.ownedSpace()?.blocks ?? [];
    for (const { containerId, address } of snapshot.allocations) {
      let value: number;
      try {
        value = parseAddress(address);
      } catch {
        throw new IpamStateError(
          `${source} has an invalid address '${address}' for container ${containerId}.`,
        );
      }
      if (!isUsable(blocks, value)) {
        throw new IpamStateError(
          `${source} records ${address} for container ${containerId}, which is not in this peer's ranges.`,
        );
      }
      if (
        node.allocations.addressOf(containerId) !== undefined ||
        node.allocations.holderOf(value) !== undefined
      ) {
        throw new IpamStateError(`${source} records container ${containerId} or address ${address} twice.`);
      }
      node.allocations.add(containerId, value);
    }
    node.seedFromListIfMember();
    node.ensureGateway();
    return node;
  }

  // ---- read-only views -------------------------------------------------------------------------------

  /** Bumps whenever state that snapshot() saves has changed. */
  get revision(): number {
    return this.revisionCounter;
  }

  get ring(): Ring | null {
    return this.ringState;
  }

  get knownPeers(): ReadonlySet<string> {
    return this.known;
  }

  get quorum(): number {
    return quorumOf(this.expectedPeers ?? this.known.size);
  }

  get conflicts(): readonly IpamConflict[] {
    return this.conflictList;
  }

  get allocationCount(): number {
    return this.allocations.size;
  }

  /** This node's bridge address, once it owns space. */
  get gateway(): string | undefined {
    const address = this.allocations.addressOf(GATEWAY_ID);
    return address === undefined ? undefined : formatAddress(address);
  }

  /** The peer this node last asked for space, while it is waiting for an answer. */
  get askingForSpace(): string | undefined {
    return this.spaceRequest?.to;
  }

  get seedingState(): SeedingState {
    if (this.ringState !== null) return { kind: 'seeded', seedId: this.ringState.seedId };
    if (this.seeding.kind === 'consensus') {
      return { kind: 'awaiting-consensus', quorum: this.quorum, known: this.known.size };
    }
    return { kind: 'awaiting-ring' };
  }

  /** Addresses this node could still hand out. */
  get freeAddresses(): number {
    const space = this.ownedSpace();
    if (space === null) return 0;
    return usableWithin(space.blocks, this.range) - this.allocations.size;
  }

  /** This node's ranges, ascending and joined. */
  ownedIntervals(): Interval[] {
    return [...(this.ownedSpace()?.owned ?? [])];
  }

  /** Allocations in address order, addresses as uint32 (the gateway included, as GATEWAY_ID). */
  allocationEntries(): Array<{ containerId: string; address: number }> {
    return this.allocations.entries();
  }

  allocationList(): Array<{ containerId: string; address: string }> {
    return this.allocations
      .entries()
      .map((e) => ({ containerId: e.containerId, address: formatAddress(e.address) }));
  }

  addressOf(containerId: string): string | undefined {
    const address = this.allocations.addressOf(containerId);
    return address === undefined ? undefined : formatAddress(address);
  }

  snapshot(): IpamSnapshot {
    return {
      format: SNAPSHOT_FORMAT,
      peer: this.peer,
      clusterRange: this.clusterRange,
      ring: this.ringState === null ? null : encodeRing(this.ringState),
      paxos: {
        promised: this.acceptor.promised,
        accepted: this.acceptor.accepted,
        lastRound: this.lastRound,
      },
      allocations: this.allocationList(),
      conflicts: this.conflictList.map((c) => ({ ...c, orphaned: [...c.orphaned] })),
    };
  }

  /** Messages to send, oldest first; the ring broadcast (if any) carries the ring as it is now. */
  drainOutbox(): Outbound[] {
    if (this.broadcastPending && this.ringState !== null) {
      this.outbox.push({ to: BROADCAST, message: this.ringMessage() });
      this.lastGossipAt = this.nowMs;
      this.gossipJitter = 0.75 + this.random() / 2;
    }
    this.broadcastPending = false;
    this.attemptMessagesDrained ||= this.attemptMessagesQueued;
    this.attemptMessagesQueued = false;
    const out = this.outbox;
    this.outbox = [];
    return out;
  }

  // ---- inputs ------------------------------------------------------------------------------------------

  /**
   * What drainOutbox() returned has left (saved, then handed to the transport). A Paxos attempt's
   * retry timer runs from when its prepares or accepts left, not from when they were queued: with 20
   * agents booting on 2 cores the save before sending took up to 4 s, and rounds timed out before
   * any acceptor could have answered, which cost a whole second round.
   */
  messagesSent(nowMs: number): void {
    this.nowMs = Math.max(this.nowMs, nowMs);
    if (this.attemptMessagesDrained && this.attempt !== null) this.attempt.progressAt = this.nowMs;
    this.attemptMessagesDrained = false;
  }

  /** The peers the topology says are reachable now (the expected cluster size comes with the seeding mode). */
  setKnownPeers(names: Iterable<string>): void {
    this.known = new Set(names);
    this.known.add(this.peer);
  }

  tick(nowMs: number): void {
    this.nowMs = Math.max(this.nowMs, nowMs);
    if (this.ringState === null) {
      if (this.seeding.kind === 'consensus') this.paxosTick();
      // While our own proposal is out, every peer that has a ring answers its prepare with the ring.
      if (this.attempt === null) this.maybeRequestRing();
      return;
    }
    this.reportFreeIfChanged(false);
    this.maybeRequestSpace();
    if (this.nowMs - this.lastGossipAt >= this.ringGossipIntervalMs() * this.gossipJitter)
      this.broadcastPending = true;
  }

  /** See IpamTiming.gossipMs; each wait is this times a random factor in [0.75, 1.25). */
  private ringGossipIntervalMs(): number {
    return this.timing.gossipMs * Math.max(1, this.known.size / RING_GOSSIPERS_PER_INTERVAL);
  }

  /** Handles a message validated by parseIpamMessage; `from` is the authenticated sender. */
  receive(from: string, message: IpamMessage): void {
    if (from === this.peer) return;
    if (message.range !== this.clusterRange) {
      this.addConflict(
        'range-mismatch',
        from,
        `peer ${from} uses cluster range ${message.range}, this node ${this.clusterRange}; its messages are ignored`,
      );
      return;
    }
    switch (message.type) {
      case 'ring':
        this.onRing(from, message.ring);
        return;
      case 'ring-request':
        if (this.ringState !== null) this.send(from, this.ringMessage());
        return;
      case 'space-request':
        this.onSpaceRequest(from, message.seedId);
        return;
      case 'space-denied':
        this.onSpaceDenied(from);
        return;
      case 'paxos-prepare':
        if (message.proposal.proposer === from) {
          this.noticeProposer(from);
          this.onAcceptorInput(from, onPrepare(this.acceptor, message.proposal));
        }
        return;
      case 'paxos-accept':
        if (message.proposal.proposer === from) {
          this.noticeProposer(from);
          this.onAcceptorInput(from, onAccept(this.acceptor, message.proposal, message.value));
        }
        return;
      case 'paxos-promise':
        if (this.isCurrentAttempt(message.proposal)) this.onPromise(from, message.accepted);
        return;
      case 'paxos-accepted':
        if (this.isCurrentAttempt(message.proposal)) this.onAccepted(from);
        return;
      case 'paxos-reject':
        // Refused for our own proposal: an acceptor got one of our prepares twice (sent direct, then
        // again by the fallback broadcast). It is on our side; giving up the round would waste it.
        if (compareProposals(message.promised, message.proposal) === 0) return;
        this.highestRoundSeen = Math.max(this.highestRoundSeen, message.promised.round);
        if (this.isCurrentAttempt(message.proposal)) this.outbid(message.promised.proposer);
        return;
    }
  }

  /** Idempotent per container ID: the same ID gets the same address until it is released. */
  allocate(containerId: string): AllocateResult {
    if (
      containerId.length === 0 ||
      containerId.length > MAX_CONTAINER_ID ||
      containerId.startsWith('weft:')
    ) {
      return { ok: false, reason: 'invalid-container-id', message: `invalid container ID '${containerId}'` };
    }
    const existing = this.allocations.addressOf(containerId);
    if (existing !== undefined) return this.allocated(containerId, existing);
    const space = this.ownedSpace();
    if (space === null) {
      const state = this.seedingState;
      if (state.kind === 'awaiting-consensus') {
        return {
          ok: false,
          reason: 'awaiting-consensus',
          quorum: state.quorum,
          known: state.known,
          message: `awaiting consensus: quorum ${state.quorum}, known ${state.known}`,
        };
      }
      return { ok: false, reason: 'no-ring', message: 'no IP ring yet: waiting to hear it from a peer' };
    }
    this.ensureGateway();
    const hasGateway = this.allocations.addressOf(GATEWAY_ID) !== undefined;
    const address = hasGateway ? this.allocations.firstFree(space.blocks) : undefined;
    if (address === undefined) {
      this.maybeRequestSpace();
      const asking = this.spaceRequest?.to;
      return {
        ok: false,
        reason: 'out-of-space',
        message:
          asking !== undefined
            ? `no free address in this node's ranges; asked peer ${asking} for space`
            : "no free address in this node's ranges and no reachable peer has space to give (rmpeer dead peers)",
      };
    }
    this.allocations.add(containerId, address);
    this.changed();
    if (this.freeAddresses === 0) this.maybeRequestSpace();
    return this.allocated(containerId, address);
  }

  /** Returns the released address, or undefined if the container had none. */
  release(containerId: string): string | undefined {
    if (containerId.startsWith('weft:')) return undefined;
    const address = this.allocations.remove(containerId);
    if (address === undefined) return undefined;
    this.changed();
    return formatAddress(address);
  }

  /** Releases every allocation whose container ID is not in `validContainerIds`. */
  gc(validContainerIds: Iterable<string>): Array<{ containerId: string; address: string }> {
    const valid = new Set(validContainerIds);
    const released: Array<{ containerId: string; address: string }> = [];
    for (const { containerId } of this.allocations.entries()) {
      if (containerId === GATEWAY_ID || valid.has(containerId)) continue;
      const address = this.release(containerId);
      if (address !== undefined) released.push({ containerId, address });
    }
    return released;
  }

  /**
   * Takes over every range a dead peer owns in this node's ring. Idempotent: a second call takes nothing
   * and says so. Safe only if `deadPeer` is really dead and no other node runs rmpeer for it (ring.ts P1);
   * an external claim (e.g. a Kubernetes lock) should decide which node calls it. A peer the topology
   * still reports reachable is refused unless `allowReachable`.
   */
  rmpeer(deadPeer: string, options: { allowReachable?: boolean } = {}): RmpeerResult {
    if (deadPeer === this.peer) return { ok: false, reason: 'self', message: 'a node cannot rmpeer itself' };
    if (this.ringState === null) return { ok: false, reason: 'no-ring', message: 'no IP ring yet' };
    if (this.known.has(deadPeer) && options.allowReachable !== true) {
      return {
        ok: false,
        reason: 'reachable',
        message: `peer ${deadPeer} is reachable; refusing to take its ranges (it would hand out the same addresses)`,
      };
    }
    const { ring, taken } = transferPeer(this.ringState, deadPeer, this.peer);
    if (taken.length > 0) {
      this.applyRing(ring);
      this.reportFreeIfChanged(true);
    }
    return {
      ok: true,
      peer: deadPeer,
      cidrs: taken.flatMap((interval) => intervalToCidrs(interval).map(formatCidr)),
      addresses: intervalsSize(taken),
    };
  }

  /** Forgets reported conflicts (after an operator dealt with them). */
  clearConflicts(): void {
    if (this.conflictList.length === 0) return;
    this.conflictList = [];
    this.changed();
  }

  // ---- ring --------------------------------------------------------------------------------------------

  private ringMessage(): IpamMessage {
    return {
      type: 'ring',
      v: IPAM_PROTOCOL_VERSION,
      range: this.clusterRange,
      ring: encodeRing(this.ringState as Ring),
    };
  }

  private onRing(from: string, wire: WireRing): void {
    const current = this.ringState;
    if (current !== null && wire.seedId === current.seedId) {
      // A peer that still claims ranges which changed hands (rmpeer, a restored old state) gets our ring
      // back at once rather than at the next periodic gossip, so it stops acting on them within a round trip.
      if (staleOwnership(current, wire, from)) this.send(from, this.ringMessage());
      if (ringAddsNothing(current, wire)) return;
    }
    const incoming = decodeRing(wire, this.range);
    const defect = ringDefect(incoming, this.range);
    if (defect !== undefined) {
      this.addConflict('invalid-message', from, `peer ${from} sent an invalid ring (${defect}); ignored`);
      return;
    }
    const wantedSeed = current?.seedId ?? this.expectedSeedId;
    if (wantedSeed !== undefined && incoming.seedId !== wantedSeed) {
      this.addConflict(
        'seed-mismatch',
        from,
        `peer ${from} has a ring seeded as ${incoming.seedId}, this node ${wantedSeed}: the cluster was seeded ` +
          'twice (different seed lists, expected peer counts or a lost state); not merged',
      );
      return;
    }
    if (current === null) {
      this.adoptFirstRing(incoming, from);
      return;
    }
    const merge = mergeRings(current, incoming);
    for (const tie of merge.ties) {
      this.addConflict(
        'version-tie',
        from,
        `token ${formatAddress(tie.token)} v${tie.version} is claimed by both ${tie.kept} and ${tie.dropped} ` +
          `(rmpeer run twice?); ${tie.kept} wins`,
      );
    }
    if (merge.changed) this.applyRing(merge.ring, from);
  }

  /**
   * A ring we built (seeded) is announced at once. One received from a peer is not passed on: its
   * sender broadcast it to every node, and every adopter repeating it at once made the seeding of 20
   * agents end in 20 identical ring floods; peers that missed it ask for it (ring-request) or get the
   * periodic ring gossip, which starts counting from here.
   */
  private adoptFirstRing(ring: Ring, from?: string): void {
    this.ringState = ring;
    this.attempt = null;
    this.nextAttemptAt = null;
    this.acceptor = { promised: null, accepted: null };
    this.changed();
    if (from === undefined) this.broadcastPending = true;
    else {
      this.lastGossipAt = this.nowMs;
      this.gossipJitter = 0.75 + this.random() / 2;
    }
    this.ensureGateway();
  }

  /**
   * Installs a new version of the ring. For a merge (`from` given), space this node loses is a broken
   * precondition (ring.ts): it is reported, and allocations no longer usable are dropped from the table
   * and listed in the report, so this node never hands them out again.
   */
  private applyRing(ring: Ring, from?: string): void {
    const before = this.ownedSpace()?.owned ?? [];
    this.ringState = ring;
    this.changed();
    this.broadcastPending = true;
    const space = this.ownedSpace() as OwnedSpace;
    if (from !== undefined) {
      const lost = subtractIntervals(before, space.owned);
      const orphaned = this.allocations
        .entries()
        .filter((e) => !isUsable(space.blocks, e.address))
        .map((e) => {
          this.allocations.remove(e.containerId);
          return { containerId: e.containerId, address: formatAddress(e.address) };
        });
      if (lost.length > 0 || orphaned.length > 0) {
        const cidrs = lost.flatMap((i) => intervalToCidrs(i).map(formatCidr)).join(', ');
        this.addConflict(
          'ownership-lost',
          from,
          `ring from ${from} gives ranges this node owned (${cidrs}) to other peers` +
            (orphaned.length > 0
              ? `; ${orphaned.length} allocation(s) there may be duplicated and were dropped: ` +
                orphaned.map((o) => `${o.containerId}=${o.address}`).join(', ')
              : '; no allocations were there'),
          orphaned,
        );
      }
    }
    this.ensureGateway();
    if (this.freeAddresses > 0) this.spaceRequest = null;
  }

  private ownedSpace(): OwnedSpace | null {
    const ring = this.ringState;
    if (ring === null) return null;
    if (this.space?.ring !== ring) {
      const owned = ownedIntervals(ring, this.peer);
      this.space = { ring, owned, blocks: ownedBlocks(owned) };
    }
    return this.space;
  }

  private seedFromListIfMember(): void {
    if (this.ringState !== null || this.seeding.kind !== 'seeds' || !this.seeding.seeds.includes(this.peer)) {
      return;
    }
    this.adoptFirstRing(
      seedRing(this.range, this.seeding.seeds, this.expectedSeedId as string, this.minDonation),
    );
  }

  private maybeRequestRing(): void {
    if (this.nowMs - this.lastRingRequestAt < this.timing.retryMs) return;
    const others = [...this.known].filter((p) => p !== this.peer);
    if (others.length === 0) return;
    this.lastRingRequestAt = this.nowMs;
    const to = others[Math.floor(this.random() * others.length)] as string;
    this.send(to, { type: 'ring-request', v: IPAM_PROTOCOL_VERSION, range: this.clusterRange });
  }

  // ---- allocation and space ----------------------------------------------------------------------------

  private allocated(containerId: string, address: number): AllocateResult {
    return { ok: true, containerId, address: formatAddress(address), gateway: this.gateway as string };
  }

  private ensureGateway(): void {
    const space = this.ownedSpace();
    if (space === null || this.allocations.addressOf(GATEWAY_ID) !== undefined) return;
    const address = this.allocations.firstFree(space.blocks);
    if (address === undefined) return;
    this.allocations.add(GATEWAY_ID, address);
    this.changed();
  }

  /** Writes this node's free counts into its own entries when they drifted by more than a quarter. */
  private reportFreeIfChanged(force: boolean): void {
    const space = this.ownedSpace();
    if (space === null) return;
    const ring = space.ring;
    const updates = new Map<number, number>();
    ring.entries.forEach((entry, i) => {
      if (entry.peer !== this.peer) return;
      const interval = { start: entry.token, end: entryEnd(ring, i) };
      const actual =
        usableWithin(space.blocks, interval) -
        countBetween(this.allocations.addresses, interval.start, interval.end);
      const drift = Math.abs(actual - entry.free);
      if (drift > 0 && (force || drift * 4 > Math.max(actual, entry.free) || actual === 0)) {
        updates.set(entry.token, actual);
      }
    });
    if (updates.size === 0) return;
    this.ringState = reportFree(ring, this.peer, updates);
    this.changed();
    this.broadcastPending = true;
  }

  private maybeRequestSpace(): void {
    const ring = this.ringState;
    if (ring === null || this.freeAddresses > 0) {
      this.spaceRequest = null;
      return;
    }
    if (this.spaceRequest !== null && this.nowMs - this.spaceRequest.sentAt < this.timing.retryMs) return;
    const freeByPeer = new Map<string, number>();
    for (const entry of ring.entries) {
      if (entry.peer === this.peer || !this.known.has(entry.peer)) continue;
      if ((this.deniedUntil.get(entry.peer) ?? Number.NEGATIVE_INFINITY) > this.nowMs) continue;
      freeByPeer.set(entry.peer, (freeByPeer.get(entry.peer) ?? 0) + entry.free);
    }
    // Free counts are advisory and a donor needs an aligned free block, so any peer with free space may
    // be asked: weighting by free asks the likely donors first, and denials are skipped for a while.
    const donors = [...freeByPeer].filter(([, free]) => free > 0).sort(([a], [b]) => (a < b ? -1 : 1));
    if (donors.length === 0) {
      this.spaceRequest = null;
      return;
    }
    let pick = this.random() * donors.reduce((sum, [, free]) => sum + free, 0);
    let to = (donors[donors.length - 1] as [string, number])[0];
    for (const [peer, free] of donors) {
      pick -= free;
      if (pick < 0) {
        to = peer;
        break;
      }
    }
    this.spaceRequest = { to, sentAt: this.nowMs };
    this.send(to, {
      type: 'space-request',
      v: IPAM_PROTOCOL_VERSION,
      range: this.clusterRange,
      seedId: ring.seedId,
    });
  }

  private onSpaceRequest(from: string, seedId: string): void {
    const ring = this.ringState;
    if (ring !== null && seedId !== ring.seedId) {
      this.addConflict(
        'seed-mismatch',
        from,
        `peer ${from} asked for space in a ring seeded as ${seedId}; ignored`,
      );
      return;
    }
    const space = this.ownedSpace();
    const gift =
      space === null ? undefined : chooseDonation(space.owned, this.allocations.addresses, this.minDonation);
    if (ring === null || gift === undefined) {
      this.send(from, { type: 'space-denied', v: IPAM_PROTOCOL_VERSION, range: this.clusterRange, seedId });
      return;
    }
    this.applyRing(grantRange(ring, gift, this.peer, from));
    this.reportFreeIfChanged(true);
    this.send(from, this.ringMessage());
  }

  private onSpaceDenied(from: string): void {
    this.deniedUntil.set(from, this.nowMs + 4 * this.timing.retryMs);
    if (this.spaceRequest?.to !== from) return;
    this.spaceRequest = null;
    this.maybeRequestSpace();
  }

  // ---- Paxos -------------------------------------------------------------------------------------------

  private paxosTick(): void {
    if (this.attempt !== null && this.nowMs - this.attempt.progressAt >= this.timing.retryMs) {
      this.abandonAttempt();
    }
    if (this.attempt !== null) {
      // Peers learned while the prepare phase runs are asked too: more acceptors, fewer failed rounds.
      if (this.attempt.value === null) this.sendPrepares(this.attempt);
      return;
    }
    // Rank only once a quorum is known: a node that saw only itself would rank itself first, and
    // every node would propose at once and duel.
    if (this.known.size < this.quorum) return;
    // The lowest-named peer proposes first; the others hold back, so that a large cluster does not
    // start with hundreds of duelling proposers.
    const rank = [...this.known].sort().indexOf(this.peer);
    const fullView = this.expectedPeers === undefined || this.known.size >= this.expectedPeers;
    if (this.nextAttemptAt === null) {
      // The others also leave the first proposer its grace: under load a round takes seconds, and a
      // second proposer that starts during it duels with the first.
      const grace = this.timing.fullViewGraceMs;
      const backOff = this.timing.retryMs * Math.min(rank, 3) * (1 + this.random());
      this.nextAttemptAt = this.nowMs + (rank === 0 ? (fullView ? 0 : grace) : grace + backOff);
      this.firstAttemptAt = this.nextAttemptAt;
    }
    const firstWaitOver = fullView && rank === 0 && this.nextAttemptAt === this.firstAttemptAt;
    if (this.nowMs < this.nextAttemptAt && !firstWaitOver) return;
    // A proposer with a lower name is at work: let it finish rather than duel with it.
    if (this.nowMs - this.lastPreferredPaxosAt < PREFERRED_PROPOSER_YIELD_RETRIES * this.timing.retryMs)
      return;
    this.lastRound = Math.max(this.lastRound, this.highestRoundSeen, this.acceptor.promised?.round ?? 0) + 1;
    this.changed();
    const proposal = { round: this.lastRound, proposer: this.peer };
    this.attempt = new ProposalAttempt(proposal, this.nowMs);
    this.sendPrepares(this.attempt);
    this.onAcceptorInput(this.peer, onPrepare(this.acceptor, proposal));
  }

  private sendPrepares(attempt: ProposalAttempt): void {
    for (const peer of this.known) {
      if (peer === this.peer || attempt.asked.has(peer)) continue;
      attempt.asked.add(peer);
      this.attemptMessagesQueued = true;
      this.send(peer, {
        type: 'paxos-prepare',
        v: IPAM_PROTOCOL_VERSION,
        range: this.clusterRange,
        proposal: attempt.proposal,
      });
    }
  }

  /** Gives up the current attempt; the next one waits a jittered retry interval, or a tenth of it. */
  private abandonAttempt(soon = false): void {
    this.attempt = null;
    this.nextAttemptAt = this.nowMs + (this.timing.retryMs / (soon ? 10 : 1)) * (1 + this.random());
  }

  private noticeProposer(proposer: string): void {
    if (proposer >= this.peer) return;
    this.lastPreferredPaxosAt = this.nowMs;
    this.attempt = null;
  }

  /** `proposer` holds a promise above our attempt: yield to a lower name, outbid a higher one soon. */
  private outbid(proposer: string): void {
    if (proposer < this.peer) {
      this.lastPreferredPaxosAt = this.nowMs;
      this.abandonAttempt();
    } else {
      this.abandonAttempt(true);
    }
  }

  private isCurrentAttempt(proposal: Proposal): boolean {
    return this.attempt !== null && compareProposals(this.attempt.proposal, proposal) === 0;
  }

  /** This node as an acceptor: a peer with a ring answers with the ring instead of voting. */
  private onAcceptorInput(from: string, step: { state: AcceptorState; reply: AcceptorReply }): void {
    if (this.ringState !== null) {
      if (from !== this.peer) this.send(from, this.ringMessage());
      return;
    }
    if (this.seeding.kind !== 'consensus') return;
    if (step.state !== this.acceptor) {
      this.acceptor = step.state;
      this.changed();
      if (
        from !== this.peer &&
        this.attempt !== null &&
        compareProposals(step.state.promised as Proposal, this.attempt.proposal) > 0
      ) {
        this.outbid(from);
      }
    }
    if (from !== this.peer) {
      this.send(from, { ...step.reply, v: IPAM_PROTOCOL_VERSION, range: this.clusterRange });
      return;
    }
    if (step.reply.type === 'paxos-promise') this.onPromise(this.peer, step.reply.accepted);
    else if (step.reply.type === 'paxos-accepted') this.onAccepted(this.peer);
  }

  private onPromise(from: string, accepted: AcceptedValue | null): void {
    const attempt = this.attempt as ProposalAttempt;
    // Replies trickling in under load are progress: only an attempt nobody answers times out.
    attempt.progressAt = this.nowMs;
    const value = attempt.addPromise(from, accepted, this.quorum, () =>
      [...new Set([...this.known, ...attempt.promises.keys()])].sort(),
    );
    if (value === undefined) return;
    // Every known peer is asked to accept, not only the promisers (any acceptor may take part in phase
    // 2): replies lost or late under load are made up by others, and the peers that were not asked used to
    // stop hearing from this proposer and, after their wait, started duelling rounds of their own.
    for (const peer of new Set([...attempt.promises.keys(), ...this.known])) {
      if (peer === this.peer) continue;
      this.attemptMessagesQueued = true;
      this.send(peer, {
        type: 'paxos-accept',
        v: IPAM_PROTOCOL_VERSION,
        range: this.clusterRange,
        proposal: attempt.proposal,
        value,
      });
    }
    this.onAcceptorInput(this.peer, onAccept(this.acceptor, attempt.proposal, value));
  }

  private onAccepted(from: string): void {
    if (this.attempt !== null) this.attempt.progressAt = this.nowMs;
    const decided = this.attempt?.addAccept(from, this.quorum);
    if (decided === undefined || this.ringState !== null) return;
    const seedId = seedIdFor('consensus', this.clusterRange, decided);
    this.adoptFirstRing(seedRing(this.range, decided, seedId, this.minDonation));
  }

  // ---- helpers -----------------------------------------------------------------------------------------

  private send(to: string, message: IpamMessage): void {
    this.outbox.push({ to, message });
  }

  private changed(): void {
    this.revisionCounter++;
  }

  private addConflict(
    kind: IpamConflictKind,
    from: string,
    message: string,
    orphaned: IpamConflict['orphaned'] = [],
  ): void {
    if (
      orphaned.length === 0 &&
      this.conflictList.some((c) => c.kind === kind && c.from === from && c.message === message)
    ) {
      return;
    }
    this.conflictList = [...this.conflictList, { kind, from, message, atMs: this.nowMs, orphaned }].slice(
      -MAX_CONFLICTS,
    );
    this.changed();
  }
}

import { type Interval, parseAddress, parseCidr } from '../../src/ipam/address.js';
import {
  BROADCAST,
  decodeRing,
  encodeRing,
  IPAM_PROTOCOL_VERSION,
  type IpamMessage,
  parseIpamMessage,
} from '../../src/ipam/messages.js';
import { GATEWAY_ID, type IpamConfig, IpamNode, type IpamTiming } from '../../src/ipam/node.js';
import { mergeRings, ownedIntervals, type Ring, ringsEqual } from '../../src/ipam/ring.js';
import type { SeedingMode } from '../../src/ipam/seeding.js';
import { type IpamSnapshot, parseSnapshot } from '../../src/ipam/snapshot.js';
import { chooseDonation, isUsable, ownedBlocks } from '../../src/ipam/space.js';

/**
 * An in-process network of IpamNodes driven in rounds: each round advances the clock, ticks every running
 * node and delivers the messages due. Faults: loss, duplication, delay (reordering), partitions, crashes
 * and restarts from the persisted snapshot (serialised to JSON and parsed back), joins, rmpeer of dead
 * peers, and a removed peer returning with its old state. checkInvariants() asserts the safety
 * properties of src/ipam/ring.ts and throws SimInvariantError with a description.
 */

export class SimInvariantError extends Error {
  override readonly name = 'SimInvariantError';
}

export interface SimOptions {
  readonly seed: number;
  readonly initialPeers: number;
  readonly clusterRange: string;
  readonly seeding: 'consensus' | 'seeds';
  /** Seeds mode: how many of the initial peers are in the seed list (default all). */
  readonly seedCount?: number;
  readonly roundMs?: number;
  readonly timing?: Partial<IpamTiming>;
  readonly minDonation?: number;
  /** Peers a broadcast reaches directly (receivers that learn something re-gossip); default all. */
  readonly broadcastFanout?: number;
  /** Serialise every message to JSON and validate it with parseIpamMessage on delivery (default true). */
  readonly wireJson?: boolean;
  /** Check invariants after every delivery and action (default true) rather than once per round. */
  readonly checkEveryStep?: boolean;
}

interface SimPeer {
  readonly name: string;
  readonly config: IpamConfig;
  node: IpamNode | null;
  /** The last persisted state; serialised to JSON and parsed back whenever it is read. */
  saved: IpamSnapshot;
  savedRevision: number;
  /** `saved`, decoded (lazily). */
  savedView: { ring: Ring | null; allocations: Array<{ containerId: string; address: number }> } | null;
  /** rmpeer'd while dead: its pods are gone and it must not act on its old state (precondition P1). */
  removed: boolean;
  /** Who took its ranges, for a return with old state. */
  takenBy: string | null;
  /** Conflicts are expected on a peer that came back after rmpeer. */
  cameBackAfterRemoval: boolean;
  readonly containers: Set<string>;
  group: number;
  knownKey: string;
  /** Bumped on every crash and restart, so that (incarnation, revision) names one state. */
  incarnation: number;
  checked: {
    key: string;
    owned: Interval[];
    allocations: Array<{ containerId: string; address: number }>;
  } | null;
}

interface InFlight {
  readonly from: string;
  readonly to: string;
  readonly payload: string | IpamMessage;
  readonly deliverAt: number;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class IpamSim {
  readonly peers = new Map<string, SimPeer>();
  readonly stats = {
    messages: 0,
    bytes: 0,
    rounds: 0,
    byType: new Map<string, number>(),
    /** Actions that took effect, by name, to show what the schedules exercised. */
    events: new Map<string, number>(),
  };
  round = 0;
  lossRate = 0;
  duplicateRate = 0;
  maxDelayRounds = 0;
  private readonly random: () => number;
  private readonly roundMs: number;
  private readonly wireJson: boolean;
  private readonly checkEveryStep: boolean;
  private readonly seedList: string[];
  private readonly range: Interval;
  private inFlight: InFlight[] = [];
  /** Like mesh's GossipData, a sender's pending ring broadcasts coalesce: only the latest goes out. */
  private readonly pendingBroadcasts = new Map<string, IpamMessage>();
  private containerCounter = 0;
  /** Some state changed since the last invariant check (checks of unchanged state are skipped). */
  private dirty = true;
  private joinCounter = 0;

  constructor(readonly options: SimOptions) {
    this.random = mulberry32(options.seed);
    this.roundMs = options.roundMs ?? 1000;
    this.wireJson = options.wireJson ?? true;
    this.checkEveryStep = options.checkEveryStep ?? true;
    const cidr = parseCidr(options.clusterRange);
    this.range = { start: cidr.start, end: cidr.start + 2 ** (32 - cidr.prefix) };
    const width = String(options.initialPeers).length;
    const names = Array.from(
      { length: options.initialPeers },
      (_, i) => `p${String(i).padStart(width, '0')}`,
    );
    this.seedList = names.slice(0, Math.max(1, options.seedCount ?? names.length));
    for (const name of names) {
      const seeding: SeedingMode =
        options.seeding === 'consensus'
          ? { kind: 'consensus', expectedPeers: options.initialPeers }
          : { kind: 'seeds', seeds: this.seedList };
      this.addPeer(name, seeding, 0);
    }
    this.updateTopology();
  }

  // ---- views -------------------------------------------------------------------------------------------

  running(): SimPeer[] {
    return [...this.peers.values()].filter((p) => p.node !== null);
  }

  crashed(): SimPeer[] {
    return [...this.peers.values()].filter((p) => p.node === null && !p.removed);
  }

  removedAndAway(): SimPeer[] {
    return [...this.peers.values()].filter((p) => p.node === null && p.removed);
  }

  node(name: string): IpamNode {
    const node = this.peers.get(name)?.node;
    if (node === undefined || node === null) throw new Error(`peer ${name} is not running`);
    return node;
  }

  pick<T>(items: readonly T[], index: number): T | undefined {
    return items.length === 0 ? undefined : items[Math.abs(index) % items.length];
  }

  // ---- actions -----------------------------------------------------------------------------------------

  step(): void {
    this.round++;
    this.stats.rounds++;
    this.updateTopology();
    const now = this.round * this.roundMs;
    for (const peer of this.shuffled(this.running())) {
      peer.node?.tick(now);
      this.commit(peer);
    }
    const due = this.inFlight.filter((m) => m.deliverAt <= this.round);
    this.inFlight = this.inFlight.filter((m) => m.deliverAt > this.round);
    for (const message of this.shuffled(due)) {
      this.deliver(message);
      if (this.checkEveryStep) this.checkInvariants();
    }
    if (!this.checkEveryStep) this.checkInvariants();
    this.flushBroadcasts();
  }

  private flushBroadcasts(): void {
    for (const [name, message] of this.pendingBroadcasts) {
      const peer = this.peers.get(name) as SimPeer;
      if (peer.node === null) continue;
      for (const target of this.broadcastTargets(peer)) this.send(name, target, message);
    }
    this.pendingBroadcasts.clear();
  }

  private count(event: string): void {
    this.stats.events.set(event, (this.stats.events.get(event) ?? 0) + 1);
  }

  rounds(n: number): void {
    for (let i = 0; i < n; i++) this.step();
  }

  /** Allocates `n` new containers on a running peer; checks that asking again returns the same address. */
  allocate(peerIndex: number, n: number): number {
    const peer = this.pick(this.running(), peerIndex);
    if (peer?.node == null) return 0;
    let made = 0;
    for (let i = 0; i < n; i++) {
      const id = `c${++this.containerCounter}`;
      const result = peer.node.allocate(id);
      this.commit(peer);
      this.count(result.ok ? 'allocated' : `allocate:${result.reason}`);
      if (!result.ok) break;
      peer.containers.add(id);
      made++;
      const again = peer.node.allocate(id);
      if (!again.ok || again.address !== result.address) {
        throw new SimInvariantError(`allocate(${id}) on ${peer.name} is not idempotent`);
      }
      if (this.checkEveryStep) this.checkInvariants();
    }
    return made;
  }

  release(peerIndex: number, pickIndex: number): void {
    const peer = this.pick(
      this.running().filter((p) => p.containers.size > 0),
      peerIndex,
    );
    if (peer?.node == null) return;
    const id = this.pick([...peer.containers], pickIndex);
    if (id === undefined) return;
    if (peer.node.release(id) === undefined)
      throw new SimInvariantError(`release(${id}) on ${peer.name} found nothing`);
    peer.containers.delete(id);
    this.commit(peer);
    this.count('released');
    this.checkInvariants();
  }

  /** Some pods vanish without a CNI DEL; GC with the list of the remaining ones must release exactly those. */
  gc(peerIndex: number, dropMask: number): void {
    const peer = this.pick(this.running(), peerIndex);
    if (peer?.node == null) return;
    const gone = [...peer.containers].filter((_, i) => ((dropMask >>> (i % 31)) & 1) === 1);
    for (const id of gone) peer.containers.delete(id);
    const released = peer.node.gc(peer.containers).map((r) => r.containerId);
    this.commit(peer);
    if (released.sort().join() !== gone.sort().join()) {
      throw new SimInvariantError(`gc on ${peer.name} released [${released}] instead of [${gone}]`);
    }
    if (released.length > 0) this.count('gc-released');
    this.checkInvariants();
  }

  crash(peerIndex: number): void {
    const peer = this.pick(this.running(), peerIndex);
    if (peer === undefined) return;
    peer.node = null;
    peer.incarnation++;
    this.dirty = true;
    this.pendingBroadcasts.delete(peer.name);
    this.count('crash');
    this.updateTopology();
  }

  restart(peerIndex: number): void {
    const peer = this.pick(this.crashed(), peerIndex);
    if (peer === undefined) return;
    this.restore(peer);
    this.commit(peer);
    this.count('restart');
    this.checkInvariants();
  }

  partition(groups: number, mask: number): void {
    const all = [...this.peers.values()];
    all.forEach((peer, i) => {
      peer.group = Math.floor(mulberry32(mask + i)() * groups);
    });
    this.updateTopology();
  }

  heal(): void {
    for (const peer of this.peers.values()) peer.group = 0;
    this.updateTopology();
  }

  faults(lossRate: number, duplicateRate: number, maxDelayRounds: number): void {
    this.lossRate = lossRate;
    this.duplicateRate = duplicateRate;
    this.maxDelayRounds = maxDelayRounds;
  }

  /** A new peer: an observer in consensus mode (it must not vote, ring.ts P1), a non-seed in seeds mode. */
  join(groupIndex: number): string {
    const name = `j${++this.joinCounter}`;
    const seeding: SeedingMode =
      this.options.seeding === 'consensus' ? { kind: 'observer' } : { kind: 'seeds', seeds: this.seedList };
    const groups = [...new Set([...this.peers.values()].map((p) => p.group))];
    const peer = this.addPeer(name, seeding, this.pick(groups, groupIndex) ?? 0);
    this.count('join');
    this.updateTopology();
    this.commit(peer);
    return name;
  }

  /**
   * rmpeer of a crashed peer, run once, by a running peer whose ring already holds every write of the
   * dead peer (precondition P1); if no caller qualifies the operator would wait, and so does the sim.
   */
  rmpeer(deadIndex: number, callerIndex: number): boolean {
    const dead = this.pick(this.crashed(), deadIndex);
    if (dead === undefined) return false;
    const deadRing = this.savedRing(dead);
    const callers = this.running().filter((p) => {
      const ring = p.node?.ring ?? null;
      if (deadRing === null) return ring !== null;
      return ring !== null && ring.seedId === deadRing.seedId && !mergeRings(ring, deadRing).changed;
    });
    const caller = this.pick(callers, callerIndex);
    if (caller?.node == null) return false;
    const result = caller.node.rmpeer(dead.name);
    if (!result.ok)
      throw new SimInvariantError(`rmpeer(${dead.name}) at ${caller.name} failed: ${result.message}`);
    dead.removed = true;
    this.dirty = true;
    this.count(result.addresses > 0 ? 'rmpeer-took-space' : 'rmpeer-took-nothing');
    dead.takenBy = caller.name;
    dead.containers.clear();
    this.commit(caller);
    this.checkInvariants();
    return true;
  }

  /**
   * A removed peer comes back with its old state. P1: before acting it merges a ring that records the
   * removal (the agent's external claim check); it must then own nothing it lost, and report the loss.
   */
  returnRemoved(peerIndex: number): void {
    const peer = this.pick(this.removedAndAway(), peerIndex);
    if (peer === undefined || peer.takenBy === null) return;
    const taker = this.peers.get(peer.takenBy) as SimPeer;
    const takerRing = taker.node?.ring ?? this.savedRing(taker);
    this.restore(peer);
    const node = peer.node as IpamNode;
    const hadAllocations = node.allocationCount > 0;
    if (takerRing !== null) {
      node.receive(taker.name, {
        type: 'ring',
        v: IPAM_PROTOCOL_VERSION,
        range: node.clusterRange,
        ring: JSON.parse(JSON.stringify(encodeRing(takerRing))),
      });
    }
    peer.removed = false;
    peer.takenBy = null;
    peer.cameBackAfterRemoval = true;
    this.count(hadAllocations ? 'returned-with-allocations' : 'returned-without-allocations');
    if (hadAllocations && !node.conflicts.some((c) => c.kind === 'ownership-lost' && c.from === taker.name)) {
      throw new SimInvariantError(
        `${peer.name} came back after rmpeer with allocations but reported no conflict`,
      );
    }
    if (node.allocationCount > 0 && node.ownedIntervals().length === 0) {
      throw new SimInvariantError(`${peer.name} kept allocations in ranges it lost`);
    }
    this.updateTopology();
    this.commit(peer);
    this.checkInvariants();
  }

  /**
   * The end of a schedule: heal, stop faults, restart crashed peers, then run until every running view
   * is the same ring and every running peer owns space (unless no peer can give any). Returns the number
   * of rounds that took, or throws after `maxRounds`.
   */
  settle(maxRounds: number): number {
    this.heal();
    this.faults(0, 0, 0);
    for (const peer of this.crashed()) {
      this.restore(peer);
      this.commit(peer);
    }
    this.checkInvariants();
    for (let rounds = 1; rounds <= maxRounds; rounds++) {
      this.step();
      if (this.isSettled()) return rounds;
    }
    throw new SimInvariantError(
      `no convergence within ${maxRounds} rounds after heal: ${this.describeViews()}`,
    );
  }

  isSettled(): boolean {
    const views = this.running().map((p) => p.node?.ring ?? null);
    const first = views[0];
    if (first === null || first === undefined) return false;
    if (!views.every((ring) => ring !== null && ringsEqual(ring, first))) return false;
    const starving = this.running().filter((p) => (p.node as IpamNode).freeAddresses === 0);
    return starving.length === 0 || !this.running().some((p) => this.canDonate(p));
  }

  // ---- invariants --------------------------------------------------------------------------------------

  /** S1, S2 and bookkeeping checks over every live view and every crashed peer's saved state. */
  checkInvariants(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const beliefs: Array<{ start: number; end: number; peer: string }> = [];
    const holders = new Map<number, string>();
    const seedIds = new Set<string>();
    for (const peer of this.peers.values()) {
      if (peer.removed) continue;
      const ring = peer.node !== null ? peer.node.ring : this.savedRing(peer);
      if (ring === null) continue;
      seedIds.add(ring.seedId);
      const { owned, allocations } = this.checkPeer(peer, ring);
      for (const interval of owned) beliefs.push({ ...interval, peer: peer.name });
      for (const { containerId, address } of allocations) {
        const other = holders.get(address);
        if (other !== undefined) {
          throw new SimInvariantError(
            `S2: ${address} allocated to ${other} and to ${peer.name}/${containerId}`,
          );
        }
        holders.set(address, `${peer.name}/${containerId}`);
      }
    }
    if (seedIds.size > 1)
      throw new SimInvariantError(`R4: rings with different seeds: ${[...seedIds].join(', ')}`);
    beliefs.sort((a, b) => a.start - b.start);
    for (let i = 1; i < beliefs.length; i++) {
      const previous = beliefs[i - 1] as (typeof beliefs)[number];
      const current = beliefs[i] as (typeof beliefs)[number];
      if (current.start < previous.end) {
        throw new SimInvariantError(
          `S1: ${previous.peer} and ${current.peer} both believe they own address ${current.start} ` +
            `(${previous.start}-${previous.end} vs ${current.start}-${current.end})`,
        );
      }
    }
  }

  /** Per-peer checks, cached per state: allocations usable, pods = allocations, no unexpected conflict. */
  private checkPeer(peer: SimPeer, ring: Ring): NonNullable<SimPeer['checked']> {
    const key = `${peer.incarnation}:${peer.node?.revision ?? 'saved'}`;
    if (peer.checked?.key === key) return peer.checked;
    const owned = ownedIntervals(ring, peer.name);
    const blocks = ownedBlocks(owned);
    const allocations =
      peer.node !== null ? peer.node.allocationEntries() : this.savedState(peer).allocations;
    for (const { containerId, address } of allocations) {
      if (!isUsable(blocks, address)) {
        throw new SimInvariantError(
          `${peer.name} holds ${address} for ${containerId} outside its usable space`,
        );
      }
    }
    if (peer.node !== null) {
      const ids = allocations.map((a) => a.containerId).filter((id) => id !== GATEWAY_ID);
      if (ids.sort().join() !== [...peer.containers].sort().join()) {
        throw new SimInvariantError(
          `${peer.name} allocations [${ids}] differ from its pods [${[...peer.containers]}]`,
        );
      }
      const unexpected = peer.node.conflicts.filter(
        (c) => !peer.cameBackAfterRemoval || c.kind !== 'ownership-lost',
      );
      if (unexpected.length > 0) {
        throw new SimInvariantError(`${peer.name} reported a conflict: ${unexpected[0]?.message}`);
      }
    }
    peer.checked = { key, owned, allocations };
    return peer.checked;
  }

  describeViews(): string {
    return this.running()
      .map((p) => {
        const node = p.node as IpamNode;
        const ring = node.ring;
        return `${p.name}: ${ring === null ? JSON.stringify(node.seedingState) : `${ring.entries.length} entries`} free ${node.freeAddresses}`;
      })
      .join('; ');
  }

  // ---- internals ---------------------------------------------------------------------------------------

  private addPeer(name: string, seeding: SeedingMode, group: number): SimPeer {
    const config: IpamConfig = {
      peer: name,
      clusterRange: this.options.clusterRange,
      seeding,
      timing: { retryMs: 4_000, gossipMs: 10_000, ...this.options.timing },
      minDonation: this.options.minDonation ?? 8,
      random: mulberry32(Math.floor(this.random() * 2 ** 32)),
    };
    const node = IpamNode.create(config);
    const peer: SimPeer = {
      name,
      config,
      node,
      saved: node.snapshot(),
      savedRevision: node.revision,
      savedView: null,
      removed: false,
      takenBy: null,
      cameBackAfterRemoval: false,
      containers: new Set(),
      group,
      knownKey: '',
      incarnation: 0,
      checked: null,
    };
    this.peers.set(name, peer);
    return peer;
  }

  private restore(peer: SimPeer): void {
    const snapshot = parseSnapshot(JSON.parse(JSON.stringify(peer.saved)), `saved state of ${peer.name}`);
    peer.node = IpamNode.restore(
      { ...peer.config, random: mulberry32(Math.floor(this.random() * 2 ** 32)) },
      snapshot,
    );
    peer.savedRevision = peer.node.revision;
    peer.incarnation++;
    this.dirty = true;
    peer.knownKey = '';
    this.updateTopology();
  }

  private savedState(peer: SimPeer): NonNullable<SimPeer['savedView']> {
    if (peer.savedView === null) {
      const snapshot = parseSnapshot(JSON.parse(JSON.stringify(peer.saved)), `saved state of ${peer.name}`);
      peer.savedView = {
        ring: snapshot.ring === null ? null : decodeRing(snapshot.ring, this.range),
        allocations: snapshot.allocations.map((a) => ({
          containerId: a.containerId,
          address: parseAddress(a.address),
        })),
      };
    }
    return peer.savedView;
  }

  private savedRing(peer: SimPeer): Ring | null {
    return this.savedState(peer).ring;
  }

  private canDonate(peer: SimPeer): boolean {
    const node = peer.node as IpamNode;
    const allocated = node.allocationEntries().map((a) => a.address);
    return chooseDonation(node.ownedIntervals(), allocated, peer.config.minDonation ?? 8) !== undefined;
  }

  /** Persist before send (R3): save the snapshot if it changed, then put the outbox on the network. */
  private commit(peer: SimPeer): void {
    const node = peer.node;
    if (node === null) return;
    if (node.revision !== peer.savedRevision) {
      this.dirty = true;
      peer.saved = node.snapshot();
      peer.savedRevision = node.revision;
      peer.savedView = null;
    }
    for (const { to, message } of node.drainOutbox()) {
      if (to === BROADCAST) this.pendingBroadcasts.set(peer.name, message);
      else this.send(peer.name, to, message);
    }
  }

  private broadcastTargets(from: SimPeer): string[] {
    const reachable = this.running()
      .filter((p) => p !== from && p.group === from.group)
      .map((p) => p.name);
    const fanout = this.options.broadcastFanout;
    if (fanout === undefined || reachable.length <= fanout) return reachable;
    return this.shuffled(reachable).slice(0, fanout);
  }

  private send(from: string, to: string, message: IpamMessage): void {
    if (this.random() < this.lossRate) return;
    const copies = this.random() < this.duplicateRate ? 2 : 1;
    const payload = this.wireJson ? JSON.stringify(message) : message;
    for (let i = 0; i < copies; i++) {
      const delay = 1 + Math.floor(this.random() * (this.maxDelayRounds + 1));
      this.inFlight.push({ from, to, payload, deliverAt: this.round + delay });
    }
  }

  private deliver(message: InFlight): void {
    const sender = this.peers.get(message.from);
    const receiver = this.peers.get(message.to);
    if (sender === undefined || receiver?.node == null || sender.group !== receiver.group) return;
    let decoded: IpamMessage;
    if (typeof message.payload === 'string') {
      const parsed = parseIpamMessage(JSON.parse(message.payload));
      if (!parsed.ok)
        throw new SimInvariantError(`a node sent a message that fails its schema: ${parsed.error}`);
      decoded = parsed.message;
    } else {
      decoded = message.payload;
    }
    this.stats.messages++;
    if (typeof message.payload === 'string') this.stats.bytes += message.payload.length;
    this.stats.byType.set(decoded.type, (this.stats.byType.get(decoded.type) ?? 0) + 1);
    receiver.node.receive(message.from, decoded);
    this.commit(receiver);
  }

  private updateTopology(): void {
    const groups = new Map<number, string[]>();
    for (const peer of this.running()) {
      const names = groups.get(peer.group) ?? [];
      names.push(peer.name);
      groups.set(peer.group, names);
    }
    const keys = new Map([...groups].map(([group, names]) => [group, names.join(',')]));
    for (const peer of this.running()) {
      const key = keys.get(peer.group) as string;
      if (key === peer.knownKey) continue;
      peer.knownKey = key;
      peer.node?.setKnownPeers(groups.get(peer.group) as string[]);
    }
  }

  private shuffled<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }
}

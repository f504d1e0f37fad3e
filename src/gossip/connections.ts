import type { Logger } from 'pino';
import { type BackoffPolicy, backoffDelayMs } from './backoff.js';

/** Every connection state, in the order status views list them: established first, then trouble. */
export const CONNECTION_STATES = ['established', 'connecting', 'retrying', 'failed'] as const;
export type ConnectionState = (typeof CONNECTION_STATES)[number];

/** One dial target as `agent status connections` shows it. */
export interface TargetView {
  address: string;
  sources: string[];
  state: ConnectionState;
  peerId: string | undefined;
  attempts: number;
  lastError: string | undefined;
  nextRetryAtMs: number | undefined;
}

export interface Dialer {
  /**
   * Opens (or reuses) a connection to `address` and resolves with the remote peer ID. With
   * `expectedPeerId` the handshake must prove that identity.
   */
  dial(address: string, expectedPeerId: string | undefined, signal: AbortSignal): Promise<string>;
}

export interface ConnectionMakerOptions {
  selfPeerId: string;
  /**
   * Our own gossip address, in the form peer sources and records use: seeds are dialed in ring order
   * of addresses after it, and learned peers are chosen on the same ring, so that a node's first seeds
   * are the very peers the learned-peer rule keeps.
   */
  selfAddress: string;
  dialer: Dialer;
  backoff: BackoffPolicy;
  dialTimeoutMs: number;
  /**
   * Connections wanted among learned peers: a full mesh while there are at most this many other nodes,
   * otherwise a ring lattice where each node dials its ceil(degree/2) successors by address.
   */
  targetDegree: number;
  /** Below this many connected peers, any learned peer is dialed once it had its grace period to dial us. */
  minConnectedPeers: number;
  /** How long a learned peer that should dial us gets before we dial it ourselves (when short of connections). */
  tieBreakGraceMs: number;
  /** A connection that lived this long is redialed at once after it drops instead of backing off. */
  stableConnectionMs: number;
  logger: Logger;
  now?: () => number;
  random?: () => number;
}

export const LEARNED_SOURCE = 'topology';
const SEED_RETRIES_HOLDING_BUDGET = 2;

interface Target {
  address: string;
  sources: Set<string>;
  peerId: string | undefined;
  /** Identity the address must prove; only for targets known from topology records. */
  learnedPeerId: string | undefined;
  learnedAtMs: number;
  addedAtMs: number;
  state: ConnectionState | 'idle';
  attempts: number;
  lastError: string | undefined;
  nextRetryAtMs: number | undefined;
  establishedAtMs: number | undefined;
  timer: NodeJS.Timeout | undefined;
  dialAbort: AbortController | undefined;
}

/**
 * Keeps the node connected to its targets, like Weave's ConnectionMaker. Among peers learned from
 * topology records exactly one side of each chosen pair dials (see `chooseLearnedPeersToDial`), so pairs
 * hold one connection and the degree stays bounded as the cluster grows; a node short of connections
 * also dials the others after a grace period. Configured addresses (from peer sources) are seeds: one
 * whose node is known from a record follows the learned-peer rule like any other (it is kept, never
 * dropped); the others are dialed while the node has fewer than half `targetDegree` connections
 * (the other half come inbound), or one at a time once a seed stays unknown for `tieBreakGraceMs`, and
 * retried for good. Dialing every configured address (in Kubernetes, every node) made a full mesh
 * dialed from both ends, whose handshakes saturated the CPU of a 20-node boot.
 * Failed dials retry with capped, jittered exponential backoff. Dialing our own address is `failed`
 * for good. Connections themselves are libp2p's: the node reports them via `peerConnected` /
 * `peerDisconnected`, whichever side dialed.
 */
export class ConnectionMaker {
  private readonly targets = new Map<string, Target>();
  private readonly connectedPeers = new Set<string>();
  private learnedAddresses = new Set<string>();
  private readonly now: () => number;
  private readonly random: () => number;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: ConnectionMakerOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** Replaces the addresses a discovery source wants connected. */
  setSourceAddresses(source: string, addresses: readonly string[]): void {
    const wanted = new Set(addresses);
    for (const address of wanted) this.targetFor(address).sources.add(source);
    for (const target of this.targets.values()) {
      if (!wanted.has(target.address)) target.sources.delete(source);
    }
    this.reconcile();
  }

  /** Replaces the peers known from topology records (peer ID + gossip address). */
  setLearnedPeers(peers: readonly { peerId: string; address: string }[]): void {
    const wanted = new Map(peers.map((peer) => [peer.address, peer.peerId]));
    this.learnedAddresses = new Set(wanted.keys());
    for (const [address, peerId] of wanted) {
      const target = this.targetFor(address);
      if (target.learnedPeerId !== peerId) {
        target.learnedPeerId = peerId;
        target.learnedAtMs = this.now();
      }
      target.peerId ??= peerId;
      target.sources.add(LEARNED_SOURCE);
    }
    for (const target of this.targets.values()) {
      if (!wanted.has(target.address)) {
        target.sources.delete(LEARNED_SOURCE);
        target.learnedPeerId = undefined;
      }
    }
    this.reconcile();
  }

  peerConnected(peerId: string): void {
    this.connectedPeers.add(peerId);
    this.reconcile();
  }

  peerDisconnected(peerId: string): void {
    this.connectedPeers.delete(peerId);
    this.reconcile();
  }

  views(): TargetView[] {
    return [...this.targets.values()]
      .filter((target) => target.state !== 'idle')
      .map((target) => ({
        address: target.address,
        sources: [...target.sources].sort(),
        state: target.state as ConnectionState,
        peerId: target.peerId,
        attempts: target.attempts,
        lastError: target.lastError,
        nextRetryAtMs: target.nextRetryAtMs,
      }))
      .sort((a, b) => a.address.localeCompare(b.address));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconcileTimer);
    for (const target of this.targets.values()) this.cancel(target);
    this.targets.clear();
  }

  private targetFor(address: string): Target {
    let target = this.targets.get(address);
    if (target === undefined) {
      target = {
        address,
        sources: new Set(),
        peerId: undefined,
        learnedPeerId: undefined,
        learnedAtMs: 0,
        addedAtMs: this.now(),
        state: 'idle',
        attempts: 0,
        lastError: undefined,
        nextRetryAtMs: undefined,
        establishedAtMs: undefined,
        timer: undefined,
        dialAbort: undefined,
      };
      this.targets.set(address, target);
    }
    return target;
  }

  private reconcile(): void {
    if (this.stopped) return;
    clearTimeout(this.reconcileTimer);
    this.reconcileTimer = undefined;
    let nextGraceExpiry = Number.POSITIVE_INFINITY;
    const undecided: Target[] = [];
    // The lattice spans configured addresses too, not only the nodes learned so far: a booting node
    // that knew few peers yet dialed them all (a full mesh while it knows at most `targetDegree`), and
    // kept those connections once the cluster turned out larger.
    const configured = [...this.targets.values()].filter(isConfigured).map((target) => target.address);
    const lattice = chooseLearnedPeersToDial(
      this.options.selfAddress,
      [...this.learnedAddresses, ...configured],
      this.options.targetDegree,
    );

    for (const target of [...this.targets.values()]) {
      if (target.state === 'failed') {
        if (target.sources.size === 0) this.remove(target);
      } else if (target.peerId !== undefined && this.connectedPeers.has(target.peerId)) {
        this.markEstablished(target);
      } else {
        if (target.state === 'established') this.connectionLost(target);
        undecided.push(target);
      }
    }

    // Dials already under way keep their share of the fallback budget before idle targets claim it.
    const underWay = (target: Target) => target.state === 'connecting' || target.state === 'retrying';
    const self = this.options.selfAddress;
    undecided.sort(
      (a, b) => Number(underWay(b)) - Number(underWay(a)) || compareAlongRing(self, a.address, b.address),
    );
    let fallbackBudget = Math.max(0, this.options.minConnectedPeers - this.connectedPeers.size);
    const decisions = undecided.map((target) => ({ target, decision: this.classify(target, lattice) }));
    // Seeds fill half the target degree: the other half arrives inbound, as everyone else dials its seeds
    // too. Dialing seeds up to the full degree (and one at a time beyond it) while records were still
    // on their way gave a booting 20-node cluster a full mesh, 190 handshakes on busy CPUs. A seed
    // still unknown after the grace period is dialed anyway, one at a time: it may be in another island.
    const seedGraceEndsAt = (target: Target) => target.addedAtMs + this.options.tieBreakGraceMs;
    const overdueSeed = decisions.some(
      ({ target, decision }) =>
        decision === 'seed' && !underWay(target) && this.now() >= seedGraceEndsAt(target),
    );
    let seedBudget =
      Math.max(overdueSeed ? 1 : 0, Math.ceil(this.options.targetDegree / 2) - this.connectedPeers.size) -
      decisions.filter(({ target, decision }) => decision === 'seed' && target.state === 'connecting').length;
    for (const { target, decision } of decisions) {
      if (decision === 'seed') {
        if (target.state === 'connecting') continue;
        // A seed waiting to retry after a refusal or two (its node is still booting) holds its share of
        // the budget, and beyond the budget it rests: left to retry, every refused seed of a booting
        // cluster was dialed again later, and nodes ended with 9 seed connections instead of 4. One
        // that failed more often may be down: it retries on the side and leaves the budget to others.
        if (target.state === 'retrying' && target.attempts > SEED_RETRIES_HOLDING_BUDGET) continue;
        if (seedBudget <= 0) {
          // (A dial just scheduled, attempts 0, stays: its budget may be an inbound connection counted
          // twice while that dial completes.)
          if (target.state === 'retrying' && target.attempts > 0) this.rest(target);
          if (this.now() < seedGraceEndsAt(target))
            nextGraceExpiry = Math.min(nextGraceExpiry, seedGraceEndsAt(target));
          continue;
        }
        seedBudget -= 1;
        if (target.state === 'retrying') continue;
      }
      if (decision === 'fallback') {
        if (fallbackBudget > 0) fallbackBudget -= 1;
        else {
          this.dropOrRest(target);
          continue;
        }
      }
      if (decision === 'drop') this.remove(target);
      else if (decision === 'rest') this.rest(target);
      else if (typeof decision === 'object') nextGraceExpiry = Math.min(nextGraceExpiry, decision.afterMs);
      else if (!underWay(target)) this.scheduleDial(target);
    }

    if (Number.isFinite(nextGraceExpiry)) {
      this.reconcileTimer = setTimeout(() => this.reconcile(), Math.max(10, nextGraceExpiry - this.now()));
    }
  }

  /**
   * `seed`: a configured address whose node no record names yet. `dial`: ours to dial by the
   * learned-peer rule. `fallback`: a learned peer that should dial us, worth dialing ourselves while
   * short of connections once its grace period is over. `rest`: a configured peer that others dial.
   */
  private classify(
    target: Target,
    lattice: ReadonlySet<string>,
  ): 'seed' | 'dial' | 'fallback' | 'drop' | 'rest' | { afterMs: number } {
    const configured = isConfigured(target);
    if (target.learnedPeerId === undefined) return configured ? 'seed' : 'drop';
    if (lattice.has(target.address)) return 'dial';
    if (this.connectedPeers.size >= this.options.minConnectedPeers) return configured ? 'rest' : 'drop';
    const graceEndsAt = target.learnedAtMs + this.options.tieBreakGraceMs;
    return this.now() >= graceEndsAt ? 'fallback' : { afterMs: graceEndsAt };
  }

  private dropOrRest(target: Target): void {
    if (isConfigured(target)) this.rest(target);
    else this.remove(target);
  }

  /** Keeps a configured target without dialing it; a dial already in flight may finish. */
  private rest(target: Target): void {
    if (target.state === 'connecting') return;
    clearTimeout(target.timer);
    target.timer = undefined;
    target.state = 'idle';
    target.nextRetryAtMs = undefined;
  }

  private markEstablished(target: Target): void {
    if (target.state === 'established') return;
    // An in-flight dial is left to finish: aborting it can tear down the very connection that just opened.
    clearTimeout(target.timer);
    target.timer = undefined;
    target.state = 'established';
    target.attempts = 0;
    target.lastError = undefined;
    target.nextRetryAtMs = undefined;
    target.establishedAtMs = this.now();
  }

  private connectionLost(target: Target): void {
    const livedMs = this.now() - (target.establishedAtMs ?? this.now());
    target.attempts = livedMs >= this.options.stableConnectionMs ? 0 : target.attempts + 1;
    target.state = 'idle';
    target.establishedAtMs = undefined;
    target.lastError = 'connection closed';
  }

  private scheduleDial(target: Target): void {
    const delay =
      target.attempts === 0 ? 0 : backoffDelayMs(target.attempts - 1, this.options.backoff, this.random);
    this.retryAfter(target, delay);
  }

  private retryAfter(target: Target, delayMs: number): void {
    target.state = 'retrying';
    target.nextRetryAtMs = this.now() + delayMs;
    clearTimeout(target.timer);
    target.timer = setTimeout(() => void this.dial(target), delayMs);
  }

  private async dial(target: Target): Promise<void> {
    target.timer = undefined;
    target.state = 'connecting';
    target.nextRetryAtMs = undefined;
    const abort = new AbortController();
    target.dialAbort = abort;
    const timeout = setTimeout(
      () => abort.abort(new Error(`dial timed out after ${this.options.dialTimeoutMs} ms`)),
      this.options.dialTimeoutMs,
    );
    // A configured address may now host a different node (reinstalled); only learned targets must prove an ID.
    const expectedPeerId = isConfigured(target) ? undefined : target.learnedPeerId;
    try {
      const peerId = await this.options.dialer.dial(target.address, expectedPeerId, abort.signal);
      // Superseded: stopped, removed, or established through another connection meanwhile.
      if (target.dialAbort !== abort) return;
      target.dialAbort = undefined;
      if (peerId === this.options.selfPeerId) {
        this.markFailed(target, 'this is our own address');
        return;
      }
      if (target.peerId !== undefined && target.peerId !== peerId) {
        this.options.logger.info(
          { address: target.address, was: target.peerId, now: peerId },
          'peer ID changed',
        );
      }
      target.peerId = peerId;
      this.connectedPeers.add(peerId);
      this.markEstablished(target);
      this.options.logger.debug({ address: target.address, peerId }, 'connected');
    } catch (err) {
      if (target.dialAbort !== abort) return;
      target.dialAbort = undefined;
      // The state may have changed while the dial was pending (TypeScript still narrows it to 'connecting').
      if ((target.state as Target['state']) === 'established') return;
      const reason = abort.signal.aborted ? (abort.signal.reason as Error).message : describeError(err);
      if (isSelfDialError(err)) {
        this.markFailed(target, 'this is our own address');
        return;
      }
      target.lastError = reason;
      target.attempts += 1;
      if (target.sources.size === 0) {
        this.remove(target);
        return;
      }
      const delay = backoffDelayMs(target.attempts - 1, this.options.backoff, this.random);
      this.options.logger.debug({ address: target.address, err: reason, retryInMs: delay }, 'dial failed');
      this.retryAfter(target, delay);
    } finally {
      clearTimeout(timeout);
    }
    this.reconcile();
  }

  private markFailed(target: Target, reason: string): void {
    this.cancel(target);
    target.state = 'failed';
    target.lastError = reason;
    target.nextRetryAtMs = undefined;
    this.options.logger.info({ address: target.address, reason }, 'not dialing target');
  }

  private cancel(target: Target): void {
    clearTimeout(target.timer);
    target.timer = undefined;
    target.dialAbort?.abort(new Error('dial cancelled'));
    target.dialAbort = undefined;
  }

  private remove(target: Target): void {
    this.cancel(target);
    this.targets.delete(target.address);
  }
}

/**
 * Which learned peers this node dials, by their ring keys (gossip addresses). Up to `targetDegree`
 * other nodes: all with a higher key (a full mesh, one connection per pair). Beyond that: the
 * ceil(degree/2) next keys around the sorted ring, so every node has about `targetDegree` connections
 * (half dialed, half accepted), no pair is dialed from both ends, and the graph stays connected with
 * diameter about N/degree.
 */
export function chooseLearnedPeersToDial(
  self: string,
  addresses: readonly string[],
  targetDegree: number,
): Set<string> {
  const others = [...new Set(addresses)].filter((address) => address !== self);
  if (others.length <= targetDegree) return new Set(others.filter((address) => self < address));
  const ring = [...others, self].sort();
  const at = ring.indexOf(self);
  const successors = Math.ceil(targetDegree / 2);
  return new Set(Array.from({ length: successors }, (_, j) => ring[(at + 1 + j) % ring.length] as string));
}

/** Orders addresses by their position on the ring of sorted addresses, starting after `self`. */
function compareAlongRing(self: string, a: string, b: string): number {
  const afterSelf = (address: string) => (address > self ? 0 : 1);
  return afterSelf(a) - afterSelf(b) || (a < b ? -1 : a > b ? 1 : 0);
}

function isConfigured(target: Target): boolean {
  return [...target.sources].some((source) => source !== LEARNED_SOURCE);
}

function isSelfDialError(err: unknown): boolean {
  return err instanceof Error && /dial self/i.test(err.message);
}

function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map((inner) => describeError(inner)).join('; ');
  }
  return err instanceof Error ? err.message : String(err);
}

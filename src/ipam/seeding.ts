import { createHash } from 'node:crypto';
import type { AcceptedValue, Proposal } from './messages.js';

/**
 * Agreeing on the first ring. Either a fixed seed list (every listed peer builds the same ring at once),
 * or single-decree Paxos among the initial peers: a proposer that hears promises from a quorum
 * (floor(E/2)+1 of the expected peer count E) asks them to accept a value, the sorted names of the peers
 * it knows; once a quorum accepted, the value is decided and the proposer builds the ring and gossips
 * it. Everyone else adopts the first ring it hears. Acceptor state is persisted and acceptors are
 * counted by peer name, so a restarted peer cannot vote twice. Two proposers can delay each other (the
 * node backs off with jitter) but never decide two values.
 */

export type SeedingMode =
  /** Paxos among the initial peers; `expectedPeers` is E, the cluster size including this peer. */
  | { readonly kind: 'consensus'; readonly expectedPeers?: number }
  /** The listed peers split the range at once; others wait for the ring. */
  | { readonly kind: 'seeds'; readonly seeds: readonly string[] }
  /** Never votes nor seeds: for peers that join a cluster whose ring already exists. */
  | { readonly kind: 'observer' };

export function quorumOf(expectedPeers: number): number {
  return Math.floor(expectedPeers / 2) + 1;
}

/** Identity of a seeding, carried in every ring: same mode, range and peers give the same id. */
export function seedIdFor(kind: 'consensus' | 'seeds', range: string, peers: readonly string[]): string {
  const names = [...new Set(peers)].sort();
  const digest = createHash('sha256')
    .update(`${kind}\n${range}\n${names.join('\n')}`)
    .digest('hex');
  return `${kind}:${digest.slice(0, 16)}`;
}

export function compareProposals(a: Proposal, b: Proposal): number {
  if (a.round !== b.round) return a.round - b.round;
  return a.proposer < b.proposer ? -1 : a.proposer > b.proposer ? 1 : 0;
}

export interface AcceptorState {
  readonly promised: Proposal | null;
  readonly accepted: AcceptedValue | null;
}

export type AcceptorReply =
  | { readonly type: 'paxos-promise'; readonly proposal: Proposal; readonly accepted: AcceptedValue | null }
  | { readonly type: 'paxos-accepted'; readonly proposal: Proposal }
  | { readonly type: 'paxos-reject'; readonly proposal: Proposal; readonly promised: Proposal };

/** Acceptor rules of single-decree Paxos; returns the new state (to persist before replying) and reply. */
export function onPrepare(
  state: AcceptorState,
  proposal: Proposal,
): { state: AcceptorState; reply: AcceptorReply } {
  if (state.promised !== null && compareProposals(proposal, state.promised) <= 0) {
    return { state, reply: { type: 'paxos-reject', proposal, promised: state.promised } };
  }
  return {
    state: { ...state, promised: proposal },
    reply: { type: 'paxos-promise', proposal, accepted: state.accepted },
  };
}

export function onAccept(
  state: AcceptorState,
  proposal: Proposal,
  value: readonly string[],
): { state: AcceptorState; reply: AcceptorReply } {
  if (state.promised !== null && compareProposals(proposal, state.promised) < 0) {
    return { state, reply: { type: 'paxos-reject', proposal, promised: state.promised } };
  }
  return {
    state: { promised: proposal, accepted: { proposal, value: [...value] } },
    reply: { type: 'paxos-accepted', proposal },
  };
}

/** One proposal in flight. */
export class ProposalAttempt {
  /** Acceptors sent this proposal's prepare. */
  readonly asked = new Set<string>();
  readonly promises = new Map<string, AcceptedValue | null>();
  readonly accepts = new Set<string>();
  value: string[] | null = null;
  /** When the attempt last made progress (started, or a promise or accept arrived); it times out from here. */
  progressAt: number;

  constructor(
    readonly proposal: Proposal,
    startedAt: number,
  ) {
    this.progressAt = startedAt;
  }

  /**
   * Records a promise; when a quorum has promised (first time only), returns the value to propose: the
   * value of the highest accepted proposal among the promises if any (Paxos), else `ownValue`.
   */
  addPromise(
    from: string,
    accepted: AcceptedValue | null,
    quorum: number,
    ownValue: () => string[],
  ): string[] | undefined {
    if (this.value !== null) return undefined;
    this.promises.set(from, accepted);
    if (this.promises.size < quorum) return undefined;
    let highest: AcceptedValue | null = null;
    for (const candidate of this.promises.values()) {
      if (
        candidate !== null &&
        (highest === null || compareProposals(candidate.proposal, highest.proposal) > 0)
      ) {
        highest = candidate;
      }
    }
    this.value = highest === null ? ownValue() : [...highest.value];
    return this.value;
  }

  /** Records an accept; returns the decided value once a quorum accepted this proposal. */
  addAccept(from: string, quorum: number): string[] | undefined {
    if (this.value === null) return undefined;
    this.accepts.add(from);
    return this.accepts.size >= quorum ? this.value : undefined;
  }
}

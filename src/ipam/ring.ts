/**
 * The ownership ring: a CRDT that gives every address of the cluster range exactly one owner peer.
 *
 * Data: tokens sorted inside the range [start, end); the first token is always `start` and tokens are
 * never removed. Entry (token t, peer P, version v, free f) means P owns [t, next token), the last entry
 * running to `end`. Merge = union of tokens; per token the higher version wins (a tie with different
 * content is resolved deterministically and reported). `free` is advisory (it helps pick donors).
 *
 * SAFETY ARGUMENT (test/unit/ipam/property.test.ts checks S1 and S2 after every simulated step)
 *
 * Rules the code keeps:
 *  R1 Single writer: version v+1 of a token is written only by the peer owning version v in its own view
 *     (donation, free report), or by rmpeer at a caller whose view holds every write of the dead peer.
 *     A token is created only by the owner of the range it falls in.
 *  R2 Views grow only by merging whole views: a view holding a version of a token also holds everything
 *     that token's writer knew when writing it.
 *  R3 Persist before send: the agent saves a peer's state before any message it caused leaves, so a
 *     restarted peer never forgets space it gave away, nor an address it handed out.
 *  R4 The first ring is a deterministic function of a decided value (single-decree Paxos with quorum
 *     floor(E/2)+1, or a fixed seed list), so every peer that creates a first ring creates the same one.
 *  R5 A peer allocates only usable addresses inside its own ranges (its own view) and gives away only
 *     space without allocations, so an allocated address never leaves its allocator's ranges.
 * Preconditions the operator or agent keeps (P1): rmpeer(X) runs once per X, only when X is dead, and X
 * never acts on its pre-removal state before merging a ring that records the removal; at most E peers
 * vote in the first Paxos round and they agree on E.
 *
 * Invariant I: for every live peer P and every token t that P owns in its view V_P,
 *   (a) V_P holds the newest version of t that exists in any view, and
 *   (b) no view holds a token strictly between t and P's next token in V_P.
 * Then the ranges P owns in V_P are its ranges in the join of all views, which maps each address to one
 * owner; so no two live peers believe they own overlapping ranges, at any time (S1).
 * I holds for the first ring (R4), and every step keeps it:
 *  - P merges a view: by (a) nothing newer exists for P's tokens, so P keeps them. A token P gains was
 *    written for P by its previous owner D (R1) together with D's view, which held D's next token (R2);
 *    only P may write or split that range afterwards (R1), so (a) and (b) hold for it.
 *  - P donates [a, b): P creates tokens a and b inside its own range and writes a to the new owner; P's
 *    remaining tokens still satisfy (a) and (b); the receiver believes nothing until it merges.
 *  - rmpeer(X) at C: X has written nothing since its last state, which C's view holds (P1), so C holds
 *    the newest versions of X's tokens and every token inside X's ranges; C's writes are newer still.
 *  - P restarts: its persisted view holds every write P made (R3).
 * With S1 and R5, an address is handed out only by its single owner, which records it once (S2: no
 * address is allocated to two containers). A merge that takes a range from a live peer would break (a);
 * it can only follow a broken precondition, so it is reported as a conflict, never silently accepted.
 */

import { formatCidr, type Interval, intervalToCidrs, normaliseIntervals } from './address.js';

export interface RingEntry {
  readonly token: number;
  readonly peer: string;
  readonly version: number;
  readonly free: number;
}

export interface Ring {
  readonly range: Interval;
  /** Identity of the seeding that created this ring; rings with different ids never merge. */
  readonly seedId: string;
  readonly entries: readonly RingEntry[];
}

/** How much a transfer by rmpeer raises versions, so it beats writes the dead peer made but no one saw. */
export const RMPEER_VERSION_MARGIN = 100;

/**
 * The first ring: `peers` (sorted, deduplicated) get contiguous, nearly equal shares made of aligned
 * blocks (2^3 blocks per peer or more, so shares differ by at most an eighth). If the range cannot give
 * every peer `minShare` addresses, only the first peers by name get a share; the others ask for space.
 */
export function seedRing(range: Interval, peers: readonly string[], seedId: string, minShare: number): Ring {
  const names = [...new Set(peers)].sort();
  if (names.length === 0) throw new Error('cannot seed a ring without peers');
  const size = range.end - range.start;
  let blockSize = size;
  while (blockSize / 2 >= minShare && size / blockSize < names.length * 8) blockSize /= 2;
  const blocks = size / blockSize;
  const owners = names.slice(0, Math.min(names.length, blocks));
  const base = Math.floor(blocks / owners.length);
  const extra = blocks % owners.length;
  const entries: RingEntry[] = [];
  let at = range.start;
  owners.forEach((peer, i) => {
    const share = (base + (i < extra ? 1 : 0)) * blockSize;
    entries.push({ token: at, peer, version: 1, free: share });
    at += share;
  });
  return { range, seedId, entries };
}

/** Structural invariants of a ring received from elsewhere; returns what is wrong, if anything. */
export function ringDefect(ring: Ring, range: Interval): string | undefined {
  if (ring.range.start !== range.start || ring.range.end !== range.end) return 'range differs';
  const { entries } = ring;
  if (entries.length === 0) return 'ring has no entries';
  if ((entries[0] as RingEntry).token !== range.start) return 'first token is not the start of the range';
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as RingEntry;
    if (entry.token < range.start || entry.token >= range.end)
      return `token ${entry.token} outside the range`;
    if (i > 0 && entry.token <= (entries[i - 1] as RingEntry).token)
      return 'tokens are not strictly ascending';
    if (entry.version < 1) return `token ${entry.token} has version ${entry.version}`;
    if (entry.free > entryEnd(ring, i) - entry.token)
      return `token ${entry.token} reports more free than its size`;
  }
  return undefined;
}

export function entryEnd(ring: Ring, index: number): number {
  return index + 1 < ring.entries.length ? (ring.entries[index + 1] as RingEntry).token : ring.range.end;
}

/** Index of the entry whose range holds `address` (the last token <= address). */
export function entryIndexAt(ring: Ring, address: number): number {
  const { entries } = ring;
  let lo = 0;
  let hi = entries.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if ((entries[mid] as RingEntry).token <= address) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export function ownerOf(ring: Ring, address: number): string {
  return (ring.entries[entryIndexAt(ring, address)] as RingEntry).peer;
}

/** The ranges `peer` owns, sorted and joined. */
export function ownedIntervals(ring: Ring, peer: string): Interval[] {
  const out: Interval[] = [];
  ring.entries.forEach((entry, i) => {
    if (entry.peer === peer) out.push({ start: entry.token, end: entryEnd(ring, i) });
  });
  return normaliseIntervals(out);
}

/** Same token, same version, different content: only possible when a precondition (P1) was broken. */
export interface VersionTie {
  readonly token: number;
  readonly version: number;
  readonly kept: string;
  readonly dropped: string;
}

export interface RingMerge {
  readonly ring: Ring;
  readonly changed: boolean;
  readonly ties: readonly VersionTie[];
}

function sameEntry(a: RingEntry, b: RingEntry): boolean {
  return a.peer === b.peer && a.version === b.version && a.free === b.free;
}

/** Deterministic winner of two entries for the same token, whatever the order of the arguments. */
function newerEntry(a: RingEntry, b: RingEntry): RingEntry {
  if (a.version !== b.version) return a.version > b.version ? a : b;
  if (a.peer !== b.peer) return a.peer > b.peer ? a : b;
  return a.free >= b.free ? a : b;
}

/**
 * CRDT join of two rings of the same range and seed (callers check both first): commutative,
 * associative and idempotent. Returns `local` itself when nothing changes.
 */
export function mergeRings(local: Ring, incoming: Ring): RingMerge {
  const a = local.entries;
  const b = incoming.entries;
  const entries: RingEntry[] = [];
  const ties: VersionTie[] = [];
  let changed = false;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const mine = a[i];
    const theirs = b[j];
    if (theirs === undefined || (mine !== undefined && mine.token < theirs.token)) {
      entries.push(mine as RingEntry);
      i++;
    } else if (mine === undefined || theirs.token < mine.token) {
      entries.push(theirs);
      changed = true;
      j++;
    } else {
      const winner = newerEntry(mine, theirs);
      if (winner !== mine && !sameEntry(winner, mine)) changed = true;
      if (mine.version === theirs.version && mine.peer !== theirs.peer) {
        ties.push({
          token: mine.token,
          version: mine.version,
          kept: winner.peer,
          dropped: winner === mine ? theirs.peer : mine.peer,
        });
      }
      entries.push(sameEntry(winner, mine) ? mine : winner);
      i++;
      j++;
    }
  }
  return { ring: changed ? { ...local, entries } : local, changed, ties };
}

export function ringsEqual(a: Ring, b: Ring): boolean {
  if (a.seedId !== b.seedId || a.range.start !== b.range.start || a.range.end !== b.range.end) return false;
  if (a.entries.length !== b.entries.length) return false;
  return a.entries.every(
    (entry, i) => sameEntry(entry, b.entries[i] as RingEntry) && entry.token === b.entries[i]?.token,
  );
}

/** Inserts a token at `address` (if absent) that continues the enclosing entry's owner. */
function splitAt(entries: RingEntry[], ring: Ring, address: number): void {
  if (address >= ring.range.end) return;
  const index = entryIndexAt({ ...ring, entries }, address);
  const enclosing = entries[index] as RingEntry;
  if (enclosing.token === address) return;
  entries.splice(index + 1, 0, { token: address, peer: enclosing.peer, version: 1, free: 0 });
}

/**
 * `from` gives `interval` to `to`. Precondition: `from` owns all of it. Creates tokens at both ends
 * (R1: only the owner splits its range) and bumps the version of every entry that changes owner.
 */
export function grantRange(ring: Ring, interval: Interval, from: string, to: string): Ring {
  const entries = [...ring.entries];
  splitAt(entries, ring, interval.start);
  splitAt(entries, ring, interval.end);
  const work = { ...ring, entries };
  for (let i = entryIndexAt(work, interval.start); i < entries.length; i++) {
    const entry = entries[i] as RingEntry;
    if (entry.token >= interval.end) break;
    if (entry.peer !== from) throw new Error(`grantRange: ${from} does not own token ${entry.token}`);
    entries[i] = {
      token: entry.token,
      peer: to,
      version: entry.version + 1,
      free: entryEnd(work, i) - entry.token,
    };
  }
  return work;
}

/** rmpeer: every entry of `from` goes to `to`, with versions raised by RMPEER_VERSION_MARGIN. */
export function transferPeer(ring: Ring, from: string, to: string): { ring: Ring; taken: Interval[] } {
  const taken: Interval[] = [];
  const entries = ring.entries.map((entry, i) => {
    if (entry.peer !== from) return entry;
    taken.push({ start: entry.token, end: entryEnd(ring, i) });
    return { ...entry, peer: to, version: entry.version + RMPEER_VERSION_MARGIN };
  });
  return taken.length === 0
    ? { ring, taken }
    : { ring: { ...ring, entries }, taken: normaliseIntervals(taken) };
}

/** The owner updates the advisory free counts of its entries; each changed entry gets a new version. */
export function reportFree(ring: Ring, peer: string, freeByToken: ReadonlyMap<number, number>): Ring {
  let changed = false;
  const entries = ring.entries.map((entry) => {
    const free = freeByToken.get(entry.token);
    if (entry.peer !== peer || free === undefined || free === entry.free) return entry;
    changed = true;
    return { ...entry, free, version: entry.version + 1 };
  });
  return changed ? { ...ring, entries } : ring;
}

/** Each owner's ranges, joined where they touch, in ring order of first appearance. */
export function intervalsByOwner(ring: Ring): Map<string, Interval[]> {
  const byPeer = new Map<string, Interval[]>();
  ring.entries.forEach((entry, i) => {
    let list = byPeer.get(entry.peer);
    if (list === undefined) {
      list = [];
      byPeer.set(entry.peer, list);
    }
    list.push({ start: entry.token, end: entryEnd(ring, i) });
  });
  for (const [peer, list] of byPeer) byPeer.set(peer, normaliseIntervals(list));
  return byPeer;
}

export function intervalsToCidrStrings(intervals: readonly Interval[]): string[] {
  return intervals.flatMap((interval) => intervalToCidrs(interval).map(formatCidr));
}

/** CIDR blocks per owner, for the data plane's route table; peers sorted by name. */
export function ownedRanges(ring: Ring): Array<{ peer: string; cidrs: string[] }> {
  const byPeer = intervalsByOwner(ring);
  return [...byPeer.keys()].sort().map((peer) => ({
    peer,
    cidrs: intervalsToCidrStrings(byPeer.get(peer) ?? []),
  }));
}

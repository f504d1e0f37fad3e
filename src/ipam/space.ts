import { type Interval, intervalToCidrs, normaliseIntervals, subtractIntervals } from './address.js';

/**
 * Which addresses of a peer's owned space may be handed out, and which part of it may be given away.
 *
 * Address rule: the peer's owned ranges are joined and split into CIDR blocks (intervalToCidrs). In every
 * block of 4 or more addresses the first (network) and last (broadcast) are never handed out; blocks of 1
 * or 2 addresses hand out nothing. The gateway (the node's bridge address) is an ordinary allocation
 * (GATEWAY_ID) made first-fit as soon as the peer owns space, so it is the first usable address of the
 * first block the peer got, and it never moves while the peer keeps its state.
 * Joining ranges only merges blocks, so a handed-out address never becomes reserved by gaining space;
 * giving space away could split a block, so a donation is only chosen if it leaves every allocated
 * address usable (chooseDonation).
 */

export const MIN_USABLE_BLOCK = 4;

/** The peer's space as CIDR blocks (intervals), ascending. */
export function ownedBlocks(owned: readonly Interval[]): Interval[] {
  return normaliseIntervals(owned).flatMap((interval) =>
    intervalToCidrs(interval).map((cidr) => ({
      start: cidr.start,
      end: cidr.start + 2 ** (32 - cidr.prefix),
    })),
  );
}

/** The addresses of a block that may be handed out, or undefined for blocks below MIN_USABLE_BLOCK. */
export function usablePart(block: Interval): Interval | undefined {
  return block.end - block.start >= MIN_USABLE_BLOCK
    ? { start: block.start + 1, end: block.end - 1 }
    : undefined;
}

export function isUsable(blocks: readonly Interval[], address: number): boolean {
  let lo = 0;
  let hi = blocks.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const block = blocks[mid] as Interval;
    if (address < block.start) hi = mid - 1;
    else if (address >= block.end) lo = mid + 1;
    else {
      const usable = usablePart(block);
      return usable !== undefined && address >= usable.start && address < usable.end;
    }
  }
  return false;
}

/** How many usable addresses of `blocks` fall inside `interval`. */
export function usableWithin(blocks: readonly Interval[], interval: Interval): number {
  let count = 0;
  for (const block of blocks) {
    if (block.start >= interval.end) break;
    const usable = usablePart(block);
    if (usable === undefined) continue;
    const from = Math.max(usable.start, interval.start);
    const to = Math.min(usable.end, interval.end);
    if (to > from) count += to - from;
  }
  return count;
}

/** Number of entries in the ascending array `sorted` that lie in [from, to). */
export function countBetween(sorted: readonly number[], from: number, to: number): number {
  return lowerBound(sorted, to) - lowerBound(sorted, from);
}

export function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Picks the space to give a peer that asked: the upper half of the largest free aligned block (like
 * Weave), else smaller aligned pieces of free blocks, never below `minSize` and never leaving an allocated
 * address of the donor at a reserved position. `allocated` is ascending. Undefined if nothing fits.
 */
export function chooseDonation(
  owned: readonly Interval[],
  allocated: readonly number[],
  minSize: number,
): Interval | undefined {
  const ownedNorm = normaliseIntervals(owned);
  const used = allocated.map((a) => ({ start: a, end: a + 1 }));
  const freeBlocks = subtractIntervals(ownedNorm, used)
    .flatMap((interval) => intervalToCidrs(interval))
    .map((cidr) => ({ start: cidr.start, end: cidr.start + 2 ** (32 - cidr.prefix) }))
    .filter((block) => block.end - block.start >= 2 * minSize)
    .sort((a, b) => b.end - b.start - (a.end - a.start) || b.start - a.start);
  const maxSize = freeBlocks[0] === undefined ? 0 : freeBlocks[0].end - freeBlocks[0].start;
  for (let size = maxSize / 2; size >= minSize; size /= 2) {
    for (const block of freeBlocks) {
      if (block.end - block.start < 2 * size) break;
      for (const gift of [
        { start: block.end - size, end: block.end },
        { start: block.start, end: block.start + size },
      ]) {
        if (keepsAllocationsUsable(ownedNorm, gift, allocated)) return gift;
      }
    }
  }
  return undefined;
}

function keepsAllocationsUsable(
  owned: readonly Interval[],
  gift: Interval,
  allocated: readonly number[],
): boolean {
  const blocks = ownedBlocks(subtractIntervals(owned, [gift]));
  return allocated.every((address) => isUsable(blocks, address));
}

import { ipv4ToUint32, isIpv4, parseIpv4Network, uint32ToIpv4 } from '../util/ipv4.js';

/**
 * IPv4 addresses as unsigned 32-bit integers held in JS numbers (10.32.0.1 = 0x0a200001), and
 * half-open address intervals [start, end) whose `end` may be 2^32.
 */

export const ADDRESS_SPACE_END = 2 ** 32;

export interface Interval {
  readonly start: number;
  readonly end: number;
}

export interface Cidr {
  readonly start: number;
  readonly prefix: number;
}

export function cidrSize(prefix: number): number {
  return 2 ** (32 - prefix);
}

export function cidrInterval(cidr: Cidr): Interval {
  return { start: cidr.start, end: cidr.start + cidrSize(cidr.prefix) };
}

export function parseAddress(text: string): number {
  if (!isIpv4(text)) throw new Error(`not an IPv4 address in dotted-quad form: '${text}'`);
  return ipv4ToUint32(text);
}

export function formatAddress(address: number): string {
  return uint32ToIpv4(address);
}

/** Parses 'a.b.c.d/n'; the address must be the network address of the block (no host bits set). */
export function parseCidr(text: string): Cidr {
  return parseIpv4Network(text);
}

export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr.start)}/${cidr.prefix}`;
}

/** The largest power of two that divides `n` (n > 0), or 2^32 for n = 0. */
function alignmentOf(n: number): number {
  if (n === 0) return ADDRESS_SPACE_END;
  let size = 1;
  while (n % (size * 2) === 0) size *= 2;
  return size;
}

/**
 * Splits [start, end) into the fewest CIDR blocks, in address order: each block is the largest aligned
 * block that starts at the current address and fits. Blocks of a range are always unions of the blocks
 * of any split of that range, which is what makes reserved addresses shrink when ranges merge.
 */
export function intervalToCidrs(interval: Interval): Cidr[] {
  const blocks: Cidr[] = [];
  let at = interval.start;
  while (at < interval.end) {
    let size = alignmentOf(at);
    while (size > interval.end - at) size /= 2;
    blocks.push({ start: at, prefix: 32 - Math.log2(size) });
    at += size;
  }
  return blocks;
}

/** Sorts and joins touching or overlapping intervals. */
export function normaliseIntervals(intervals: Iterable<Interval>): Interval[] {
  const sorted = [...intervals].filter((i) => i.end > i.start).sort((a, b) => a.start - b.start);
  const out: Interval[] = [];
  for (const next of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && next.start <= last.end) {
      out[out.length - 1] = { start: last.start, end: Math.max(last.end, next.end) };
    } else {
      out.push(next);
    }
  }
  return out;
}

/** `from` minus `remove`; both normalised (sorted, disjoint). */
export function subtractIntervals(from: readonly Interval[], remove: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const interval of from) {
    let at = interval.start;
    while (j < remove.length && (remove[j] as Interval).end <= at) j++;
    let k = j;
    while (k < remove.length && (remove[k] as Interval).start < interval.end) {
      const cut = remove[k] as Interval;
      if (cut.start > at) out.push({ start: at, end: cut.start });
      at = Math.max(at, cut.end);
      k++;
    }
    if (at < interval.end) out.push({ start: at, end: interval.end });
  }
  return out;
}

export function intervalsSize(intervals: readonly Interval[]): number {
  let total = 0;
  for (const i of intervals) total += i.end - i.start;
  return total;
}

/** Units and tables for the text views. */
import { cidrSize } from '../../ipam/address.js';
import { parseIpv4Cidr } from '../../plumbing/cidr.js';

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const format = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [format(header), ...rows.map(format)].join('\n');
}

/** Weave's layout: labels right-aligned to 15 columns, then ": ". */
export function labelled(lines: Array<[label: string, value: string]>): string {
  return lines.map(([label, value]) => `${label.padStart(15)}: ${value}`).join('\n');
}

export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function plural(n: number, noun: string): string {
  return `${count(n)} ${noun}${n === 1 ? '' : 's'}`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A share: one decimal, two below 1 % (a /24 of a /12 is 0.02 %, not 0.0 %). */
export function percent(p: number): string {
  return `${p.toFixed(p > 0 && p < 1 ? 2 : 1)} %`;
}

/** A round trip: 0.123 ms, 12.3 ms, 1,234 ms; "-" when unknown. */
export function millis(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1) return `${ms.toFixed(3)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${count(ms)} ms`;
}

/**
 * A round trip timed by libp2p, which reads the clock in whole milliseconds: "<1 ms" for a
 * sub-millisecond link (libp2p says 0), "3 ms"; "-" when unknown.
 */
export function wholeMillis(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1) return '<1 ms';
  return `${count(ms)} ms`;
}

/** How long ago, coarse: "0.4 s ago", "12 s ago", "5 min ago", "3 h ago". */
export function ago(thenMs: number, nowMs: number): string {
  const s = Math.max(0, nowMs - thenMs) / 1000;
  if (s < 10) return `${s.toFixed(1)} s ago`;
  if (s < 120) return `${Math.round(s)} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** libp2p peer IDs share their first characters (12D3KooW…): the tail tells them apart. */
export function shortPeerId(peerId: string | null): string {
  if (peerId === null) return '-';
  return peerId.length <= 10 ? peerId : `…${peerId.slice(-8)}`;
}

/** A few CIDRs, then how many more. */
export function cidrList(cidrs: readonly string[], shown = 2): string {
  if (cidrs.length === 0) return '-';
  const head = cidrs.slice(0, shown).join(',');
  return cidrs.length > shown ? `${head} +${cidrs.length - shown} more` : head;
}

/** How many addresses the blocks hold together. */
export function addressCount(cidrs: readonly string[]): number {
  return cidrs.reduce((sum, c) => sum + cidrSize(parseIpv4Cidr(c).prefixLength), 0);
}

import { describe, expect, test } from 'vitest';
import {
  formatAddress,
  formatCidr,
  intervalToCidrs,
  normaliseIntervals,
  parseAddress,
  parseCidr,
  subtractIntervals,
} from '../../../src/ipam/address.js';

const ip = parseAddress;
const cidrs = (from: string, toExclusive: number) =>
  intervalToCidrs({ start: ip(from), end: toExclusive }).map(formatCidr);

describe('addresses', () => {
  test('parse and print uint32 addresses', () => {
    expect(ip('10.32.0.1')).toBe(0x0a200001);
    expect(ip('255.255.255.255')).toBe(0xffffffff);
    expect(formatAddress(0x0a200001)).toBe('10.32.0.1');
    expect(() => ip('10.32.0')).toThrow(/dotted-quad/);
    expect(() => ip('::1')).toThrow();
  });

  test('parse CIDR blocks, refusing host bits', () => {
    expect(parseCidr('10.32.0.0/12')).toEqual({ start: 0x0a200000, prefix: 12 });
    expect(() => parseCidr('10.32.0.1/12')).toThrow(/host bits set; did you mean 10.32.0.0\/12/);
    expect(() => parseCidr('10.32.0.0/33')).toThrow(/not an IPv4 CIDR/);
  });
});

describe('CIDR splitting', () => {
  test('an aligned range is one block', () => {
    expect(cidrs('10.32.0.0', ip('10.48.0.0'))).toEqual(['10.32.0.0/12']);
  });

  test('a non-aligned range becomes the fewest aligned blocks, in order', () => {
    expect(cidrs('10.0.0.1', ip('10.0.0.8'))).toEqual(['10.0.0.1/32', '10.0.0.2/31', '10.0.0.4/30']);
    expect(cidrs('10.0.0.0', ip('10.0.0.0') + 3 * 256)).toEqual(['10.0.0.0/23', '10.0.2.0/24']);
    expect(cidrs('10.0.0.128', ip('10.0.1.64'))).toEqual(['10.0.0.128/25', '10.0.1.0/26']);
  });

  test('the whole address space and its last address', () => {
    expect(cidrs('0.0.0.0', 2 ** 32)).toEqual(['0.0.0.0/0']);
    expect(cidrs('255.255.255.255', 2 ** 32)).toEqual(['255.255.255.255/32']);
  });

  test('the blocks of a range are unions of the blocks of its parts', () => {
    const violations: string[] = [];
    for (let start = 0; start < 48; start++) {
      for (let end = start + 1; end <= 48; end++) {
        for (let cut = start + 1; cut < end; cut++) {
          const parts = new Set(
            [...intervalToCidrs({ start, end: cut }), ...intervalToCidrs({ start: cut, end })].map(
              (c) => c.start,
            ),
          );
          for (const block of intervalToCidrs({ start, end })) {
            if (!parts.has(block.start)) violations.push(`[${start},${end}) cut at ${cut}`);
          }
        }
      }
    }
    expect(violations).toEqual([]);
  });
});

describe('interval sets', () => {
  test('normalise joins touching intervals', () => {
    expect(
      normaliseIntervals([
        { start: 10, end: 20 },
        { start: 0, end: 5 },
        { start: 5, end: 8 },
        { start: 19, end: 25 },
      ]),
    ).toEqual([
      { start: 0, end: 8 },
      { start: 10, end: 25 },
    ]);
  });

  test('subtract', () => {
    expect(
      subtractIntervals(
        [
          { start: 0, end: 10 },
          { start: 20, end: 30 },
        ],
        [
          { start: 2, end: 3 },
          { start: 8, end: 22 },
          { start: 29, end: 40 },
        ],
      ),
    ).toEqual([
      { start: 0, end: 2 },
      { start: 3, end: 8 },
      { start: 22, end: 29 },
    ]);
  });
});

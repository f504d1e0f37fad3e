import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { parseAddress } from '../../../src/ipam/address.js';
import {
  grantRange,
  mergeRings,
  ownedIntervals,
  ownedRanges,
  ownerOf,
  type Ring,
  type RingEntry,
  RMPEER_VERSION_MARGIN,
  ringDefect,
  ringsEqual,
  seedRing,
  transferPeer,
} from '../../../src/ipam/ring.js';

const RANGE = { start: parseAddress('10.32.0.0'), end: parseAddress('10.48.0.0') };
const ip = parseAddress;

function ring(entries: Array<[string, string, number, number?]>): Ring {
  return {
    range: RANGE,
    seedId: 'seed',
    entries: entries.map(([token, peer, version, free]) => ({
      token: ip(token),
      peer,
      version,
      free: free ?? 0,
    })),
  };
}

describe('seeding split', () => {
  test('one peer owns everything', () => {
    expect(seedRing(RANGE, ['a'], 's', 16).entries).toEqual([
      { token: RANGE.start, peer: 'a', version: 1, free: 2 ** 20 },
    ]);
  });

  test('peers get contiguous shares that differ by at most an eighth, sorted by name', () => {
    const r = seedRing(RANGE, ['c', 'a', 'b', 'a'], 's', 16);
    expect(r.entries.map((e) => e.peer)).toEqual(['a', 'b', 'c']);
    const sizes = ownedRanges(r)
      .map(({ peer }) => ownedIntervals(r, peer)[0])
      .map((i) => (i ? i.end - i.start : 0));
    expect(sizes.reduce((x, y) => x + y)).toBe(2 ** 20);
    expect(Math.max(...sizes) / Math.min(...sizes)).toBeLessThanOrEqual(1 + 1 / 8 + 1e-9);
    expect(ringDefect(r, RANGE)).toBeUndefined();
  });

  test('peers beyond what minShare allows get nothing and must ask for space', () => {
    const small = { start: ip('10.0.0.0'), end: ip('10.0.0.64') };
    const r = seedRing(small, ['a', 'b', 'c', 'd', 'e', 'f'], 's', 16);
    expect(r.entries.map((e) => [e.peer, e.free])).toEqual([
      ['a', 16],
      ['b', 16],
      ['c', 16],
      ['d', 16],
    ]);
  });
});

describe('merge', () => {
  const base = ring([
    ['10.32.0.0', 'a', 1],
    ['10.40.0.0', 'b', 1],
  ]);

  test('the higher version wins per token, tokens are united', () => {
    const theirs = ring([
      ['10.32.0.0', 'a', 1],
      ['10.40.0.0', 'c', 2],
      ['10.44.0.0', 'b', 1],
    ]);
    const merged = mergeRings(base, theirs);
    expect(merged.changed).toBe(true);
    expect(merged.ties).toEqual([]);
    expect(ownerOf(merged.ring, ip('10.41.0.0'))).toBe('c');
    expect(ownerOf(merged.ring, ip('10.45.0.0'))).toBe('b');
  });

  test('an older version is ignored and the local ring object is kept', () => {
    const newer = ring([
      ['10.32.0.0', 'a', 5],
      ['10.40.0.0', 'b', 3],
    ]);
    const merged = mergeRings(newer, base);
    expect(merged.changed).toBe(false);
    expect(merged.ring).toBe(newer);
  });

  test('a tie (same token and version, different owner) is reported and resolved the same way on both sides', () => {
    const x = ring([['10.32.0.0', 'x', 7]]);
    const y = ring([['10.32.0.0', 'y', 7]]);
    const xy = mergeRings(x, y);
    const yx = mergeRings(y, x);
    expect(xy.ties).toEqual([{ token: RANGE.start, version: 7, kept: 'y', dropped: 'x' }]);
    expect(yx.ties).toEqual([{ token: RANGE.start, version: 7, kept: 'y', dropped: 'x' }]);
    expect(ringsEqual(xy.ring, yx.ring)).toBe(true);
  });

  test('merge is commutative, associative and idempotent (a CRDT join)', () => {
    const entry = fc.record({
      token: fc.integer({ min: 0, max: 15 }).map((t) => RANGE.start + t * 65536),
      peer: fc.constantFrom('a', 'b', 'c'),
      version: fc.integer({ min: 1, max: 4 }),
      free: fc.integer({ min: 0, max: 3 }),
    });
    const arbRing = fc.array(entry, { maxLength: 8 }).map((entries): Ring => {
      const byToken = new Map<number, RingEntry>([
        [RANGE.start, { token: RANGE.start, peer: 'a', version: 1, free: 0 }],
      ]);
      for (const e of entries) byToken.set(e.token, e);
      return { range: RANGE, seedId: 's', entries: [...byToken.values()].sort((p, q) => p.token - q.token) };
    });
    fc.assert(
      fc.property(arbRing, arbRing, arbRing, (a, b, c) => {
        const join = (p: Ring, q: Ring) => mergeRings(p, q).ring;
        expect(ringsEqual(join(a, b), join(b, a))).toBe(true);
        expect(ringsEqual(join(join(a, b), c), join(a, join(b, c)))).toBe(true);
        expect(ringsEqual(join(a, a), a)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('ring changes', () => {
  test('grantRange splits at both ends and bumps the version of what changes owner', () => {
    const r = grantRange(
      ring([['10.32.0.0', 'a', 3, 100]]),
      { start: ip('10.36.0.0'), end: ip('10.38.0.0') },
      'a',
      'b',
    );
    expect(r.entries.map((e) => [e.token, e.peer, e.version])).toEqual([
      [ip('10.32.0.0'), 'a', 3],
      [ip('10.36.0.0'), 'b', 2],
      [ip('10.38.0.0'), 'a', 1],
    ]);
    expect(ringDefect(r, RANGE)).toBeUndefined();
    expect(() => grantRange(r, { start: ip('10.36.0.0'), end: ip('10.37.0.0') }, 'a', 'c')).toThrow(
      /does not own/,
    );
  });

  test('transferPeer moves every entry of the dead peer with a version margin, and is idempotent', () => {
    const r = ring([
      ['10.32.0.0', 'dead', 4],
      ['10.36.0.0', 'b', 2],
      ['10.40.0.0', 'dead', 9],
    ]);
    const first = transferPeer(r, 'dead', 'me');
    expect(first.ring.entries.map((e) => [e.peer, e.version])).toEqual([
      ['me', 4 + RMPEER_VERSION_MARGIN],
      ['b', 2],
      ['me', 9 + RMPEER_VERSION_MARGIN],
    ]);
    expect(first.taken).toEqual([
      { start: ip('10.32.0.0'), end: ip('10.36.0.0') },
      { start: ip('10.40.0.0'), end: ip('10.48.0.0') },
    ]);
    const second = transferPeer(first.ring, 'dead', 'me');
    expect(second.taken).toEqual([]);
    expect(second.ring).toBe(first.ring);
  });

  test('ringDefect names what is wrong', () => {
    expect(ringDefect(ring([['10.33.0.0', 'a', 1]]), RANGE)).toMatch(/first token/);
    expect(
      ringDefect(
        ring([
          ['10.32.0.0', 'a', 1],
          ['10.50.0.0', 'b', 1],
        ]),
        RANGE,
      ),
    ).toMatch(/outside the range/);
    expect(ringDefect(ring([['10.32.0.0', 'a', 1, 2 ** 21]]), RANGE)).toMatch(/more free than its size/);
    expect(ringDefect({ ...ring([['10.32.0.0', 'a', 1]]), range: { start: 0, end: 16 } }, RANGE)).toMatch(
      /range/,
    );
  });
});

describe('ownedRanges (for the route table)', () => {
  test('CIDR blocks per owner, joined across adjacent entries and split where not aligned', () => {
    const r = ring([
      ['10.32.0.0', 'a', 1],
      ['10.32.0.64', 'a', 1],
      ['10.32.1.0', 'b', 1],
      ['10.32.1.192', 'a', 1],
      ['10.32.2.0', 'c', 1],
    ]);
    expect(ownedRanges(r)).toEqual([
      { peer: 'a', cidrs: ['10.32.0.0/24', '10.32.1.192/26'] },
      { peer: 'b', cidrs: ['10.32.1.0/25', '10.32.1.128/26'] },
      {
        peer: 'c',
        cidrs: [
          '10.32.2.0/23',
          '10.32.4.0/22',
          '10.32.8.0/21',
          '10.32.16.0/20',
          '10.32.32.0/19',
          '10.32.64.0/18',
          '10.32.128.0/17',
          '10.33.0.0/16',
          '10.34.0.0/15',
          '10.36.0.0/14',
          '10.40.0.0/13',
        ],
      },
    ]);
  });
});

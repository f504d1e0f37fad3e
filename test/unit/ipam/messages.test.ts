import { describe, expect, test } from 'vitest';
import { encodeRing, IPAM_PROTOCOL_VERSION, parseIpamMessage } from '../../../src/ipam/messages.js';
import { IpamNode } from '../../../src/ipam/node.js';

const ringMessage = () => {
  const node = IpamNode.create({ peer: 'a', seeding: { kind: 'seeds', seeds: ['a', 'b'] } });
  return {
    type: 'ring',
    v: IPAM_PROTOCOL_VERSION,
    range: node.clusterRange,
    ring: encodeRing(node.ring as NonNullable<typeof node.ring>),
  };
};

describe('parseIpamMessage', () => {
  test('accepts every message a node sends, after a JSON round trip', () => {
    expect(parseIpamMessage(JSON.parse(JSON.stringify(ringMessage())))).toMatchObject({ ok: true });
    const prepare = {
      type: 'paxos-prepare',
      v: IPAM_PROTOCOL_VERSION,
      range: '10.32.0.0/12',
      proposal: { round: 3, proposer: 'a' },
    };
    expect(parseIpamMessage(prepare)).toEqual({ ok: true, message: prepare });
  });

  test('rejects unknown types, versions and malformed fields', () => {
    expect(parseIpamMessage({ type: 'hello', v: IPAM_PROTOCOL_VERSION, range: 'x' }).ok).toBe(false);
    expect(parseIpamMessage({ ...ringMessage(), v: IPAM_PROTOCOL_VERSION + 1 }).ok).toBe(false);
    expect(parseIpamMessage(null).ok).toBe(false);
    expect(
      parseIpamMessage({ type: 'space-request', v: IPAM_PROTOCOL_VERSION, range: '10.32.0.0/12' }).ok,
    ).toBe(false);
  });

  test('rejects rings with unsorted tokens, bad peer indexes or non-integer addresses', () => {
    const good = ringMessage();
    const [first, second] = good.ring.entries as [
      [number, number, number, number],
      [number, number, number, number],
    ];
    const unsorted = { ...good, ring: { ...good.ring, entries: [second, first] } };
    const result = parseIpamMessage(unsorted);
    expect(result).toMatchObject({ ok: false, error: expect.stringMatching(/strictly ascending/) });
    const badIndex = { ...good, ring: { ...good.ring, entries: [[first[0], 7, 1, 0]] } };
    expect(parseIpamMessage(badIndex)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/out of bounds/),
    });
    const fraction = { ...good, ring: { ...good.ring, entries: [[0.5, 0, 1, 0]] } };
    expect(parseIpamMessage(fraction).ok).toBe(false);
  });

  test('a node reports a ring that passes the schema but breaks ring invariants', () => {
    const node = IpamNode.create({ peer: 'b', seeding: { kind: 'seeds', seeds: ['a', 'b'] } });
    const good = ringMessage();
    const shifted = {
      ...good,
      ring: { ...good.ring, entries: good.ring.entries.map(([t, p, v, f]) => [t + 1, p, v, f]) },
    };
    const parsed = parseIpamMessage(shifted);
    if (!parsed.ok) throw new Error(parsed.error);
    node.receive('a', parsed.message);
    expect(node.conflicts[0]).toMatchObject({ kind: 'invalid-message', from: 'a' });
  });
});

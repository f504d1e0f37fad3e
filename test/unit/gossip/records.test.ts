import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkReceivedRecord, encodeRecord, isNewerRecord } from '../../../src/gossip/records.js';
import { otherPeerId, peerId, record } from './fixtures.js';

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe('checkReceivedRecord', () => {
  it('accepts a well-formed record signed by the peer it describes', () => {
    const result = checkReceivedRecord({ data: encodeRecord(record()), signedBy: peerId });
    expect(result).toEqual({ ok: true, record: record() });
  });

  it('strips unknown fields instead of rejecting newer senders', () => {
    const result = checkReceivedRecord({ data: json({ ...record(), futureField: 1 }), signedBy: peerId });
    expect(result.ok && 'futureField' in result.record).toBe(false);
  });

  it('carries the optional pods-in-use count, and rejects a negative one', () => {
    const withCount = record({ addressesInUse: 3 });
    expect(checkReceivedRecord({ data: encodeRecord(withCount), signedBy: peerId })).toEqual({
      ok: true,
      record: withCount,
    });
    expect(
      checkReceivedRecord({ data: json({ ...record(), addressesInUse: -1 }), signedBy: peerId }),
    ).toMatchObject({ ok: false });
  });

  it('rejects a record whose peer ID is not the signer (spoofing)', () => {
    const result = checkReceivedRecord({ data: encodeRecord(record()), signedBy: otherPeerId });
    expect(result).toMatchObject({ ok: false, reason: 'peer-id-mismatch' });
  });

  it('rejects unsigned messages', () => {
    expect(checkReceivedRecord({ data: encodeRecord(record()), signedBy: undefined })).toMatchObject({
      ok: false,
      reason: 'unsigned',
    });
  });

  it('rejects oversize records before parsing them', () => {
    const big = encodeRecord(record({ version: 'x'.repeat(64) }));
    expect(checkReceivedRecord({ data: big, signedBy: peerId }, big.byteLength - 1)).toMatchObject({
      ok: false,
      reason: 'oversize',
    });
    expect(checkReceivedRecord({ data: new Uint8Array(5_000), signedBy: peerId })).toMatchObject({
      reason: 'oversize',
    });
  });

  it('rejects bytes that are not JSON text as malformed', () => {
    for (const data of [
      new Uint8Array([0xff, 0xfe, 0x00]),
      new TextEncoder().encode('{"v":1,'),
      new Uint8Array(),
    ]) {
      expect(checkReceivedRecord({ data, signedBy: peerId })).toMatchObject({
        ok: false,
        reason: 'malformed',
      });
    }
  });

  it.each<[string, Record<string, unknown>]>([
    ['unknown version', { v: 2 }],
    ['IPv6 underlay', { underlay: 'fd00::1' }],
    ['bad IPv4', { underlay: '10.0.0.256' }],
    ['port 0', { dataPort: 0 }],
    ['port too big', { gossipPort: 70_000 }],
    ['fractional seq', { seq: 1.5 }],
    ['negative incarnation', { incarnation: -1 }],
    ['name with a slash', { name: 'a/b' }],
    ['empty name', { name: '' }],
    ['long version', { version: 'v'.repeat(65) }],
    ['missing field', { dataPort: undefined }],
  ])('rejects a schema violation: %s', (_label, change) => {
    const result = checkReceivedRecord({ data: json({ ...record(), ...change }), signedBy: peerId });
    expect(result).toMatchObject({ ok: false, reason: 'schema' });
  });

  it('never throws on arbitrary input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2_000 }), fc.option(fc.string()), (data, signedBy) => {
        const result = checkReceivedRecord({ data, signedBy: signedBy ?? undefined });
        expect(typeof result.ok).toBe('boolean');
      }),
    );
  });
});

describe('isNewerRecord', () => {
  it('orders by incarnation first, then by sequence', () => {
    expect(isNewerRecord(record({ seq: 2 }), record({ seq: 1 }))).toBe(true);
    expect(isNewerRecord(record({ seq: 1 }), record({ seq: 1 }))).toBe(false);
    expect(isNewerRecord(record({ incarnation: 2, seq: 0 }), record({ incarnation: 1, seq: 99 }))).toBe(true);
    expect(isNewerRecord(record({ incarnation: 1, seq: 99 }), record({ incarnation: 2, seq: 0 }))).toBe(
      false,
    );
  });
});

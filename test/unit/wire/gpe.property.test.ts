import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkGpeDatagram,
  decodeGpe,
  describeVerdict,
  encodeGpe,
  GPE_HEADER_LENGTH,
  NextProtocol,
  WireVerdict,
} from '../../../src/wire/index.js';
import { innerPacket, vni } from './packets.js';

const RUNS = { numRuns: 2000 };
const ALL_VERDICTS = new Set<number>(Object.values(WireVerdict));

/** Decodes and checks the invariants that hold for any input, then returns the verdict. */
function decodeAndCheckInvariants(buf: Uint8Array, offset: number, length: number, expectedVni: number) {
  const verdict = checkGpeDatagram(buf, offset, length, expectedVni);
  const decoded = decodeGpe(buf, offset, length, expectedVni);
  expect(ALL_VERDICTS.has(verdict)).toBe(true);
  if (decoded.ok) {
    expect(verdict).toBe(WireVerdict.Ok);
    expect(decoded.vni).toBe(expectedVni);
    expect(decoded.innerOffset).toBe(offset + GPE_HEADER_LENGTH);
    expect(decoded.innerLength).toBeGreaterThanOrEqual(decoded.nextProtocol === NextProtocol.IPv4 ? 20 : 40);
    expect(decoded.innerOffset + decoded.innerLength).toBeLessThanOrEqual(offset + length);
  } else {
    expect(decoded.verdict).toBe(verdict);
    expect(decoded.reason).toBe(describeVerdict(verdict));
  }
  return verdict;
}

describe('round trip', () => {
  it('decode(encode(x)) returns x for any VNI and valid inner packet', () => {
    fc.assert(
      fc.property(vni, innerPacket, (v, { nextProtocol, packet }) => {
        const datagram = encodeGpe({ vni: v, nextProtocol }, packet);
        const decoded = decodeGpe(datagram, 0, datagram.length, v);
        expect(decoded).toEqual({
          ok: true,
          vni: v,
          nextProtocol,
          innerOffset: GPE_HEADER_LENGTH,
          innerLength: packet.length,
        });
        expect(datagram.subarray(GPE_HEADER_LENGTH)).toEqual(packet);
      }),
      RUNS,
    );
  });

  it('trailing bytes and a position inside a larger buffer do not change the result', () => {
    fc.assert(
      fc.property(
        vni,
        innerPacket,
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 64 }),
        (v, { nextProtocol, packet }, before, trailing) => {
          const datagram = encodeGpe({ vni: v, nextProtocol }, packet);
          const buf = Buffer.concat([before, datagram, trailing]);
          const decoded = decodeGpe(buf, before.length, datagram.length + trailing.length, v);
          expect(decoded).toMatchObject({
            ok: true,
            innerOffset: before.length + 8,
            innerLength: packet.length,
          });
        },
      ),
      RUNS,
    );
  });
});

describe('arbitrary input', () => {
  it('random bytes of length 0..2000 never throw and yield ok or a known rejection', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), vni, (bytes, v) => {
        decodeAndCheckInvariants(bytes, 0, bytes.length, v);
      }),
      RUNS,
    );
  });

  it('random inner bytes behind a valid header never throw, whatever the window', () => {
    // Pure noise almost always fails the flag check; this reaches the inner-packet checks.
    fc.assert(
      fc.property(
        vni,
        fc.constantFrom(NextProtocol.IPv4, NextProtocol.IPv6),
        fc.uint8Array({ maxLength: 2000 }),
        fc.nat(),
        fc.nat(),
        (v, nextProtocol, inner, a, b) => {
          const buf = encodeGpe({ vni: v, nextProtocol }, inner);
          const offset = a % (buf.length + 1);
          const length = b % (buf.length - offset + 1);
          decodeAndCheckInvariants(buf, offset, length, v);
          if (offset === 0 && length === buf.length && inner.length > 0) {
            const verdict = checkGpeDatagram(buf, 0, buf.length, v);
            expect([
              WireVerdict.Ok,
              WireVerdict.InnerVersionMismatch,
              WireVerdict.InnerTooShort,
              WireVerdict.InnerLengthMismatch,
            ]).toContain(verdict);
          }
        },
      ),
      RUNS,
    );
  });
});

/**
 * The verdict a datagram that was valid before gets after byte `index` changed from `before` to
 * `after`, derived from which field the byte belongs to.
 */
function expectedAfterMutation(
  datagram: Buffer,
  nextProtocol: number,
  index: number,
  after: number,
): WireVerdict {
  const innerAvailable = datagram.length - GPE_HEADER_LENGTH;
  const inner = index - GPE_HEADER_LENGTH;
  switch (index) {
    case 0:
      if ((after & 0x0c) !== 0x0c) return WireVerdict.BadFlags;
      if ((after & 0x30) !== 0) return WireVerdict.BadVersion;
      if ((after & 0x01) !== 0) return WireVerdict.OamPacket;
      return WireVerdict.Ok; // reserved bits and B
    case 1:
    case 2:
    case 7:
      return WireVerdict.Ok; // reserved
    case 3:
      if (after !== NextProtocol.IPv4 && after !== NextProtocol.IPv6)
        return WireVerdict.UnsupportedNextProtocol;
      return WireVerdict.InnerVersionMismatch; // the other IP version: the inner packet is unchanged
    case 4:
    case 5:
    case 6:
      return WireVerdict.WrongVni;
  }
  if (nextProtocol === NextProtocol.IPv4) {
    const headerLength = ((datagram[GPE_HEADER_LENGTH] as number) & 0x0f) * 4;
    const totalLength = datagram.readUInt16BE(GPE_HEADER_LENGTH + 2);
    if (inner === 0) {
      if (after >>> 4 !== 4) return WireVerdict.InnerVersionMismatch;
      const newHeaderLength = (after & 0x0f) * 4;
      if (newHeaderLength < 20 || newHeaderLength > innerAvailable) return WireVerdict.InnerTooShort;
      return totalLength < newHeaderLength ? WireVerdict.InnerLengthMismatch : WireVerdict.Ok;
    }
    if (inner === 2 || inner === 3) {
      const newTotal = inner === 2 ? (after << 8) | (totalLength & 0xff) : (totalLength & 0xff00) | after;
      return newTotal < headerLength || newTotal > innerAvailable
        ? WireVerdict.InnerLengthMismatch
        : WireVerdict.Ok;
    }
    return WireVerdict.Ok; // TOS, ID, fragment, TTL, protocol, checksum, addresses, options, payload
  }
  if (inner === 0) return after >>> 4 === 6 ? WireVerdict.Ok : WireVerdict.InnerVersionMismatch;
  if (inner === 4 || inner === 5) {
    const payloadLength = datagram.readUInt16BE(GPE_HEADER_LENGTH + 4);
    const newPayload = inner === 4 ? (after << 8) | (payloadLength & 0xff) : (payloadLength & 0xff00) | after;
    return newPayload + 40 > innerAvailable ? WireVerdict.InnerLengthMismatch : WireVerdict.Ok;
  }
  return WireVerdict.Ok;
}

describe('single-byte mutations', () => {
  it('are accepted or rejected for a reason that matches the mutated field', () => {
    const headerArea = fc.integer({ min: 0, max: GPE_HEADER_LENGTH + 60 - 1 });
    fc.assert(
      fc.property(
        vni,
        innerPacket,
        fc.oneof(headerArea, fc.nat()),
        fc.integer({ min: 1, max: 255 }),
        (v, { nextProtocol, packet }, at, delta) => {
          const datagram = encodeGpe({ vni: v, nextProtocol }, packet);
          const index = at % datagram.length;
          const after = ((datagram[index] as number) + delta) & 0xff;
          const expected = expectedAfterMutation(datagram, nextProtocol, index, after);
          datagram[index] = after;
          expect(checkGpeDatagram(datagram, 0, datagram.length, v)).toBe(expected);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

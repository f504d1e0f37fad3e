import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { completePartialChecksum, partialChecksumFieldOffset } from '../../../src/wire/index.js';
import { ipv4Packet } from '../../helpers/packets.js';
import {
  checksumsValid,
  onesComplementSum,
  pseudoHeader,
  tcpPacket,
  tunRead,
  udpPacket,
} from '../dataplane/offload-packets.js';

/** The packet as a partial-checksum sender puts it on the wire: the L4 field holds the pseudo-header sum. */
function leftPartial(packet: Buffer): Buffer {
  return Buffer.from(tunRead(packet).subarray(10));
}

describe('completePartialChecksum', () => {
  it('finishes TCP and UDP checksums left partial, to the bytes of the complete packet', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.uint8Array({ minLength: 0, maxLength: 1500 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (tcp, payload, seq) => {
          const complete = tcp ? tcpPacket({ seq, payload }) : udpPacket(payload);
          const partial = leftPartial(complete);
          expect(checksumsValid(partial).l4).toBe(false);
          expect(completePartialChecksum(partial, 0, partial.length)).toBe(true);
          expect(partial.equals(complete)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('works on a packet inside a larger buffer and ignores padding after it', () => {
    const complete = tcpPacket({ seq: 7, payload: Buffer.from('odd-length payload!') });
    const buf = Buffer.concat([Buffer.alloc(33, 0xee), leftPartial(complete), Buffer.alloc(5, 0xaa)]);
    expect(completePartialChecksum(buf, 33, buf.length - 33)).toBe(true);
    expect(buf.subarray(33, 33 + complete.length).equals(complete)).toBe(true);
    expect(buf.subarray(0, 33).every((b) => b === 0xee)).toBe(true);
    expect(buf.subarray(33 + complete.length).every((b) => b === 0xaa)).toBe(true);
  });

  it('sends a UDP checksum that comes out as zero as all ones (zero means no checksum)', () => {
    // Two payload bytes chosen so that the whole datagram sums to 0xffff: the computed checksum is 0.
    const packet = udpPacket(Buffer.alloc(8));
    const partial = leftPartial(packet);
    partial.writeUInt16BE(0, 26);
    const sum = onesComplementSum([pseudoHeader(partial, 17, partial.length - 20), partial.subarray(20)]);
    partial.writeUInt16BE(0xffff - sum, 34);
    partial.writeUInt16BE(onesComplementSum([pseudoHeader(partial, 17, partial.length - 20)]), 26);
    expect(completePartialChecksum(partial, 0, partial.length)).toBe(true);
    expect(partial.readUInt16BE(26)).toBe(0xffff);
    expect(checksumsValid(partial).l4).toBe(true);
  });

  it('leaves alone what a sender may not leave partial: fragments, other protocols, cut packets', () => {
    const fragment = leftPartial(tcpPacket({ seq: 1, payload: Buffer.alloc(40, 1) }));
    fragment[6] = 0x20; // MF
    const icmp = ipv4Packet({ source: '10.32.1.2', destination: '10.32.2.2', protocol: 1 });
    const whole = leftPartial(udpPacket(Buffer.alloc(30, 3)));
    const cut = whole.subarray(0, 40); // total length says 58
    for (const packet of [fragment, icmp, cut]) {
      const before = Buffer.from(packet);
      expect(completePartialChecksum(packet, 0, packet.length)).toBe(false);
      expect(packet.equals(before)).toBe(true);
    }
    expect(partialChecksumFieldOffset(fragment, 0, fragment.length)).toBe(0);
    expect(partialChecksumFieldOffset(whole, 0, whole.length)).toBe(6);
    expect(partialChecksumFieldOffset(whole, 0, 20 + 7)).toBe(0); // the field is not there
  });
});

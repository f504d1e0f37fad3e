import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { weftDp } from '../../../src/native/addon.js';
import { ipv4Packet } from '../../helpers/packets.js';
import {
  checksumsValid,
  onesComplementSum,
  pseudoHeader,
  tcpPacket,
  tunRead,
  udpPacket,
} from './offload-packets.js';

/** The packet as a partial-checksum sender puts it on the wire: the L4 field holds the pseudo-header sum. */
function leftPartial(packet: Buffer): Buffer {
  return Buffer.from(tunRead(packet).subarray(10));
}

/** completePartialChecksums on packets laid out one after another in one buffer, all flagged. */
function complete(buf: Buffer, packets: readonly { offset: number; length: number }[]): number {
  return weftDp().completePartialChecksums(
    buf,
    Uint32Array.from(packets, (p) => p.offset),
    Uint32Array.from(packets, (p) => p.length),
    packets.length,
    new Uint8Array(packets.length).fill(1),
  );
}

describe('completePartialChecksums (a TUN without the virtio header)', () => {
  it('finishes TCP and UDP checksums left partial, to the bytes of the complete packet', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.uint8Array({ minLength: 0, maxLength: 1500 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (tcp, payload, seq) => {
          const whole = tcp ? tcpPacket({ seq, payload }) : udpPacket(payload);
          const partial = leftPartial(whole);
          expect(complete(partial, [{ offset: 0, length: partial.length }])).toBe(1);
          expect(partial.equals(whole)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('finishes only flagged packets, inside a larger buffer, ignoring padding after a packet', () => {
    const a = tcpPacket({ seq: 7, payload: Buffer.from('odd-length payload!') });
    const b = udpPacket(Buffer.from('flagged off'));
    const buf = Buffer.concat([
      Buffer.alloc(33, 0xee),
      leftPartial(a),
      Buffer.alloc(5, 0xaa),
      leftPartial(b),
    ]);
    const bAt = 33 + a.length + 5;
    const before = Buffer.from(buf);
    const n = weftDp().completePartialChecksums(
      buf,
      Uint32Array.of(33, bAt),
      Uint32Array.of(a.length + 5, b.length),
      2,
      Uint8Array.of(1, 0),
    );
    expect(n).toBe(1);
    expect(buf.subarray(33, 33 + a.length).equals(a)).toBe(true);
    expect(buf.subarray(0, 33).equals(before.subarray(0, 33))).toBe(true);
    expect(buf.subarray(33 + a.length).equals(before.subarray(33 + a.length))).toBe(true);
  });

  it('sends a UDP checksum that comes out as zero as all ones (zero means no checksum)', () => {
    // Two payload bytes chosen so that the whole datagram sums to 0xffff: the computed checksum is 0.
    const partial = leftPartial(udpPacket(Buffer.alloc(8)));
    partial.writeUInt16BE(0, 26);
    const sum = onesComplementSum([pseudoHeader(partial, 17, partial.length - 20), partial.subarray(20)]);
    partial.writeUInt16BE(0xffff - sum, 34);
    partial.writeUInt16BE(onesComplementSum([pseudoHeader(partial, 17, partial.length - 20)]), 26);
    expect(complete(partial, [{ offset: 0, length: partial.length }])).toBe(1);
    expect(partial.readUInt16BE(26)).toBe(0xffff);
    expect(checksumsValid(partial).l4).toBe(true);
  });

  it('leaves alone what a sender may not leave partial: fragments, other protocols, cut packets', () => {
    const fragment = leftPartial(tcpPacket({ seq: 1, payload: Buffer.alloc(40, 1) }));
    fragment[6] = 0x20; // MF
    const icmp = ipv4Packet({ source: '10.32.1.2', destination: '10.32.2.2', protocol: 1 });
    const cut = leftPartial(udpPacket(Buffer.alloc(30, 3))).subarray(0, 40); // total length says 58
    for (const packet of [fragment, icmp, cut]) {
      const before = Buffer.from(packet);
      expect(complete(packet, [{ offset: 0, length: packet.length }])).toBe(0);
      expect(packet.equals(before)).toBe(true);
    }
  });
});

/** Builders and fast-check arbitraries for inner IP packets, shared by the wire tests. */
import fc from 'fast-check';
import { NextProtocol } from '../../../src/wire/gpe.js';
import { ipv4HeaderChecksum } from '../../../src/wire/ip.js';

/** Bytes from a hex string; whitespace is ignored. */
export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

export interface Ipv4Fields {
  /** Options (a multiple of 4 bytes, at most 40); IHL follows from its length. */
  options: Uint8Array;
  tos: number;
  identification: number;
  flagsAndFragment: number;
  ttl: number;
  protocol: number;
  source: number;
  destination: number;
  payload: Uint8Array;
}

/** A well-formed IPv4 packet: total length and header checksum consistent with the fields. */
export function buildIpv4Packet(f: Ipv4Fields): Buffer {
  const headerLength = 20 + f.options.length;
  const packet = Buffer.alloc(headerLength + f.payload.length);
  packet[0] = 0x40 | (headerLength / 4);
  packet[1] = f.tos;
  packet.writeUInt16BE(packet.length, 2);
  packet.writeUInt16BE(f.identification, 4);
  packet.writeUInt16BE(f.flagsAndFragment, 6);
  packet[8] = f.ttl;
  packet[9] = f.protocol;
  packet.writeUInt32BE(f.source, 12);
  packet.writeUInt32BE(f.destination, 16);
  packet.set(f.options, 20);
  packet.set(f.payload, headerLength);
  packet.writeUInt16BE(ipv4HeaderChecksum(packet, 0), 10);
  return packet;
}

export interface Ipv6Fields {
  trafficClass: number;
  flowLabel: number;
  nextHeader: number;
  hopLimit: number;
  source: Uint8Array;
  destination: Uint8Array;
  payload: Uint8Array;
}

export function buildIpv6Packet(f: Ipv6Fields): Buffer {
  const packet = Buffer.alloc(40 + f.payload.length);
  packet.writeUInt32BE(((6 << 28) | (f.trafficClass << 20) | f.flowLabel) >>> 0, 0);
  packet.writeUInt16BE(f.payload.length, 4);
  packet[6] = f.nextHeader;
  packet[7] = f.hopLimit;
  packet.set(f.source, 8);
  packet.set(f.destination, 24);
  packet.set(f.payload, 40);
  return packet;
}

const byte = fc.integer({ min: 0, max: 0xff });
const uint16 = fc.integer({ min: 0, max: 0xffff });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });

export const ipv4Packet: fc.Arbitrary<Buffer> = fc
  .record({
    options: fc
      .integer({ min: 0, max: 10 })
      .chain((words) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 })),
    tos: byte,
    identification: uint16,
    flagsAndFragment: uint16,
    ttl: byte,
    protocol: byte,
    source: uint32,
    destination: uint32,
    payload: fc.uint8Array({ maxLength: 1400 }),
  })
  .map(buildIpv4Packet);

export const ipv6Packet: fc.Arbitrary<Buffer> = fc
  .record({
    trafficClass: byte,
    flowLabel: fc.integer({ min: 0, max: 0xfffff }),
    nextHeader: byte,
    hopLimit: byte,
    source: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    destination: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    payload: fc.uint8Array({ maxLength: 1400 }),
  })
  .map(buildIpv6Packet);

/** A valid inner packet with the GPE next protocol that announces it. */
export const innerPacket = fc.oneof(
  ipv4Packet.map((packet) => ({ nextProtocol: NextProtocol.IPv4, packet })),
  ipv6Packet.map((packet) => ({ nextProtocol: NextProtocol.IPv6, packet })),
);

export const vni = fc.integer({ min: 0, max: 0xffffff });

import { ipv4ToUint32 } from '../../src/dataplane/io.js';

export interface Ipv4PacketSpec {
  source: string;
  destination: string;
  ttl?: number;
  protocol?: number;
  payload?: Uint8Array;
  /** Bytes appended after the packet (not counted in its total length), as a padded frame has. */
  padding?: number;
}

/** A well-formed IPv4 packet (header checksum included) for tests. */
export function ipv4Packet(spec: Ipv4PacketSpec): Buffer {
  const payload = Buffer.from(spec.payload ?? Buffer.from('weft test payload'));
  const total = 20 + payload.length;
  const packet = Buffer.alloc(total + (spec.padding ?? 0));
  packet[0] = 0x45;
  packet.writeUInt16BE(total, 2);
  packet.writeUInt16BE(0x1234, 4);
  packet[8] = spec.ttl ?? 64;
  packet[9] = spec.protocol ?? 17;
  packet.writeUInt32BE(ipv4ToUint32(spec.source), 12);
  packet.writeUInt32BE(ipv4ToUint32(spec.destination), 16);
  packet.writeUInt16BE(headerChecksum(packet.subarray(0, 20)), 10);
  payload.copy(packet, 20);
  return packet;
}

function headerChecksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < header.length; i += 2) sum += header.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** A VXLAN-GPE datagram (flags I|P, version 0) around `inner`. */
export function gpeDatagram(inner: Uint8Array, vni = 1, nextProtocol = 1): Buffer {
  const header = Buffer.from([
    0x0c,
    0,
    0,
    nextProtocol,
    (vni >>> 16) & 0xff,
    (vni >>> 8) & 0xff,
    vni & 0xff,
    0,
  ]);
  return Buffer.concat([header, Buffer.from(inner)]);
}

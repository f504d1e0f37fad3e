/**
 * Packets as the kernel's TUN hands them over in offload mode ([virtio_net_hdr][IPv4 packet]), and
 * an independent RFC 1071 checksum to verify what the addon produced.
 */
import { ipv4ToUint32 } from '../../../src/dataplane/io.js';

export const VNET = { NeedsCsum: 1, GsoNone: 0, GsoTcpV4: 1, GsoUdpL4: 5 } as const;
export const TCP_ACK = 0x10;
export const TCP_PSH = 0x08;

/** RFC 1071: one's-complement sum of big-endian 16-bit words (odd byte padded with zero), folded. */
export function onesComplementSum(parts: Uint8Array[]): number {
  let sum = 0;
  for (const part of parts) {
    for (let i = 0; i < part.length; i += 2) {
      sum += ((part[i] as number) << 8) | (i + 1 < part.length ? (part[i + 1] as number) : 0);
      if (sum > 0xffff) sum = (sum & 0xffff) + 1;
    }
  }
  return sum;
}

export function pseudoHeader(ip: Uint8Array, protocol: number, l4Length: number): Uint8Array {
  const p = Buffer.alloc(12);
  p.set(ip.subarray(12, 20), 0);
  p[9] = protocol;
  p.writeUInt16BE(l4Length, 10);
  return p;
}

/** True when the IPv4 header checksum and the TCP/UDP checksum of `ip` both verify. */
export function checksumsValid(ip: Buffer): { ip: boolean; l4: boolean } {
  const ihl = ((ip[0] as number) & 15) * 4;
  const total = ip.readUInt16BE(2);
  const protocol = ip[9] as number;
  const l4 = ip.subarray(ihl, total);
  const l4Sum = onesComplementSum([pseudoHeader(ip, protocol, l4.length), l4]);
  return { ip: onesComplementSum([ip.subarray(0, ihl)]) === 0xffff, l4: l4Sum === 0xffff };
}

export interface TcpSpec {
  source?: string;
  destination?: string;
  sourcePort?: number;
  destinationPort?: number;
  seq: number;
  ack?: number;
  flags?: number;
  /** TCP options, a multiple of 4 bytes. */
  options?: Uint8Array;
  payload: Uint8Array;
  id?: number;
}

/** An IPv4/TCP packet with correct checksums. */
export function tcpPacket(spec: TcpSpec): Buffer {
  const options = spec.options ?? new Uint8Array(0);
  const doff = 20 + options.length;
  const total = 20 + doff + spec.payload.length;
  const p = Buffer.alloc(total);
  p[0] = 0x45;
  p.writeUInt16BE(total, 2);
  p.writeUInt16BE(spec.id ?? 0x4242, 4);
  p[6] = 0x40; // DF
  p[8] = 64;
  p[9] = 6;
  p.writeUInt32BE(ipv4ToUint32(spec.source ?? '10.32.1.2'), 12);
  p.writeUInt32BE(ipv4ToUint32(spec.destination ?? '10.32.2.2'), 16);
  p.writeUInt16BE(spec.sourcePort ?? 40000, 20);
  p.writeUInt16BE(spec.destinationPort ?? 5201, 22);
  p.writeUInt32BE(spec.seq >>> 0, 24);
  p.writeUInt32BE((spec.ack ?? 1) >>> 0, 28);
  p[32] = (doff / 4) << 4;
  p[33] = spec.flags ?? TCP_ACK;
  p.writeUInt16BE(502, 34);
  p.set(options, 40);
  p.set(spec.payload, 20 + doff);
  finishChecksums(p);
  return p;
}

/** An IPv4/UDP packet with correct checksums. */
export function udpPacket(
  payload: Uint8Array,
  source = '10.32.1.2',
  destination = '10.32.2.2',
  sourcePort = 33333,
): Buffer {
  const total = 28 + payload.length;
  const p = Buffer.alloc(total);
  p[0] = 0x45;
  p.writeUInt16BE(total, 2);
  p[8] = 64;
  p[9] = 17;
  p.writeUInt32BE(ipv4ToUint32(source), 12);
  p.writeUInt32BE(ipv4ToUint32(destination), 16);
  p.writeUInt16BE(sourcePort, 20);
  p.writeUInt16BE(5201, 22);
  p.writeUInt16BE(8 + payload.length, 24);
  p.set(payload, 28);
  finishChecksums(p);
  return p;
}

function l4ChecksumOffset(ip: Buffer): number {
  return ((ip[0] as number) & 15) * 4 + (ip[9] === 6 ? 16 : 6);
}

function finishChecksums(p: Buffer): void {
  p.writeUInt16BE(0, 10);
  p.writeUInt16BE(~onesComplementSum([p.subarray(0, 20)]) & 0xffff, 10);
  const at = l4ChecksumOffset(p);
  p.writeUInt16BE(0, at);
  const l4 = p.subarray(20);
  p.writeUInt16BE(~onesComplementSum([pseudoHeader(p, p[9] as number, l4.length), l4]) & 0xffff, at);
}

/**
 * What the TUN hands over for `packet` with checksum offload: the L4 checksum field holds only the
 * pseudo-header sum (CHECKSUM_PARTIAL), the virtio_net_hdr says where to finish it; with `mss` it
 * is a TSO/USO super-packet to be cut into segments of mss payload bytes.
 */
export function tunRead(packet: Buffer, mss?: number): Buffer {
  const ip = Buffer.from(packet);
  const ihl = ((ip[0] as number) & 15) * 4;
  const at = l4ChecksumOffset(ip);
  ip.writeUInt16BE(onesComplementSum([pseudoHeader(ip, ip[9] as number, ip.length - ihl)]), at);
  const vnet = Buffer.alloc(10);
  vnet[0] = VNET.NeedsCsum;
  if (mss !== undefined) {
    vnet[1] = ip[9] === 6 ? VNET.GsoTcpV4 : VNET.GsoUdpL4;
    vnet.writeUInt16LE(mss, 4);
  }
  vnet.writeUInt16LE(ihl, 6);
  vnet.writeUInt16LE(at - ihl, 8);
  return Buffer.concat([vnet, ip]);
}

/** The TCP payload of an IPv4/TCP packet. */
export function tcpPayload(ip: Buffer): Buffer {
  const ihl = ((ip[0] as number) & 15) * 4;
  return ip.subarray(ihl + ((ip[ihl + 12] as number) >> 4) * 4, ip.readUInt16BE(2));
}

/** Completes a CHECKSUM_PARTIAL TUN write as the kernel would (csum_start/csum_offset of its vnet header). */
export function finishPartial(written: Buffer): Buffer {
  const ip = Buffer.from(written.subarray(10));
  if (((written[0] as number) & VNET.NeedsCsum) === 0) return ip;
  const start = written.readUInt16LE(6);
  const at = start + written.readUInt16LE(8);
  ip.writeUInt16BE(~onesComplementSum([ip.subarray(start)]) & 0xffff, at);
  return ip;
}

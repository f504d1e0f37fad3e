/** ICMP echo encoding and the two answers the prober cares about (echo reply, fragmentation needed). */
import { uint32ToIpv4 } from '../util/ipv4.js';

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_FRAG_NEEDED_CODE = 4;

export function buildEchoRequest(id: number, seq: number, icmpLength: number): Buffer {
  const packet = Buffer.alloc(Math.max(8, icmpLength));
  packet[0] = ICMP_ECHO_REQUEST;
  packet.writeUInt16BE(id, 4);
  packet.writeUInt16BE(seq, 6);
  for (let i = 8; i < packet.length; i++) packet[i] = i & 0xff;
  packet.writeUInt16BE(checksum(packet), 2);
  return packet;
}

/** The internet checksum (RFC 1071). */
export function checksum(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < data.length; i += 2) sum += data.readUInt16BE(i);
  if (data.length % 2 === 1) sum += (data[data.length - 1] as number) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** `peer` is the probed address: a reply's source, or the destination an ICMP error quotes. */
export type IcmpAnswer =
  | { kind: 'echo-reply'; peer: string; id: number; seq: number }
  | { kind: 'frag-needed'; peer: string; id: number; seq: number; nextHopMtu: number | null }
  | { kind: 'unreachable'; peer: string; id: number; seq: number; code: number };

/**
 * Parses what a raw IPv4 ICMP socket delivers (IP header first). Errors quote the offending
 * packet's IP header and first 8 bytes, which hold our echo's id and sequence number.
 */
export function parseIcmpAnswer(packet: Buffer): IcmpAnswer | undefined {
  const icmp = ipPayloadOffset(packet);
  if (icmp === undefined || packet.length < icmp + 8) return undefined;
  const type = packet[icmp] as number;
  const code = packet[icmp + 1] as number;
  if (type === ICMP_ECHO_REPLY) {
    return {
      kind: 'echo-reply',
      peer: ipv4Address(packet, IP_SOURCE_OFFSET),
      id: packet.readUInt16BE(icmp + 4),
      seq: packet.readUInt16BE(icmp + 6),
    };
  }
  if (type !== ICMP_DEST_UNREACHABLE) return undefined;
  const quoted = packet.subarray(icmp + 8);
  const inner = ipPayloadOffset(quoted);
  if (inner === undefined || quoted.length < inner + 8 || quoted[inner] !== ICMP_ECHO_REQUEST)
    return undefined;
  const peer = ipv4Address(quoted, IP_DESTINATION_OFFSET);
  const id = quoted.readUInt16BE(inner + 4);
  const seq = quoted.readUInt16BE(inner + 6);
  if (code === ICMP_FRAG_NEEDED_CODE) {
    const mtu = packet.readUInt16BE(icmp + 6);
    return { kind: 'frag-needed', peer, id, seq, nextHopMtu: mtu === 0 ? null : mtu };
  }
  return { kind: 'unreachable', peer, id, seq, code };
}

const IP_SOURCE_OFFSET = 12;
const IP_DESTINATION_OFFSET = 16;

function ipv4Address(header: Buffer, offset: number): string {
  return uint32ToIpv4(header.readUInt32BE(offset));
}

function ipPayloadOffset(packet: Buffer): number | undefined {
  if (packet.length < 20 || (packet[0] as number) >> 4 !== 4) return undefined;
  const headerLength = ((packet[0] as number) & 0x0f) * 4;
  return headerLength < 20 || packet.length < headerLength ? undefined : headerLength;
}

/**
 * VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe) header codec for an L3 overlay: the 8-byte header is
 * followed directly by an IPv4 or IPv6 packet, no Ethernet. Byte-compatible with Linux's
 * `vxlan gpe` device.
 *
 *    0                   1                   2                   3
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |R|R|Ver|I|P|B|O|           Reserved            | Next Protocol |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                VXLAN Network Identifier (VNI) |   Reserved    |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * checkGpeDatagram and innerPacketLength work in place on a caller's buffer and allocate nothing;
 * a sender builds gpeHeader() once and copies it. decodeGpe and encodeGpe allocate and are for
 * tools and tests.
 */

import {
  IPV4_MIN_HEADER_LENGTH,
  IPV6_HEADER_LENGTH,
  ipVersion,
  ipv4HeaderLength,
  ipv4TotalLength,
  ipv6PayloadLength,
} from './ip.js';

export const GPE_HEADER_LENGTH = 8;
/** IANA-assigned UDP port for VXLAN-GPE. */
export const GPE_DEFAULT_PORT = 4790;
export const GPE_MAX_VNI = 0xffffff;

export const GpeFlag = {
  /** VNI present. Must be set. */
  Instance: 0x08,
  /** Next Protocol field present. Must be set. */
  NextProtocol: 0x04,
  /** Ingress-replicated BUM traffic. Never sent; harmless when received. */
  Bum: 0x02,
  /** OAM packet: not data, and we do no OAM processing. */
  Oam: 0x01,
} as const;

/**
 * weft's use of the reserved field (byte 2, lowest bit): the inner TCP/UDP checksum is partial, i.e.
 * holds only the pseudo-header sum, and the receiver must hand the packet on as CHECKSUM_PARTIAL.
 * Sent only to peers that announce the 'partial-csum' feature: the kernel's vxlan-gpe drops
 * datagrams with reserved bits set, and an older weft would write such packets with a bad checksum.
 * The same bit is GPE_PARTIAL_BYTE/GPE_PARTIAL_BIT in native/gso.h.
 */
export const GPE_PARTIAL_CSUM_OFFSET = 2;
export const GPE_PARTIAL_CSUM_BIT = 0x01;

/** Whether the datagram at `offset` (a checked GPE header) carries a partial inner checksum. */
export function hasPartialChecksum(buf: Uint8Array, offset: number): boolean {
  return ((buf[offset + GPE_PARTIAL_CSUM_OFFSET] as number) & GPE_PARTIAL_CSUM_BIT) !== 0;
}

const GPE_VERSION_MASK = 0x30;
const GPE_REQUIRED_FLAGS = GpeFlag.Instance | GpeFlag.NextProtocol;

export const NextProtocol = {
  IPv4: 0x01,
  IPv6: 0x02,
  Ethernet: 0x03,
  Nsh: 0x04,
} as const;
export type NextProtocol = (typeof NextProtocol)[keyof typeof NextProtocol];
/** The next protocols this L3 overlay carries. */
export type InnerProtocol = typeof NextProtocol.IPv4 | typeof NextProtocol.IPv6;

/** Outcome of checking a received datagram: Ok (0) or the first reason it must be dropped. */
export const WireVerdict = {
  Ok: 0,
  TooShort: 1,
  BadFlags: 2,
  BadVersion: 3,
  OamPacket: 4,
  UnsupportedNextProtocol: 5,
  WrongVni: 6,
  InnerVersionMismatch: 7,
  InnerTooShort: 8,
  InnerLengthMismatch: 9,
} as const;
export type WireVerdict = (typeof WireVerdict)[keyof typeof WireVerdict];
export type WireRejection = Exclude<WireVerdict, typeof WireVerdict.Ok>;

/** Short snake_case names, fit for metric labels and structured logs. */
export const verdictName: Readonly<Record<WireVerdict, string>> = {
  [WireVerdict.Ok]: 'ok',
  [WireVerdict.TooShort]: 'too_short',
  [WireVerdict.BadFlags]: 'bad_flags',
  [WireVerdict.BadVersion]: 'bad_version',
  [WireVerdict.OamPacket]: 'oam_packet',
  [WireVerdict.UnsupportedNextProtocol]: 'unsupported_next_protocol',
  [WireVerdict.WrongVni]: 'wrong_vni',
  [WireVerdict.InnerVersionMismatch]: 'inner_version_mismatch',
  [WireVerdict.InnerTooShort]: 'inner_too_short',
  [WireVerdict.InnerLengthMismatch]: 'inner_length_mismatch',
};

const verdictDescription: Readonly<Record<WireVerdict, string>> = {
  [WireVerdict.Ok]: 'valid VXLAN-GPE datagram',
  [WireVerdict.TooShort]: `datagram shorter than the ${GPE_HEADER_LENGTH}-byte VXLAN-GPE header`,
  [WireVerdict.BadFlags]: 'VXLAN-GPE I (VNI present) or P (next protocol present) flag not set',
  [WireVerdict.BadVersion]: 'unsupported VXLAN-GPE version (only 0 is defined)',
  [WireVerdict.OamPacket]: 'VXLAN-GPE O flag set: an OAM packet, not data',
  [WireVerdict.UnsupportedNextProtocol]: 'VXLAN-GPE next protocol is neither IPv4 nor IPv6',
  [WireVerdict.WrongVni]: 'VNI does not match this network',
  [WireVerdict.InnerVersionMismatch]: 'inner IP version does not match the VXLAN-GPE next protocol',
  [WireVerdict.InnerTooShort]: 'inner packet shorter than its IP header',
  [WireVerdict.InnerLengthMismatch]: 'inner IP length field is inconsistent with the bytes received',
};

export function describeVerdict(verdict: WireVerdict): string {
  return verdictDescription[verdict] ?? `unknown wire verdict ${String(verdict)}`;
}

export function isNextProtocol(value: number): value is NextProtocol {
  return (
    value === NextProtocol.IPv4 ||
    value === NextProtocol.IPv6 ||
    value === NextProtocol.Ethernet ||
    value === NextProtocol.Nsh
  );
}

function assertInBuffer(buf: Uint8Array, offset: number, length: number): void {
  if (!(offset >= 0 && length >= 0 && offset + length <= buf.length)) {
    throw new RangeError(`range [${offset}, ${offset + length}) outside a ${buf.length}-byte buffer`);
  }
}

/**
 * The 8-byte VXLAN-GPE header for a VNI and next protocol: version 0, I and P set, B and O clear,
 * reserved bytes zero. A sender builds it once and copies it in front of every packet.
 */
export function gpeHeader(vni: number, nextProtocol: NextProtocol): Uint8Array {
  if (!Number.isInteger(vni) || vni < 0 || vni > GPE_MAX_VNI) throw new RangeError(`VNI ${vni}`);
  if (!isNextProtocol(nextProtocol)) throw new RangeError(`VXLAN-GPE next protocol ${nextProtocol}`);
  return Uint8Array.of(GPE_REQUIRED_FLAGS, 0, 0, nextProtocol, vni >>> 16, (vni >>> 8) & 0xff, vni & 0xff, 0);
}

/** Writes {@link gpeHeader} at buf[offset]. */
export function writeGpeHeader(
  buf: Uint8Array,
  offset: number,
  vni: number,
  nextProtocol: NextProtocol,
): void {
  const header = gpeHeader(vni, nextProtocol);
  assertInBuffer(buf, offset, GPE_HEADER_LENGTH);
  buf.set(header, offset);
}

function readVni(buf: Uint8Array, offset: number): number {
  return (
    (((buf[offset + 4] as number) << 16) |
      ((buf[offset + 5] as number) << 8) |
      (buf[offset + 6] as number)) >>>
    0
  );
}

function checkInnerPacket(
  buf: Uint8Array,
  off: number,
  available: number,
  nextProtocol: InnerProtocol,
): WireVerdict {
  if (available < 1) return WireVerdict.InnerTooShort;
  const version = ipVersion(buf, off);
  if (nextProtocol === NextProtocol.IPv4) {
    if (version !== 4) return WireVerdict.InnerVersionMismatch;
    if (available < IPV4_MIN_HEADER_LENGTH) return WireVerdict.InnerTooShort;
    const headerLength = ipv4HeaderLength(buf, off);
    if (headerLength < IPV4_MIN_HEADER_LENGTH || headerLength > available) return WireVerdict.InnerTooShort;
    const totalLength = ipv4TotalLength(buf, off);
    if (totalLength < headerLength || totalLength > available) return WireVerdict.InnerLengthMismatch;
    return WireVerdict.Ok;
  }
  if (version !== 6) return WireVerdict.InnerVersionMismatch;
  if (available < IPV6_HEADER_LENGTH) return WireVerdict.InnerTooShort;
  if (ipv6PayloadLength(buf, off) + IPV6_HEADER_LENGTH > available) return WireVerdict.InnerLengthMismatch;
  return WireVerdict.Ok;
}

/**
 * Checks the datagram buf[offset, offset + length) received from the underlay and returns Ok or
 * the first reason to drop it. Never throws on any packet content; throws RangeError only if the
 * range lies outside `buf` (a caller bug).
 *
 * Reserved bits are ignored on receipt, as the draft requires (Linux is stricter and drops them).
 * Bytes after the inner packet's stated length are accepted: forward only innerPacketLength().
 */
export function checkGpeDatagram(
  buf: Uint8Array,
  offset: number,
  length: number,
  expectedVni: number,
): WireVerdict {
  assertInBuffer(buf, offset, length);
  if (length < GPE_HEADER_LENGTH) return WireVerdict.TooShort;
  const flags = buf[offset] as number;
  if ((flags & GPE_REQUIRED_FLAGS) !== GPE_REQUIRED_FLAGS) return WireVerdict.BadFlags;
  if ((flags & GPE_VERSION_MASK) !== 0) return WireVerdict.BadVersion;
  if ((flags & GpeFlag.Oam) !== 0) return WireVerdict.OamPacket;
  const nextProtocol = buf[offset + 3];
  if (nextProtocol !== NextProtocol.IPv4 && nextProtocol !== NextProtocol.IPv6) {
    return WireVerdict.UnsupportedNextProtocol;
  }
  if (readVni(buf, offset) !== expectedVni) return WireVerdict.WrongVni;
  return checkInnerPacket(buf, offset + GPE_HEADER_LENGTH, length - GPE_HEADER_LENGTH, nextProtocol);
}

/**
 * The length the IP packet at buf[innerOffset] says it has (IPv4 total length, or IPv6 payload
 * length + 40), capped at `available`. For a datagram that passed checkGpeDatagram this is the
 * exact number of bytes to forward; for anything that is not IPv4 or IPv6, or is too short to
 * hold its length field, it is 0.
 */
export function innerPacketLength(buf: Uint8Array, innerOffset: number, available: number): number {
  if (available < 1) return 0;
  const version = ipVersion(buf, innerOffset);
  if (version === 4 && available >= 4) return Math.min(ipv4TotalLength(buf, innerOffset), available);
  if (version === 6 && available >= 6) {
    return Math.min(ipv6PayloadLength(buf, innerOffset) + IPV6_HEADER_LENGTH, available);
  }
  return 0;
}

export interface GpeHeader {
  vni: number;
  nextProtocol: NextProtocol;
}

export type GpeDecodeResult =
  | { ok: true; vni: number; nextProtocol: InnerProtocol; innerOffset: number; innerLength: number }
  | { ok: false; verdict: WireRejection; reason: string };

/** checkGpeDatagram, with the parsed fields or a readable reason. Allocates a result object. */
export function decodeGpe(
  buf: Uint8Array,
  offset: number,
  length: number,
  expectedVni: number,
): GpeDecodeResult {
  const verdict = checkGpeDatagram(buf, offset, length, expectedVni);
  if (verdict !== WireVerdict.Ok) return { ok: false, verdict, reason: describeVerdict(verdict) };
  const innerOffset = offset + GPE_HEADER_LENGTH;
  return {
    ok: true,
    vni: readVni(buf, offset),
    nextProtocol: buf[offset + 3] as InnerProtocol,
    innerOffset,
    innerLength: innerPacketLength(buf, innerOffset, length - GPE_HEADER_LENGTH),
  };
}

/** A new buffer holding the header followed by a copy of `inner`. */
export function encodeGpe(header: GpeHeader, inner: Uint8Array): Buffer {
  const datagram = Buffer.allocUnsafe(GPE_HEADER_LENGTH + inner.length);
  writeGpeHeader(datagram, 0, header.vni, header.nextProtocol);
  datagram.set(inner, GPE_HEADER_LENGTH);
  return datagram;
}

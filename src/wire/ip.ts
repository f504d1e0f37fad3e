/**
 * Peeks at fields of an IP packet that starts at `off` inside a larger buffer.
 *
 * These read in place and allocate nothing; they do no bounds checking, so callers must first
 * make sure the header is present (see checkGpeDatagram). Addresses are unsigned 32-bit numbers,
 * the form PacketBatch.addrs uses (10.0.0.1 = 0x0a000001).
 */

export const IPV4_MIN_HEADER_LENGTH = 20;
export const IPV6_HEADER_LENGTH = 40;

// Uint8Array indexing is typed `number | undefined`; every caller has checked the bounds.
function byteAt(buf: Uint8Array, i: number): number {
  return buf[i] as number;
}

function uint16At(buf: Uint8Array, i: number): number {
  return (byteAt(buf, i) << 8) | byteAt(buf, i + 1);
}

function uint32At(buf: Uint8Array, i: number): number {
  return (
    ((byteAt(buf, i) << 24) | (byteAt(buf, i + 1) << 16) | (byteAt(buf, i + 2) << 8) | byteAt(buf, i + 3)) >>>
    0
  );
}

/** The version nibble: 4 or 6 for a well-formed packet. */
export function ipVersion(buf: Uint8Array, off: number): number {
  return byteAt(buf, off) >>> 4;
}

/** IHL in bytes (IHL * 4): 20..60. Values below 20 mean a malformed header. */
export function ipv4HeaderLength(buf: Uint8Array, off: number): number {
  return (byteAt(buf, off) & 0x0f) * 4;
}

/** Header plus payload, in bytes. */
export function ipv4TotalLength(buf: Uint8Array, off: number): number {
  return uint16At(buf, off + 2);
}

export function ipv4Ttl(buf: Uint8Array, off: number): number {
  return byteAt(buf, off + 8);
}

export function ipv4Source(buf: Uint8Array, off: number): number {
  return uint32At(buf, off + 12);
}

export function ipv4Destination(buf: Uint8Array, off: number): number {
  return uint32At(buf, off + 16);
}

/** Bytes after the fixed 40-byte header, extension headers included. */
export function ipv6PayloadLength(buf: Uint8Array, off: number): number {
  return uint16At(buf, off + 4);
}

export function ipv6HopLimit(buf: Uint8Array, off: number): number {
  return byteAt(buf, off + 7);
}

/** One's-complement sum of the IPv4 header's 16-bit words, folded to 16 bits. */
function ipv4HeaderSum(buf: Uint8Array, off: number, skipChecksumField: boolean): number {
  const end = off + ipv4HeaderLength(buf, off);
  let sum = 0;
  for (let i = off; i < end; i += 2) {
    if (skipChecksumField && i === off + 10) continue;
    sum += uint16At(buf, i);
  }
  // At most 30 words of 0xffff: two folds always suffice.
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum & 0xffff) + (sum >>> 16);
}

/**
 * The value the header checksum field (bytes 10–11) should hold: the RFC 791 checksum over
 * IHL * 4 bytes, computed as if the field were zero.
 */
export function ipv4HeaderChecksum(buf: Uint8Array, off: number): number {
  return ~ipv4HeaderSum(buf, off, true) & 0xffff;
}

/** True when the header, checksum field included, sums to 0xffff (RFC 1071). */
export function verifyIpv4HeaderChecksum(buf: Uint8Array, off: number): boolean {
  return ipv4HeaderSum(buf, off, false) === 0xffff;
}

/**
 * Completing a TCP/UDP checksum that a sender left partial (`partial-csum` between weft peers):
 * the checksum field holds only the pseudo-header sum, as the kernel leaves it for
 * CHECKSUM_PARTIAL, and the rest is summed here, for a receiver that cannot hand the packet to the
 * kernel as CHECKSUM_PARTIAL (a TUN without the virtio header).
 */
import { ipv4HeaderLength, ipv4TotalLength } from './ip.js';

const PROTOCOL_TCP = 6;
const PROTOCOL_UDP = 17;
const TCP_CHECKSUM_OFFSET = 16;
const UDP_CHECKSUM_OFFSET = 6;
/** Flags and fragment offset: MF or a non-zero offset means the L4 header may not be in this packet. */
const FRAGMENT_MASK = 0x3fff;

/**
 * The offset of the checksum field inside the L4 header of the IPv4 packet at `off` (`length`
 * bytes) when it is a TCP (16) or UDP (6) packet, not a fragment, with that field present; else 0.
 * The same test as the addon's partial_csum_offset, which decides what a sender may leave partial.
 */
export function partialChecksumFieldOffset(buf: Uint8Array, off: number, length: number): number {
  if (length < 20 || (buf[off] as number) >> 4 !== 4) return 0;
  const ihl = ipv4HeaderLength(buf, off);
  if (ihl < 20 || ((((buf[off + 6] as number) << 8) | (buf[off + 7] as number)) & FRAGMENT_MASK) !== 0)
    return 0;
  const protocol = buf[off + 9];
  const field =
    protocol === PROTOCOL_TCP ? TCP_CHECKSUM_OFFSET : protocol === PROTOCOL_UDP ? UDP_CHECKSUM_OFFSET : 0;
  return field !== 0 && ihl + field + 2 <= length ? field : 0;
}

/**
 * Finishes the partial TCP/UDP checksum of the IPv4 packet at `off` in place (RFC 1071 over the L4
 * header and payload, seeded by the pseudo-header sum already in the field). Returns false, and
 * changes nothing, when the packet is not one a sender may leave partial.
 */
export function completePartialChecksum(buf: Uint8Array, off: number, length: number): boolean {
  const field = partialChecksumFieldOffset(buf, off, length);
  const total = ipv4TotalLength(buf, off);
  const l4 = off + ipv4HeaderLength(buf, off);
  if (field === 0 || total > length || l4 + field + 2 > off + total) return false;
  const end = off + total;
  let sum = 0;
  let i = l4;
  for (; i + 1 < end; i += 2) sum += ((buf[i] as number) << 8) | (buf[i + 1] as number);
  if (i < end) sum += (buf[i] as number) << 8;
  // At most 32 K words of 0xffff: two folds always suffice.
  sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  sum = (sum & 0xffff) + (sum >>> 16);
  let check = ~sum & 0xffff;
  // RFC 768: a computed UDP checksum of zero is sent as all ones (zero means "none").
  if (check === 0 && field === UDP_CHECKSUM_OFFSET) check = 0xffff;
  buf[l4 + field] = check >> 8;
  buf[l4 + field + 1] = check & 0xff;
  return true;
}

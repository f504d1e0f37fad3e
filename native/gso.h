/*
 * Segmentation and coalescing of IPv4 super-packets for the offload data path: pure functions on
 * memory, no syscalls, so the addon's I/O calls and its test exports share one implementation.
 */
#ifndef WEFT_GSO_H
#define WEFT_GSO_H

#include <stdint.h>

/* The virtio_net_hdr a TUN opened with IFF_VNET_HDR puts in front of every packet (native endian). */
#define VNET_HDR_LEN 10
/* One segment's rebuilt headers: GPE (8) + IPv4 (<= 60) + TCP (<= 60) or UDP (8), rounded up. */
#define GSO_HDR_SLOT 128
/* A super-packet with more segments than this is dropped as malformed (MSS below 16 bytes). */
#define GSO_MAX_SEGMENTS 4096
/* Coalesced runs stop at this many segments (and at 65535 bytes). */
#define GRO_MAX_SEGMENTS 64
#define GPE_LEN 8
/*
 * A bit of the GPE header's reserved field (byte 2) meaning "the inner TCP/UDP checksum is partial":
 * it holds the pseudo-header sum, and the receiver must hand the packet on as CHECKSUM_PARTIAL
 * (NEEDS_CSUM). Sent only to peers that announce they understand it; the kernel's vxlan-gpe drops
 * datagrams with reserved bits set.
 */
#define GPE_PARTIAL_BYTE 2
#define GPE_PARTIAL_BIT 0x01

/* One datagram (GSO) or inner packet (GRO) as up to two pieces: rebuilt header + untouched payload. */
typedef struct {
  const uint8_t *hdr;
  uint32_t hdr_len;
  const uint8_t *payload;
  uint32_t payload_len;
} gso_piece;

/* RFC 1071 one's-complement sum over bytes, in the native-order representation (fold at the end). */
uint64_t csum_add(const uint8_t *data, uint32_t len, uint64_t sum);
uint16_t csum_fold(uint64_t sum);

/*
 * How many segments the TUN read [vnet_hdr][IPv4 packet] of `len` bytes becomes; 0 when it is
 * malformed or of a kind we do not segment (it is then dropped).
 */
uint32_t gso_count(const uint8_t *pkt, uint32_t len);

/*
 * Turns one TUN read into `count` GPE datagrams (count from gso_count). Headers are rebuilt in
 * hdr_space (count * GSO_HDR_SLOT bytes) with complete inner checksums; payloads are referenced in
 * place. A packet that needs no segmentation is finished in place (checksum, GPE header over the
 * vnet header). *datagram_size is the size of every datagram but the last (for UDP_SEGMENT).
 * With `partial`, TCP/UDP checksums are left partial (pseudo-header sum) and their datagrams carry
 * GPE_PARTIAL_BIT; other packets are still completed.
 */
void gso_segment(uint8_t *pkt, uint32_t len, const uint8_t gpe[GPE_LEN], int partial, uint8_t *hdr_space,
                 gso_piece *pieces, uint32_t *datagram_size);

/*
 * The offset of the checksum field inside the L4 header of IPv4 packet p (len bytes) when it is a
 * TCP or UDP packet whose checksum can be left to the receiver as CHECKSUM_PARTIAL (16 or 6), else 0.
 */
uint32_t partial_csum_offset(const uint8_t *p, uint32_t len);

/*
 * Finishes in place the TCP/UDP checksum of IPv4 packet p (len bytes) whose checksum field holds only
 * the pseudo-header sum, for a TUN that cannot take it as CHECKSUM_PARTIAL. Returns 0, changing
 * nothing, when partial_csum_offset is 0 or the packet's total length does not fit len.
 */
int complete_partial_csum(uint8_t *p, uint32_t len);

/* The virtio_net_hdr (VNET_HDR_LEN bytes at hdr) for writing a single packet p whose checksum is partial. */
void partial_vnet_header(const uint8_t *p, uint32_t len, uint8_t *hdr);

/*
 * The number of packets from index `first` (< n) that coalesce into one TCP super-packet, or with
 * coalesce_udp into one UDP (USO) super-packet (1 when packet `first` cannot be merged with the
 * next). Packets are whole, validated IPv4 packets.
 */
uint32_t gro_run_length(const uint8_t *buf, const uint32_t *offsets, const uint32_t *lengths, uint32_t first,
                        uint32_t n, int coalesce_udp);

/*
 * Writes the vnet header (and for count > 1 the merged IPv4/TCP header right after it) for the run
 * [first, first+count) into hdr (VNET_HDR_LEN + 120 bytes) and returns the bytes written. The
 * packet is then hdr followed by packet `first` whole (count 1) or every packet's TCP payload.
 */
uint32_t gro_build_header(const uint8_t *buf, const uint32_t *offsets, const uint32_t *lengths, uint32_t first,
                          uint32_t count, uint8_t *hdr);

/* Offset of the L4 payload in packet p (whole IPv4 TCP or UDP packet that passed gro_run_length > 1). */
uint32_t gro_payload_offset(const uint8_t *p);

#endif

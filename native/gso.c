/*
 * Segmentation (TUN TSO/USO super-packet -> GPE datagrams) and coalescing (consecutive TCP segments
 * of a flow -> one GSO super-packet for a TUN write). See gso.h.
 *
 * Checksums are summed over native-order 16-bit loads; RFC 1071 sums are byte-order independent, so
 * a folded result stored with memcpy is already in network order. Constants added to a sum are
 * converted with htons for the same reason.
 */
#include "gso.h"

#include <arpa/inet.h>
#include <linux/virtio_net.h>
#include <stdbool.h>
#include <string.h>

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_CWR 0x80
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
/* USO (Linux 5.18+); Debian 12's headers predate it. */
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

static inline uint64_t add64(uint64_t sum, uint64_t value) {
  sum += value;
  return sum + (sum < value); /* end-around carry */
}

/*
 * 32-bit words into four 64-bit accumulators: no carry chain, so the compiler can vectorize it. A
 * packet (< 2^16 bytes) cannot overflow them.
 */
uint64_t csum_add(const uint8_t *data, uint32_t len, uint64_t sum) {
  uint64_t acc[4] = {0, 0, 0, 0};
  while (len >= 16) {
    uint32_t w[4];
    memcpy(w, data, 16);
    for (int k = 0; k < 4; k++) acc[k] += w[k];
    data += 16;
    len -= 16;
  }
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, data, 4);
    acc[0] += w;
    data += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t v;
    memcpy(&v, data, 2);
    acc[1] += v;
    data += 2;
    len -= 2;
  }
  if (len) {
    uint8_t last[2] = {data[0], 0};
    uint16_t v;
    memcpy(&v, last, 2);
    acc[2] += v;
  }
  return add64(add64(add64(add64(sum, acc[0]), acc[1]), acc[2]), acc[3]);
}

uint16_t csum_fold(uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  uint32_t s = (uint32_t)sum;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}

static inline uint16_t get16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v) {
  p[0] = v >> 8;
  p[1] = v & 0xff;
}

static inline void put32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = (v >> 16) & 0xff;
  p[2] = (v >> 8) & 0xff;
  p[3] = v & 0xff;
}

/* Pseudo-header sum for an IPv4 packet's L4 segment of l4_len bytes. */
static uint64_t pseudo_sum(const uint8_t *ip, uint8_t protocol, uint32_t l4_len) {
  uint64_t sum = csum_add(ip + 12, 8, 0);
  sum = add64(sum, htons(protocol));
  return add64(sum, htons((uint16_t)l4_len));
}

static void set_ip_checksum(uint8_t *ip, uint32_t ihl) {
  ip[10] = ip[11] = 0;
  uint16_t check = (uint16_t)~csum_fold(csum_add(ip, ihl, 0));
  memcpy(ip + 10, &check, 2);
}

static struct virtio_net_hdr read_vnet(const uint8_t *pkt) {
  struct virtio_net_hdr h;
  memcpy(&h, pkt, sizeof h);
  return h;
}

/* The L4 header length of a GSO super-packet, or 0 when it is not one we can segment. */
static uint32_t gso_l4_header(const uint8_t *ip, uint32_t ip_len, uint8_t gso_type) {
  uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
  if (ip_len < 20 || ip[0] >> 4 != 4 || ihl < 20) return 0;
  if (gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && ip[9] == IPPROTO_TCP_ && ip_len >= ihl + 20) {
    uint32_t doff = (uint32_t)(ip[ihl + 12] >> 4) * 4;
    return doff >= 20 && ihl + doff <= ip_len ? doff : 0;
  }
  if (gso_type == VIRTIO_NET_HDR_GSO_UDP_L4 && ip[9] == IPPROTO_UDP_ && ip_len >= ihl + 8) return 8;
  return 0;
}

uint32_t gso_count(const uint8_t *pkt, uint32_t len) {
  if (len < VNET_HDR_LEN + 20) return 0;
  struct virtio_net_hdr h = read_vnet(pkt);
  const uint8_t *ip = pkt + VNET_HDR_LEN;
  uint32_t ip_len = len - VNET_HDR_LEN;
  uint8_t gso_type = h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
  if (gso_type == VIRTIO_NET_HDR_GSO_NONE) {
    if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
      if ((uint32_t)h.csum_start + h.csum_offset + 2 > ip_len) return 0;
    }
    return 1;
  }
  uint32_t l4 = gso_l4_header(ip, ip_len, gso_type);
  if (l4 == 0 || h.gso_size == 0) return 0;
  uint32_t payload = ip_len - (uint32_t)(ip[0] & 15) * 4 - l4;
  uint32_t count = payload == 0 ? 1 : (payload + h.gso_size - 1) / h.gso_size;
  return count <= GSO_MAX_SEGMENTS ? count : 0;
}

void gso_segment(uint8_t *pkt, uint32_t len, const uint8_t gpe[GPE_LEN], int partial, uint8_t *hdr_space,
                 gso_piece *pieces, uint32_t *datagram_size) {
  struct virtio_net_hdr h = read_vnet(pkt);
  uint8_t *ip = pkt + VNET_HDR_LEN;
  uint32_t ip_len = len - VNET_HDR_LEN;
  uint8_t gso_type = h.gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

  if (gso_type == VIRTIO_NET_HDR_GSO_NONE) {
    bool leave_partial = false;
    if (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
      /* The checksum field holds the pseudo-header sum: the receiver completes it, or the sum over the rest does. */
      uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
      leave_partial = partial && h.csum_start == ihl && h.csum_offset != 0 &&
                      h.csum_offset == partial_csum_offset(ip, ip_len);
      if (!leave_partial) {
        uint16_t check = (uint16_t)~csum_fold(csum_add(ip + h.csum_start, ip_len - h.csum_start, 0));
        memcpy(ip + h.csum_start + h.csum_offset, &check, 2);
      }
    }
    memcpy(ip - GPE_LEN, gpe, GPE_LEN);
    if (leave_partial) ip[GPE_PARTIAL_BYTE - GPE_LEN] |= GPE_PARTIAL_BIT;
    pieces[0] = (gso_piece){ip - GPE_LEN, ip_len + GPE_LEN, NULL, 0};
    *datagram_size = ip_len + GPE_LEN;
    return;
  }

  uint32_t ihl = (uint32_t)(ip[0] & 15) * 4;
  uint32_t l4 = gso_l4_header(ip, ip_len, gso_type);
  uint32_t hl = ihl + l4;
  uint32_t mss = h.gso_size;
  uint32_t payload = ip_len - hl;
  uint32_t count = payload == 0 ? 1 : (payload + mss - 1) / mss;
  int tcp = gso_type == VIRTIO_NET_HDR_GSO_TCPV4;
  uint16_t id0 = get16(ip + 4);
  uint32_t seq0 = tcp ? get32(ip + ihl + 4) : 0;
  for (uint32_t j = 0; j < count; j++) {
    uint32_t pl = payload - j * mss < mss ? payload - j * mss : mss;
    const uint8_t *data = ip + hl + j * mss;
    uint8_t *seg = hdr_space + (size_t)j * GSO_HDR_SLOT;
    memcpy(seg, gpe, GPE_LEN);
    uint8_t *sip = seg + GPE_LEN;
    memcpy(sip, ip, hl);
    put16(sip + 2, (uint16_t)(hl + pl));
    put16(sip + 4, (uint16_t)(id0 + j));
    set_ip_checksum(sip, ihl);
    uint8_t *l4h = sip + ihl;
    uint8_t protocol;
    if (tcp) {
      put32(l4h + 4, seq0 + j * mss);
      if (j + 1 < count) l4h[13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
      if (j > 0) l4h[13] &= (uint8_t)~TCP_CWR;
      l4h[16] = l4h[17] = 0;
      protocol = IPPROTO_TCP_;
    } else {
      put16(l4h + 4, (uint16_t)(8 + pl));
      l4h[6] = l4h[7] = 0;
      protocol = IPPROTO_UDP_;
    }
    uint64_t sum = pseudo_sum(sip, protocol, l4 + pl);
    uint16_t check;
    if (partial) {
      check = csum_fold(sum); /* CHECKSUM_PARTIAL: the pseudo-header sum, not inverted */
      seg[GPE_PARTIAL_BYTE] |= GPE_PARTIAL_BIT;
    } else {
      check = (uint16_t)~csum_fold(csum_add(data, pl, csum_add(l4h, l4, sum)));
      if (!tcp && check == 0) check = 0xffff; /* 0 would mean "no checksum" for UDP */
    }
    memcpy(l4h + (tcp ? 16 : 6), &check, 2);
    pieces[j] = (gso_piece){seg, GPE_LEN + hl, data, pl};
  }
  *datagram_size = GPE_LEN + hl + mss;
}

/* ---------------------------------------------------------------------------------------------- */
/* Coalescing                                                                                      */

static inline uint32_t tcp_header_len(const uint8_t *p) {
  return (uint32_t)(p[20 + 12] >> 4) * 4;
}

static inline uint32_t tcp_payload_len(const uint8_t *p, uint32_t len) {
  return len - 20 - tcp_header_len(p);
}

/* A plain IPv4 (no options, not a fragment) TCP data segment with only ACK (and maybe PSH) set. */
static int is_tcp_candidate(const uint8_t *p, uint32_t len) {
  if (len < 40 || p[0] != 0x45 || p[9] != IPPROTO_TCP_) return 0;
  if ((p[6] & 0x3f) != 0 || p[7] != 0 || get16(p + 2) != len) return 0;
  uint32_t doff = tcp_header_len(p);
  if (doff < 20 || 20 + doff >= len) return 0;
  uint8_t flags = p[20 + 13];
  return (flags & TCP_ACK) && (flags & ~(TCP_ACK | TCP_PSH)) == 0;
}

/* A plain IPv4 (no options, not a fragment) UDP datagram with a payload and a consistent UDP length. */
static int is_udp_candidate(const uint8_t *p, uint32_t len) {
  if (len <= 28 || p[0] != 0x45 || p[9] != IPPROTO_UDP_) return 0;
  if ((p[6] & 0x3f) != 0 || p[7] != 0 || get16(p + 2) != len) return 0;
  return get16(p + 24) == len - 20;
}

/* Same IP header apart from length, id and checksum: TOS, TTL, DF, protocol, addresses. */
static int same_ip(const uint8_t *a, const uint8_t *b) {
  return a[1] == b[1] && a[8] == b[8] && a[9] == b[9] && (a[6] & 0x40) == (b[6] & 0x40) &&
         memcmp(a + 12, b + 12, 8) == 0;
}

/* Same flow and the same TCP header apart from sequence number, checksum and PSH. */
static int same_tcp_flow(const uint8_t *a, const uint8_t *b) {
  const uint8_t *ta = a + 20, *tb = b + 20;
  uint32_t doff = tcp_header_len(a);
  return same_ip(a, b) && memcmp(ta, tb, 4) == 0 && memcmp(ta + 8, tb + 8, 5) == 0 &&
         memcmp(ta + 14, tb + 14, 2) == 0 && memcmp(ta + 20, tb + 20, doff - 20) == 0;
}

static uint32_t tcp_run_length(const uint8_t *buf, const uint32_t *offsets, const uint32_t *lengths,
                               uint32_t first, uint32_t n) {
  const uint8_t *head = buf + offsets[first];
  uint32_t segment = tcp_payload_len(head, lengths[first]);
  uint32_t total = lengths[first];
  const uint8_t *prev = head;
  uint32_t prev_payload = segment;
  uint32_t count = 1;
  for (uint32_t i = first + 1; i < n && count < GRO_MAX_SEGMENTS; i++) {
    const uint8_t *p = buf + offsets[i];
    uint32_t len = lengths[i];
    if (prev_payload != segment || (prev[20 + 13] & TCP_PSH) || !is_tcp_candidate(p, len)) break;
    if (!same_tcp_flow(head, p)) break;
    uint32_t payload = tcp_payload_len(p, len);
    if (payload > segment || total + payload > 65535) break;
    if (get32(p + 24) != get32(prev + 24) + prev_payload) break;
    total += payload;
    prev = p;
    prev_payload = payload;
    count++;
  }
  return count;
}

/* Datagrams of one UDP flow, all of the first one's size except a shorter last one (what USO cuts back). */
static uint32_t udp_run_length(const uint8_t *buf, const uint32_t *offsets, const uint32_t *lengths,
                               uint32_t first, uint32_t n) {
  const uint8_t *head = buf + offsets[first];
  uint32_t size = lengths[first];
  uint32_t total = size;
  uint32_t prev_len = size;
  uint32_t count = 1;
  for (uint32_t i = first + 1; i < n && count < GRO_MAX_SEGMENTS; i++) {
    const uint8_t *p = buf + offsets[i];
    uint32_t len = lengths[i];
    if (prev_len != size || len > size || !is_udp_candidate(p, len)) break;
    if (!same_ip(head, p) || memcmp(head + 20, p + 20, 4) != 0) break;
    if (total + len - 28 > 65535) break;
    total += len - 28;
    prev_len = len;
    count++;
  }
  return count;
}

uint32_t gro_run_length(const uint8_t *buf, const uint32_t *offsets, const uint32_t *lengths, uint32_t first,
                        uint32_t n, int coalesce_udp) {
  const uint8_t *head = buf + offsets[first];
  if (is_tcp_candidate(head, lengths[first])) return tcp_run_length(buf, offsets, lengths, first, n);
  if (coalesce_udp && is_udp_candidate(head, lengths[first])) return udp_run_length(buf, offsets, lengths, first, n);
  return 1;
}

uint32_t gro_payload_offset(const uint8_t *p) {
  return p[9] == IPPROTO_UDP_ ? 28 : 20 + tcp_header_len(p);
}

uint32_t gro_build_header(const uint8_t *buf, const uint32_t *offsets, const uint32_t *lengths, uint32_t first,
                          uint32_t count, uint8_t *hdr) {
  struct virtio_net_hdr v;
  memset(&v, 0, sizeof v);
  if (count == 1) {
    memcpy(hdr, &v, VNET_HDR_LEN);
    return VNET_HDR_LEN;
  }
  const uint8_t *head = buf + offsets[first];
  const uint8_t *last = buf + offsets[first + count - 1];
  uint32_t hl = gro_payload_offset(head);
  uint32_t total = hl;
  for (uint32_t i = first; i < first + count; i++) total += lengths[i] - hl;
  int udp = head[9] == IPPROTO_UDP_;
  v.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  v.gso_type = udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : VIRTIO_NET_HDR_GSO_TCPV4;
  v.hdr_len = (uint16_t)hl;
  v.gso_size = (uint16_t)(lengths[first] - hl);
  v.csum_start = 20;
  v.csum_offset = udp ? 6 : 16;
  memcpy(hdr, &v, VNET_HDR_LEN);
  uint8_t *ip = hdr + VNET_HDR_LEN;
  memcpy(ip, head, hl);
  put16(ip + 2, (uint16_t)total);
  set_ip_checksum(ip, 20);
  if (udp) put16(ip + 20 + 4, (uint16_t)(total - 20));
  else ip[20 + 13] |= last[20 + 13] & TCP_PSH;
  /* CHECKSUM_PARTIAL: the field holds the pseudo-header sum, not inverted; the kernel finishes it. */
  uint16_t partial = csum_fold(pseudo_sum(ip, udp ? IPPROTO_UDP_ : IPPROTO_TCP_, total - 20));
  memcpy(ip + 20 + v.csum_offset, &partial, 2);
  return VNET_HDR_LEN + hl;
}

uint32_t partial_csum_offset(const uint8_t *p, uint32_t len) {
  if (len < 20 || p[0] >> 4 != 4) return 0;
  uint32_t ihl = (uint32_t)(p[0] & 15) * 4;
  if (ihl < 20 || (p[6] & 0x3f) != 0 || p[7] != 0) return 0; /* not a fragment: the L4 header is here */
  uint32_t offset = p[9] == IPPROTO_TCP_ ? 16 : p[9] == IPPROTO_UDP_ ? 6 : 0;
  return offset != 0 && ihl + offset + 2 <= len ? offset : 0;
}

int complete_partial_csum(uint8_t *p, uint32_t len) {
  uint32_t offset = partial_csum_offset(p, len);
  uint32_t ihl = (uint32_t)(p[0] & 15) * 4;
  uint32_t total = get16(p + 2);
  if (offset == 0 || total > len || ihl + offset + 2 > total) return 0;
  /* The field's pseudo-header sum is part of what is summed, so the result covers both. */
  uint16_t check = (uint16_t)~csum_fold(csum_add(p + ihl, total - ihl, 0));
  if (check == 0 && p[9] == IPPROTO_UDP_) check = 0xffff; /* 0 would mean "no checksum" for UDP */
  memcpy(p + ihl + offset, &check, 2);
  return 1;
}

void partial_vnet_header(const uint8_t *p, uint32_t len, uint8_t *hdr) {
  struct virtio_net_hdr v;
  memset(&v, 0, sizeof v);
  uint32_t offset = partial_csum_offset(p, len);
  if (offset != 0) {
    v.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    v.csum_start = (uint16_t)((p[0] & 15) * 4);
    v.csum_offset = (uint16_t)offset;
  }
  memcpy(hdr, &v, VNET_HDR_LEN);
}

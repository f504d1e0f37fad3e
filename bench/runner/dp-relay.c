/*
 * Bench-only comparison point, not shipped: bench/dp-minimal-loop.ts done in C, one thread, no
 * JavaScript per packet. Against `minimal-loop` and `weft` in one bench run it shows what a native
 * I/O loop would buy over the JS loop on the main event loop (issue 8). Same work as minimal-loop:
 * every packet goes to the one peer (no route table, no counters), segmentation and coalescing by
 * native/gso.c, the syscalls batched as in native/weft_dp.c.
 *
 * Usage (as root, in a node namespace): dp-relay <selfIp> <peerIp> [--partial]
 * It creates `weft0`; the caller sets the link up and routes the peer's pods into it. --partial
 * leaves inner TCP/UDP checksums partial on send (GPE_PARTIAL_BIT); the bit is honoured on receive
 * either way. Runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../native/gso.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

#define GPE_PORT 4790
#define VNI 1
#define SOCKET_BUFFER (8 << 20)
/* As minimal-loop: up to BATCH reads per round, ROUNDS rounds per wakeup, then back to epoll. */
#define BATCH 64
#define ROUNDS 8
#define SLOT (VNET_HDR_LEN + 65536 + 6)
/* Largest UDP payload, and the kernel's segment limit per UDP_SEGMENT message (before 6.1). */
#define UDP_MAX_PAYLOAD 65507
#define UDP_MAX_SEGMENTS 64
#define SEND_MESSAGES 256
#define SEND_IOVECS (2 * GSO_MAX_SEGMENTS + SEND_MESSAGES)
#define LIST (BATCH * GRO_MAX_SEGMENTS)
#define GRO_HDR_SPACE (VNET_HDR_LEN + 120)

typedef union {
  char space[CMSG_SPACE(sizeof(uint16_t))];
  struct cmsghdr align;
} segment_control;

typedef union {
  char space[CMSG_SPACE(sizeof(int))];
  struct cmsghdr align;
} gro_control;

static int tun_fd, udp_fd;
static bool partial;
static struct sockaddr_in peer;
static uint8_t gpe[GPE_LEN] = {0x0c, 0, 0, 0x01, (VNI >> 16) & 0xff, (VNI >> 8) & 0xff, VNI & 0xff, 0};

/* Send side: TUN reads, rebuilt segment headers and the sendmmsg vectors that point into both. */
static uint8_t tx_buf[BATCH * SLOT];
static uint32_t tx_len[BATCH];
static uint8_t headers[GSO_MAX_SEGMENTS * GSO_HDR_SLOT];
static gso_piece pieces[GSO_MAX_SEGMENTS];
static struct iovec iovecs[SEND_IOVECS];
static struct mmsghdr messages[SEND_MESSAGES];
static segment_control controls[SEND_MESSAGES];
static uint32_t message_segments[SEND_MESSAGES];
static uint32_t used_segments, used_iovecs, used_messages;
/* The last queued message is a train of single datagrams of train_size bytes that more may join. */
static bool train_open;
static uint32_t train_size;

/* Receive side: datagrams, and the inner packets they hold (offsets into rx_buf). */
static uint8_t rx_buf[BATCH * SLOT];
static struct mmsghdr rx_messages[BATCH];
static struct iovec rx_iovecs[BATCH];
static gro_control rx_controls[BATCH];
static uint32_t list_offsets[LIST], list_lengths[LIST];
static bool list_partial[LIST];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static bool is_queue_full(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == ENOMEM;
}

/* ---------------------------------------------------------------------------------------------- */
/* TUN -> UDP                                                                                      */

/* sendmmsg of the queued messages; a full socket buffer drops the rest, other errors skip one message. */
static void flush_messages(void) {
  uint32_t next = 0;
  while (next < used_messages) {
    int r = sendmmsg(udp_fd, messages + next, used_messages - next, MSG_DONTWAIT);
    if (r > 0) next += (uint32_t)r;
    else if (r < 0 && errno == EINTR) continue;
    else if (r == 0 || is_queue_full(errno)) break;
    else next++;
  }
  used_messages = used_iovecs = 0;
  train_open = false;
}

static void set_segment_size(uint32_t m, uint32_t size) {
  struct cmsghdr *c = &controls[m].align;
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t value = (uint16_t)size;
  memcpy(CMSG_DATA(c), &value, sizeof value);
  messages[m].msg_hdr.msg_control = controls[m].space;
  messages[m].msg_hdr.msg_controllen = sizeof controls[m].space;
}

static uint32_t piece_iovecs(const gso_piece *piece, struct iovec *iov) {
  uint32_t k = 0;
  iov[k++] = (struct iovec){(void *)piece->hdr, piece->hdr_len};
  if (piece->payload_len > 0) iov[k++] = (struct iovec){(void *)piece->payload, piece->payload_len};
  return k;
}

/* Queues `count` datagrams of datagram_size bytes (the last may be shorter) as one message. */
static void queue_message(const gso_piece *p, uint32_t count, uint32_t datagram_size) {
  if (used_messages == SEND_MESSAGES || used_iovecs + 2 * count > SEND_IOVECS) flush_messages();
  uint32_t m = used_messages++;
  struct msghdr *h = &messages[m].msg_hdr;
  memset(h, 0, sizeof *h);
  struct iovec *iov = iovecs + used_iovecs;
  uint32_t k = 0;
  for (uint32_t j = 0; j < count; j++) k += piece_iovecs(&p[j], iov + k);
  used_iovecs += k;
  h->msg_name = &peer;
  h->msg_namelen = sizeof peer;
  h->msg_iov = iov;
  h->msg_iovlen = k;
  message_segments[m] = count;
  if (count > 1) set_segment_size(m, datagram_size);
  train_open = count == 1;
  train_size = p[0].hdr_len + p[0].payload_len;
}

/* Appends a single datagram to the last message when it can end or continue that train. */
static bool join_train(const gso_piece *piece) {
  if (!train_open) return false;
  uint32_t m = used_messages - 1;
  uint32_t size = piece->hdr_len + piece->payload_len;
  uint32_t in_train = message_segments[m];
  if (size > train_size || in_train >= UDP_MAX_SEGMENTS || (in_train + 1) * train_size > UDP_MAX_PAYLOAD ||
      used_iovecs + 2 > SEND_IOVECS)
    return false;
  uint32_t k = piece_iovecs(piece, iovecs + used_iovecs);
  used_iovecs += k;
  messages[m].msg_hdr.msg_iovlen += k;
  message_segments[m] = in_train + 1;
  if (in_train == 1) set_segment_size(m, train_size);
  if (size < train_size) train_open = false;
  return true;
}

/* Segments the n TUN reads in tx_buf into GPE datagrams and sends them to the peer. */
static void send_batch(uint32_t n) {
  used_segments = used_iovecs = used_messages = 0;
  train_open = false;
  for (uint32_t i = 0; i < n; i++) {
    uint8_t *pkt = tx_buf + (size_t)i * SLOT + GPE_LEN;
    uint32_t segs = gso_count(pkt, tx_len[i]);
    if (segs == 0) continue;
    if (used_segments + segs > GSO_MAX_SEGMENTS) {
      flush_messages();
      used_segments = 0;
    }
    gso_piece *p = pieces + used_segments;
    uint32_t datagram_size;
    gso_segment(pkt, tx_len[i], gpe, partial, headers + (size_t)used_segments * GSO_HDR_SLOT, p, &datagram_size);
    used_segments += segs;
    if (segs == 1 && join_train(p)) continue;
    uint32_t per_message = UDP_MAX_PAYLOAD / datagram_size;
    if (per_message > UDP_MAX_SEGMENTS) per_message = UDP_MAX_SEGMENTS;
    if (per_message == 0) per_message = 1;
    for (uint32_t k = 0; k < segs; k += per_message)
      queue_message(p + k, segs - k < per_message ? segs - k : per_message, datagram_size);
  }
  flush_messages();
}

/* Reads up to BATCH packets (each at its slot + GPE_LEN of headroom); truncated ones are dropped. */
static uint32_t tun_read_batch(void) {
  uint32_t n = 0;
  while (n < BATCH) {
    uint8_t spare;
    struct iovec iov[2] = {{tx_buf + (size_t)n * SLOT + GPE_LEN, SLOT - GPE_LEN}, {&spare, 1}};
    ssize_t got = readv(tun_fd, iov, 2);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (got > SLOT - GPE_LEN) continue;
    tx_len[n++] = (uint32_t)got;
  }
  return n;
}

static void on_tun_readable(void) {
  for (int round = 0; round < ROUNDS; round++) {
    uint32_t n = tun_read_batch();
    if (n > 0) send_batch(n);
    if (n < BATCH) return;
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* UDP -> TUN                                                                                      */

static bool tun_write(const struct iovec *iov, uint32_t k, bool *full) {
  ssize_t r;
  do r = writev(tun_fd, iov, (int)k);
  while (r < 0 && errno == EINTR);
  if (r < 0 && is_queue_full(errno)) *full = true;
  return r >= 0;
}

/* One inner packet alone: empty vnet header, or NEEDS_CSUM when its sender left the checksum partial. */
static bool tun_write_single(uint32_t i, bool *full) {
  uint8_t hdr[GRO_HDR_SPACE];
  uint32_t hdr_len = gro_build_header(rx_buf, list_offsets, list_lengths, i, 1, hdr);
  if (list_partial[i]) partial_vnet_header(rx_buf + list_offsets[i], list_lengths[i], hdr);
  struct iovec iov[2] = {{hdr, hdr_len}, {rx_buf + list_offsets[i], list_lengths[i]}};
  return tun_write(iov, 2, full);
}

/* Writes the inner packets in the list to the TUN, runs of one flow coalesced into super-packets. */
static void tun_write_gro(uint32_t count) {
  uint8_t hdr[GRO_HDR_SPACE];
  struct iovec iov[GRO_MAX_SEGMENTS + 1];
  bool full = false;
  for (uint32_t i = 0; i < count && !full;) {
    uint32_t run = gro_run_length(rx_buf, list_offsets, list_lengths, i, count, 1);
    if (run == 1) {
      tun_write_single(i++, &full);
      continue;
    }
    iov[0] = (struct iovec){hdr, gro_build_header(rx_buf, list_offsets, list_lengths, i, run, hdr)};
    uint32_t skip = gro_payload_offset(rx_buf + list_offsets[i]);
    for (uint32_t j = 0; j < run; j++)
      iov[1 + j] = (struct iovec){rx_buf + list_offsets[i + j] + skip, list_lengths[i + j] - skip};
    if (!tun_write(iov, run + 1, &full) && !full) /* the kernel refused the run: one by one */
      for (uint32_t j = i; j < i + run && !full; j++) tun_write_single(j, &full);
    i += run;
  }
}

/* The segment size of a datagram the kernel coalesced (UDP_GRO), or 0 for a plain datagram. */
static uint32_t gro_segment_size(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int size;
      memcpy(&size, CMSG_DATA(c), sizeof size);
      return size > 0 ? (uint32_t)size : 0;
    }
  }
  return 0;
}

/* The inner IPv4 packet's length when the datagram carries one for our VNI, else 0 (dropped). */
static uint32_t inner_length(const uint8_t *d, uint32_t len) {
  if (len < GPE_LEN + 20 || (d[0] & 0x0c) != 0x0c || d[3] != 0x01 || memcmp(d + 4, gpe + 4, 3) != 0) return 0;
  const uint8_t *ip = d + GPE_LEN;
  uint32_t total = (uint32_t)ip[2] << 8 | ip[3];
  if (ip[0] >> 4 != 4 || total < (uint32_t)(ip[0] & 15) * 4 || total > len - GPE_LEN) return 0;
  return total;
}

static uint32_t udp_recv_batch(void) {
  for (uint32_t j = 0; j < BATCH; j++) {
    rx_iovecs[j] = (struct iovec){rx_buf + (size_t)j * SLOT, SLOT};
    rx_messages[j].msg_hdr = (struct msghdr){.msg_iov = &rx_iovecs[j],
                                             .msg_iovlen = 1,
                                             .msg_control = rx_controls[j].space,
                                             .msg_controllen = sizeof rx_controls[j].space};
  }
  int r;
  do r = recvmmsg(udp_fd, rx_messages, BATCH, MSG_DONTWAIT, NULL);
  while (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK); /* EINTR, or an ICMP error reported once */
  return r < 0 ? 0 : (uint32_t)r;
}

static void on_udp_readable(void) {
  for (int round = 0; round < ROUNDS; round++) {
    uint32_t n = udp_recv_batch();
    uint32_t count = 0;
    for (uint32_t i = 0; i < n; i++) {
      if (rx_messages[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
      uint32_t length = rx_messages[i].msg_len;
      uint32_t size = gro_segment_size(&rx_messages[i].msg_hdr);
      if (size == 0) size = length;
      for (uint32_t at = 0; at < length; at += size) {
        uint32_t offset = i * SLOT + at;
        uint32_t datagram = length - at < size ? length - at : size;
        uint32_t inner = inner_length(rx_buf + offset, datagram);
        if (inner == 0) continue;
        list_offsets[count] = offset + GPE_LEN;
        list_lengths[count] = inner;
        list_partial[count] = rx_buf[offset + GPE_PARTIAL_BYTE] & GPE_PARTIAL_BIT;
        if (++count == LIST) {
          tun_write_gro(count);
          count = 0;
        }
      }
    }
    if (count > 0) tun_write_gro(count);
    if (n < BATCH) return;
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* Setup                                                                                           */

static void open_tun(void) {
  tun_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (tun_fd < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "weft0");
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(tun_fd, TUNSETIFF, &ifr) < 0) die("ioctl TUNSETIFF");
  if (ioctl(tun_fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_USO4 | TUN_F_USO6) < 0 &&
      ioctl(tun_fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4) < 0)
    die("ioctl TUNSETOFFLOAD");
}

static void parse_ip(const char *text, struct sockaddr_in *address) {
  *address = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(GPE_PORT)};
  if (inet_pton(AF_INET, text, &address->sin_addr) != 1) {
    fprintf(stderr, "dp-relay: not an IPv4 address: %s\n", text);
    exit(2);
  }
}

static void open_udp(const char *self) {
  struct sockaddr_in address;
  parse_ip(self, &address);
  udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (udp_fd < 0) die("socket");
  int one = 1, size = SOCKET_BUFFER;
  if (setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) die("setsockopt SO_RCVBUFFORCE");
  if (setsockopt(udp_fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0) die("setsockopt SO_SNDBUFFORCE");
  if (setsockopt(udp_fd, SOL_UDP, UDP_GRO, &one, sizeof one) < 0) die("setsockopt UDP_GRO");
  if (bind(udp_fd, (struct sockaddr *)&address, sizeof address) < 0) die("bind");
}

static void watch(int epoll_fd, int fd) {
  struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0) die("epoll_ctl");
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--partial") != 0)) {
    fprintf(stderr, "usage: dp-relay <selfIp> <peerIp> [--partial]\n");
    return 2;
  }
  parse_ip(argv[2], &peer);
  partial = argc == 4;
  open_udp(argv[1]);
  open_tun();
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) die("epoll_create1");
  watch(epoll_fd, tun_fd);
  watch(epoll_fd, udp_fd);
  for (;;) {
    struct epoll_event events[2];
    int n = epoll_wait(epoll_fd, events, 2, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      if (events[i].data.fd == tun_fd) on_tun_readable();
      else on_udp_readable();
    }
  }
}

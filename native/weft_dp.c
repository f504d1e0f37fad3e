/*
 * weft_dp: the data plane's kernel I/O as a plain-C N-API addon.
 *
 * Every call is non-blocking and batched: packets live in caller-owned Buffers and are described by
 * parallel typed arrays (offsets, lengths, addresses, ports), so nothing is copied or allocated per
 * packet. Errors from the kernel are thrown as Error objects carrying `code` (e.g. "EBUSY"),
 * `errno` (negative, as in Node) and `syscall`. Bad arguments throw TypeError or RangeError before
 * any syscall, so no call ever touches memory outside the buffers it was given.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include "gso.h"
#include "netlink.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* Length reported for a packet that did not fit its slot; 0 stays a real (empty) length. */
#define TRUNCATED_LENGTH UINT32_MAX

/* USO offload bits (Linux >= 6.2); Debian 12's kernel headers predate them. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

/* sendmmsg/recvmmsg are issued in chunks of this many messages, with the headers on the stack. */
#define MMSG_CHUNK 64

/* Largest offset a Uint32Array entry can describe. */
#define MAX_OFFSET ((uint64_t)UINT32_MAX)

/* ---------------------------------------------------------------------------------------------- */
/* Errors                                                                                          */

static void set_named_property(napi_env env, napi_value object, const char *key, napi_value value) {
  napi_set_named_property(env, object, key, value);
}

static napi_value make_error(napi_env env, const char *code, const char *description, int errno_value,
                             const char *syscall) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s, %s", code, description, syscall);
  napi_value code_value, message_value, error, errno_js, syscall_value;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value);
  napi_create_error(env, code_value, message_value, &error);
  napi_create_int32(env, errno_value, &errno_js);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  set_named_property(env, error, "errno", errno_js);
  set_named_property(env, error, "syscall", syscall_value);
  return error;
}

/* Throws an Error for a failed syscall; always returns NULL so callers can `return throw_errno(...)`. */
static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  const char *code = strerrorname_np(err);
  napi_throw(env, make_error(env, code ? code : "EUNKNOWN", strerror(err), -err, syscall));
  return NULL;
}

/* libuv reports errors as negative errno values on Linux. */
static napi_value make_uv_error(napi_env env, int uv_status, const char *syscall) {
  return make_error(env, uv_err_name(uv_status), uv_strerror(uv_status), uv_status, syscall);
}

static napi_value throw_type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

static napi_value throw_range_error(napi_env env, const char *message) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Arguments                                                                                       */

typedef struct {
  uint8_t *data;
  size_t length;
} byte_view;

typedef struct {
  uint32_t *data;
  size_t length;
} u32_view;

typedef struct {
  uint16_t *data;
  size_t length;
} u16_view;

static bool get_args(napi_env env, napi_callback_info info, size_t expected, napi_value *argv) {
  size_t argc = expected;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  /* Missing arguments arrive as undefined and fail the type checks below. */
  return true;
}

/* An integral Number in [min, max]. */
static bool get_integer(napi_env env, napi_value value, const char *name, int64_t min, int64_t max,
                        int64_t *out) {
  char message[160];
  double number;
  if (napi_get_value_double(env, value, &number) != napi_ok) {
    snprintf(message, sizeof message, "%s must be a number", name);
    throw_type_error(env, message);
    return false;
  }
  if (!(number >= (double)min && number <= (double)max) || number != (double)(int64_t)number) {
    snprintf(message, sizeof message, "%s must be an integer in [%lld, %lld], got %g", name, (long long)min,
             (long long)max, number);
    throw_range_error(env, message);
    return false;
  }
  *out = (int64_t)number;
  return true;
}

static bool get_fd(napi_env env, napi_value value, int *fd) {
  int64_t v;
  if (!get_integer(env, value, "fd", 0, INT32_MAX, &v)) return false;
  *fd = (int)v;
  return true;
}

static bool get_typed_array(napi_env env, napi_value value, const char *name, napi_typedarray_type want,
                            const char *want_name, void **data, size_t *length) {
  bool is_typed_array = false;
  napi_typedarray_type type;
  char message[160];
  if (napi_is_typedarray(env, value, &is_typed_array) == napi_ok && is_typed_array &&
      napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) == napi_ok && type == want) {
    if (*data == NULL) *length = 0; /* detached */
    return true;
  }
  snprintf(message, sizeof message, "%s must be a %s", name, want_name);
  throw_type_error(env, message);
  return false;
}

/* A Buffer or any Uint8Array. */
static bool get_bytes(napi_env env, napi_value value, const char *name, byte_view *out) {
  return get_typed_array(env, value, name, napi_uint8_array, "Buffer or Uint8Array", (void **)&out->data,
                         &out->length);
}

static bool get_u32s(napi_env env, napi_value value, const char *name, u32_view *out) {
  return get_typed_array(env, value, name, napi_uint32_array, "Uint32Array", (void **)&out->data,
                         &out->length);
}

/* An optional Uint8Array of per-packet flags: undefined gives an empty view (all 0). */
static bool get_optional_flags(napi_env env, napi_value value, const char *name, uint64_t count, byte_view *out) {
  napi_valuetype type;
  char message[160];
  out->data = NULL;
  out->length = 0;
  napi_typeof(env, value, &type);
  if (type == napi_undefined) return true;
  if (!get_bytes(env, value, name, out)) return false;
  if (out->length < count) {
    snprintf(message, sizeof message, "%s has %zu entries, fewer than n (%llu)", name, out->length,
             (unsigned long long)count);
    throw_range_error(env, message);
    return false;
  }
  return true;
}

static inline bool flag_at(const byte_view *flags, uint32_t i) {
  return flags->data != NULL && flags->data[i] != 0;
}

static bool get_u16s(napi_env env, napi_value value, const char *name, u16_view *out) {
  return get_typed_array(env, value, name, napi_uint16_array, "Uint16Array", (void **)&out->data,
                         &out->length);
}

/* Reads an optional property of an options object; *present is false when it is undefined. */
static bool get_option(napi_env env, napi_value options, const char *key, napi_value *value, bool *present) {
  napi_valuetype type;
  *present = false;
  napi_typeof(env, options, &type);
  if (type == napi_undefined || type == napi_null) return true;
  if (type != napi_object) {
    throw_type_error(env, "options must be an object");
    return false;
  }
  if (napi_get_named_property(env, options, key, value) != napi_ok) return false;
  napi_typeof(env, *value, &type);
  *present = type != napi_undefined;
  return true;
}

static bool get_bool_option(napi_env env, napi_value options, const char *key, bool *out) {
  napi_value value;
  bool present;
  char message[160];
  if (!get_option(env, options, key, &value, &present)) return false;
  if (!present) return true;
  if (napi_get_value_bool(env, value, out) != napi_ok) {
    snprintf(message, sizeof message, "options.%s must be a boolean", key);
    throw_type_error(env, message);
    return false;
  }
  return true;
}

/* *out stays 0 when the option is absent. */
static bool get_size_option(napi_env env, napi_value options, const char *key, int *out) {
  napi_value value;
  bool present;
  int64_t v;
  if (!get_option(env, options, key, &value, &present)) return false;
  if (!present) return true;
  if (!get_integer(env, value, key, 1, INT32_MAX / 2, &v)) return false;
  *out = (int)v;
  return true;
}

/* Copies a JS string into a fixed buffer; fails with RangeError when it does not fit. */
static bool get_short_string(napi_env env, napi_value value, const char *name, char *out, size_t capacity) {
  size_t length;
  char message[160];
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    snprintf(message, sizeof message, "%s must be a string", name);
    throw_type_error(env, message);
    return false;
  }
  if (length >= capacity) {
    snprintf(message, sizeof message, "%s must be at most %zu bytes", name, capacity - 1);
    throw_range_error(env, message);
    return false;
  }
  napi_get_value_string_utf8(env, value, out, capacity, &length);
  return true;
}

/* ---------------------------------------------------------------------------------------------- */
/* Batch validation: everything is checked before the first syscall.                              */

/* `count` slots of `slot_size` bytes must fit both the buffer and the typed arrays. */
static bool check_slots(napi_env env, const byte_view *buf, uint64_t slot_size, uint64_t count,
                        size_t entries) {
  char message[200];
  if (count > entries) {
    snprintf(message, sizeof message, "batch of %llu exceeds the %zu entries of offsets/lengths",
             (unsigned long long)count, entries);
    throw_range_error(env, message);
    return false;
  }
  if (count * slot_size > buf->length || count * slot_size > MAX_OFFSET + 1) {
    snprintf(message, sizeof message, "%llu slots of %llu bytes exceed the %zu-byte buffer",
             (unsigned long long)count, (unsigned long long)slot_size, buf->length);
    throw_range_error(env, message);
    return false;
  }
  return true;
}

/* Packets 0..count-1 must lie inside the buffer. */
static bool check_packets(napi_env env, const byte_view *buf, const u32_view *offsets, const u32_view *lengths,
                          uint64_t count) {
  char message[200];
  if (count > offsets->length || count > lengths->length) {
    snprintf(message, sizeof message, "count %llu exceeds offsets (%zu) or lengths (%zu)",
             (unsigned long long)count, offsets->length, lengths->length);
    throw_range_error(env, message);
    return false;
  }
  for (uint64_t i = 0; i < count; i++) {
    if ((uint64_t)offsets->data[i] + lengths->data[i] > buf->length) {
      snprintf(message, sizeof message, "packet %llu [%u, +%u) is outside the %zu-byte buffer",
               (unsigned long long)i, offsets->data[i], lengths->data[i], buf->length);
      throw_range_error(env, message);
      return false;
    }
  }
  return true;
}

static napi_value make_u32(napi_env env, uint32_t value) {
  napi_value result;
  napi_create_uint32(env, value, &result);
  return result;
}

/* ---------------------------------------------------------------------------------------------- */
/* TUN                                                                                             */

/* tunOpen(name, {vnetHdr?}) -> {fd, name} */
static napi_value tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[IFNAMSIZ];
  bool vnet_hdr = false;
  if (!get_args(env, info, 2, argv)) return NULL;
  if (!get_short_string(env, argv[0], "name", name, sizeof name)) return NULL;
  if (!get_bool_option(env, argv[1], "vnetHdr", &vnet_hdr)) return NULL;

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "ioctl TUNSETIFF");
  }

  napi_value result, fd_value, name_value;
  napi_create_object(env, &result);
  napi_create_int32(env, fd, &fd_value);
  napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &name_value);
  set_named_property(env, result, "fd", fd_value);
  set_named_property(env, result, "name", name_value);
  return result;
}

/* tunSetOffload(fd, flags): TUNSETOFFLOAD with TUN_F_* bits (needs a device opened with vnetHdr). */
static napi_value tun_set_offload(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd;
  int64_t flags;
  if (!get_args(env, info, 2, argv)) return NULL;
  if (!get_fd(env, argv[0], &fd) || !get_integer(env, argv[1], "flags", 0, UINT32_MAX, &flags)) return NULL;
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0) return throw_errno(env, errno, "ioctl TUNSETOFFLOAD");
  return NULL;
}

/*
 * Reads one packet into [dst, dst+capacity). The kernel silently truncates a packet that does not fit
 * and returns the truncated size, so one spare byte is offered behind the slot: filling it means the
 * packet was longer than capacity.
 */
static ssize_t read_packet(int fd, uint8_t *dst, size_t capacity, bool *truncated) {
  uint8_t spare;
  struct iovec iov[2] = {{.iov_base = dst, .iov_len = capacity}, {.iov_base = &spare, .iov_len = 1}};
  ssize_t got = readv(fd, iov, 2);
  *truncated = got > (ssize_t)capacity;
  return got;
}

/*
 * tunReadBatch(fd, buf, slotSize, headroom, max, offsets, lengths) -> n
 * Packet i goes to buf[i*slotSize + headroom]. A packet longer than slotSize - headroom is reported
 * with length TRUNCATED_LENGTH so the caller drops it.
 */
static napi_value tun_read_batch(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  int fd;
  byte_view buf;
  int64_t slot_size, headroom, max;
  u32_view offsets, lengths;
  if (!get_args(env, info, 7, argv)) return NULL;
  if (!get_fd(env, argv[0], &fd) || !get_bytes(env, argv[1], "buf", &buf) ||
      !get_integer(env, argv[2], "slotSize", 1, UINT32_MAX, &slot_size) ||
      !get_integer(env, argv[3], "headroom", 0, slot_size - 1, &headroom) ||
      !get_integer(env, argv[4], "max", 0, UINT32_MAX, &max) || !get_u32s(env, argv[5], "offsets", &offsets) ||
      !get_u32s(env, argv[6], "lengths", &lengths))
    return NULL;
  size_t entries = offsets.length < lengths.length ? offsets.length : lengths.length;
  if (!check_slots(env, &buf, (uint64_t)slot_size, (uint64_t)max, entries)) return NULL;

  size_t capacity = (size_t)(slot_size - headroom);
  uint32_t n = 0;
  while (n < max) {
    size_t offset = (size_t)n * (size_t)slot_size + (size_t)headroom;
    bool truncated;
    ssize_t got = read_packet(fd, buf.data + offset, capacity, &truncated);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n > 0) break; /* deliver what we have; a lasting error recurs on the next call */
      return throw_errno(env, errno, "readv");
    }
    if (got == 0) break;
    offsets.data[n] = (uint32_t)offset;
    lengths.data[n] = truncated ? TRUNCATED_LENGTH : (uint32_t)got;
    n++;
  }
  return make_u32(env, n);
}

/* The kernel cannot take more now: stop the batch, the rest would fail the same way. */
static bool is_queue_full(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == ENOMEM;
}

/* A TUN write refused for this packet only: malformed packet, or (EIO) the link is down. */
static bool is_per_packet_write_error(int err) {
  return err == EINVAL || err == EMSGSIZE || err == EIO;
}

typedef enum { TUN_WRITTEN, TUN_SKIPPED, TUN_FULL, TUN_FAILED } tun_write_outcome;

/* One packet (as iovecs) into a TUN: written, skipped (refused on its own), full (end the batch) or failed (errno). */
static tun_write_outcome tun_write_packet(int fd, const struct iovec *iov, int count) {
  ssize_t r;
  do r = writev(fd, iov, count);
  while (r < 0 && errno == EINTR);
  if (r >= 0) return TUN_WRITTEN;
  if (is_queue_full(errno)) return TUN_FULL;
  return is_per_packet_write_error(errno) ? TUN_SKIPPED : TUN_FAILED;
}

/* The (buf, offsets, lengths, n) arguments of a packet-list call, checked to lie inside buf. */
static bool get_packet_list(napi_env env, napi_value *argv, byte_view *buf, u32_view *offsets, u32_view *lengths,
                            int64_t *count) {
  return get_bytes(env, argv[0], "buf", buf) && get_u32s(env, argv[1], "offsets", offsets) &&
         get_u32s(env, argv[2], "lengths", lengths) && get_integer(env, argv[3], "n", 0, UINT32_MAX, count) &&
         check_packets(env, buf, offsets, lengths, (uint64_t)*count);
}

/* tunWriteBatch(fd, buf, offsets, lengths, n) -> packets written; a full queue ends the batch */
static napi_value tun_write_batch(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int fd;
  byte_view buf;
  u32_view offsets, lengths;
  int64_t count;
  if (!get_args(env, info, 5, argv)) return NULL;
  if (!get_fd(env, argv[0], &fd) || !get_packet_list(env, argv + 1, &buf, &offsets, &lengths, &count)) return NULL;

  uint32_t written = 0;
  for (uint32_t i = 0; i < count; i++) {
    struct iovec iov = {buf.data + offsets.data[i], lengths.data[i]};
    tun_write_outcome outcome = tun_write_packet(fd, &iov, 1);
    if (outcome == TUN_FULL) break;
    if (outcome == TUN_FAILED) return throw_errno(env, errno, "writev");
    if (outcome == TUN_WRITTEN) written++;
  }
  return make_u32(env, written);
}

/* ---------------------------------------------------------------------------------------------- */
/* UDP                                                                                             */

/* As root the *FORCE variant lifts the net.core.[rw]mem_max cap; otherwise fall back to the capped one. */
static int set_socket_buffer(int fd, int force_option, int option, int bytes) {
  if (setsockopt(fd, SOL_SOCKET, force_option, &bytes, sizeof bytes) == 0) return 0;
  if (errno != EPERM) return -1;
  return setsockopt(fd, SOL_SOCKET, option, &bytes, sizeof bytes);
}

static int get_socket_int(int fd, int option) {
  int value = 0;
  socklen_t length = sizeof value;
  getsockopt(fd, SOL_SOCKET, option, &value, &length);
  return value;
}

/* Returns the failing syscall's name, or NULL on success. */
static const char *configure_udp_socket(int fd, const struct sockaddr_in *address, int rcvbuf, int sndbuf) {
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) return "setsockopt SO_REUSEADDR";
  if (rcvbuf > 0 && set_socket_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf) < 0) return "setsockopt SO_RCVBUF";
  if (sndbuf > 0 && set_socket_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf) < 0) return "setsockopt SO_SNDBUF";
  if (bind(fd, (const struct sockaddr *)address, sizeof *address) < 0) return "bind";
  return NULL;
}

/* udpOpen(bindAddress, port, {rcvbuf?, sndbuf?}) -> {fd, port, rcvbuf, sndbuf} (the sizes the kernel granted) */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char address_text[INET_ADDRSTRLEN];
  int64_t port;
  int rcvbuf = 0, sndbuf = 0;
  bool gro = false;
  struct sockaddr_in address;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (!get_short_string(env, argv[0], "bindAddress", address_text, sizeof address_text) ||
      !get_integer(env, argv[1], "port", 0, 65535, &port) || !get_size_option(env, argv[2], "rcvbuf", &rcvbuf) ||
      !get_size_option(env, argv[2], "sndbuf", &sndbuf) || !get_bool_option(env, argv[2], "gro", &gro))
    return NULL;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, address_text, &address.sin_addr) != 1)
    return throw_type_error(env, "bindAddress must be an IPv4 address");

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  const char *failed = configure_udp_socket(fd, &address, rcvbuf, sndbuf);
  socklen_t length = sizeof address;
  if (failed == NULL && getsockname(fd, (struct sockaddr *)&address, &length) < 0) failed = "getsockname";
  if (failed != NULL) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, failed);
  }

  napi_value result, value;
  napi_create_object(env, &result);
  napi_create_int32(env, fd, &value);
  set_named_property(env, result, "fd", value);
  set_named_property(env, result, "port", make_u32(env, ntohs(address.sin_port)));
  set_named_property(env, result, "rcvbuf", make_u32(env, (uint32_t)get_socket_int(fd, SO_RCVBUF)));
  set_named_property(env, result, "sndbuf", make_u32(env, (uint32_t)get_socket_int(fd, SO_SNDBUF)));
  /* Both are optional kernel features (4.18 / 5.0): report what this kernel grants, never fail. */
  int one = 1, segment = 0;
  socklen_t size = sizeof segment;
  napi_value granted;
  napi_get_boolean(env, gro && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0, &granted);
  set_named_property(env, result, "gro", granted);
  napi_get_boolean(env, getsockopt(fd, SOL_UDP, UDP_SEGMENT, &segment, &size) == 0, &granted);
  set_named_property(env, result, "gso", granted);
  return result;
}

/* The socket buffer or device queue is full: stop, the rest of the batch is not sent. */
/* A send error about this one destination or datagram: skip it and send the rest. */
static bool is_per_message_send_error(int err) {
  switch (err) {
  case ECONNREFUSED:
  case EHOSTUNREACH:
  case ENETUNREACH:
  case EHOSTDOWN:
  case ENETDOWN:
  case EPERM:         /* netfilter drop */
  case EACCES:        /* broadcast destination */
  case EMSGSIZE:      /* datagram larger than the path allows */
  case EINVAL:        /* destination port 0 */
  case EADDRNOTAVAIL: /* unusable destination address */
    return true;
  default:
    return false;
  }
}

static void fill_send_chunk(struct mmsghdr *messages, struct iovec *iovecs, struct sockaddr_in *peers,
                            const byte_view *buf, const u32_view *offsets, const u32_view *lengths,
                            const u32_view *addrs, const u16_view *ports, uint32_t first, unsigned count) {
  memset(messages, 0, count * sizeof *messages);
  memset(peers, 0, count * sizeof *peers);
  for (unsigned j = 0; j < count; j++) {
    uint32_t i = first + j;
    peers[j].sin_family = AF_INET;
    peers[j].sin_addr.s_addr = htonl(addrs->data[i]);
    peers[j].sin_port = htons(ports->data[i]);
    iovecs[j].iov_base = buf->data + offsets->data[i];
    iovecs[j].iov_len = lengths->data[i];
    messages[j].msg_hdr.msg_name = &peers[j];
    messages[j].msg_hdr.msg_namelen = sizeof peers[j];
    messages[j].msg_hdr.msg_iov = &iovecs[j];
    messages[j].msg_hdr.msg_iovlen = 1;
  }
}

/* udpSendBatch(fd, buf, offsets, lengths, addrs, ports, n) -> number of datagrams sent */
static napi_value udp_send_batch(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  int fd;
  byte_view buf;
  u32_view offsets, lengths, addrs;
  u16_view ports;
  int64_t count;
  if (!get_args(env, info, 7, argv)) return NULL;
  if (!get_fd(env, argv[0], &fd) || !get_bytes(env, argv[1], "buf", &buf) ||
      !get_u32s(env, argv[2], "offsets", &offsets) || !get_u32s(env, argv[3], "lengths", &lengths) ||
      !get_u32s(env, argv[4], "addrs", &addrs) || !get_u16s(env, argv[5], "ports", &ports) ||
      !get_integer(env, argv[6], "n", 0, UINT32_MAX, &count))
    return NULL;
  if (!check_packets(env, &buf, &offsets, &lengths, (uint64_t)count)) return NULL;
  if ((uint64_t)count > addrs.length || (uint64_t)count > ports.length)
    return throw_range_error(env, "n exceeds the entries of addrs or ports");

  struct mmsghdr messages[MMSG_CHUNK];
  struct iovec iovecs[MMSG_CHUNK];
  struct sockaddr_in peers[MMSG_CHUNK];
  uint32_t next = 0, sent = 0;
  while (next < count) {
    unsigned chunk = count - next < MMSG_CHUNK ? (unsigned)(count - next) : MMSG_CHUNK;
    fill_send_chunk(messages, iovecs, peers, &buf, &offsets, &lengths, &addrs, &ports, next, chunk);
    int r = sendmmsg(fd, messages, chunk, MSG_DONTWAIT);
    if (r > 0) {
      /* A short count means message next+r failed; the next call reports why. */
      sent += (uint32_t)r;
      next += (uint32_t)r;
    } else if (r == 0 || is_queue_full(errno)) {
      break;
    } else if (errno == EINTR) {
      continue;
    } else if (is_per_message_send_error(errno)) {
      next++;
    } else {
      return throw_errno(env, errno, "sendmmsg");
    }
  }
  return make_u32(env, sent);
}

/* Receive errors that report an earlier ICMP error (sk_err) once and clear it. */
static bool is_reported_icmp_error(int err) {
  return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN ||
         err == ENETDOWN || err == EMSGSIZE || err == EPROTO || err == ETIMEDOUT;
}

/* Room for the UDP_GRO control message (an int: the size of the coalesced segments). */
typedef union {
  char space[CMSG_SPACE(sizeof(int))];
  struct cmsghdr align;
} gro_control;

static void fill_recv_chunk(struct mmsghdr *messages, struct iovec *iovecs, struct sockaddr_in *peers,
                            gro_control *controls, const byte_view *buf, uint64_t slot_size, uint32_t first,
                            unsigned count) {
  memset(messages, 0, count * sizeof *messages);
  for (unsigned j = 0; j < count; j++) {
    if (controls != NULL) {
      messages[j].msg_hdr.msg_control = controls[j].space;
      messages[j].msg_hdr.msg_controllen = sizeof controls[j].space;
    }
    iovecs[j].iov_base = buf->data + (size_t)(first + j) * slot_size;
    iovecs[j].iov_len = slot_size;
    messages[j].msg_hdr.msg_name = &peers[j];
    messages[j].msg_hdr.msg_namelen = sizeof peers[j];
    messages[j].msg_hdr.msg_iov = &iovecs[j];
    messages[j].msg_hdr.msg_iovlen = 1;
  }
}

/* The segment size of a datagram the kernel coalesced (UDP_GRO), or 0 for a plain datagram. */
static uint32_t gro_segment_size(struct msghdr *header) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(header); c != NULL; c = CMSG_NXTHDR(header, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int size;
      memcpy(&size, CMSG_DATA(c), sizeof size);
      return size > 0 ? (uint32_t)size : 0;
    }
  }
  return 0;
}

/*
 * udpRecvBatch(fd, buf, slotSize, max, offsets, lengths, addrs, ports, gsoSizes?) -> n
 * Datagram i lands at buf[i*slotSize]. A datagram longer than slotSize (MSG_TRUNC) is reported with
 * length TRUNCATED_LENGTH so the caller drops it. With gsoSizes (a socket opened with gro), entry i is
 * the size of the segments datagram i was coalesced from (the last may be shorter), or 0.
 */
static napi_value udp_recv_batch(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  int fd;
  byte_view buf;
  int64_t slot_size, max;
  u32_view offsets, lengths, addrs;
  u16_view ports;
  u32_view gso_sizes = {NULL, 0};
  napi_valuetype gso_type;
  if (!get_args(env, info, 9, argv)) return NULL;
  if (!get_fd(env, argv[0], &fd) || !get_bytes(env, argv[1], "buf", &buf) ||
      !get_integer(env, argv[2], "slotSize", 1, UINT32_MAX, &slot_size) ||
      !get_integer(env, argv[3], "max", 0, UINT32_MAX, &max) || !get_u32s(env, argv[4], "offsets", &offsets) ||
      !get_u32s(env, argv[5], "lengths", &lengths) || !get_u32s(env, argv[6], "addrs", &addrs) ||
      !get_u16s(env, argv[7], "ports", &ports))
    return NULL;
  napi_typeof(env, argv[8], &gso_type);
  bool want_gso = gso_type != napi_undefined;
  if (want_gso && !get_u32s(env, argv[8], "gsoSizes", &gso_sizes)) return NULL;
  size_t entries = offsets.length;
  if (want_gso && gso_sizes.length < entries) entries = gso_sizes.length;
  if (lengths.length < entries) entries = lengths.length;
  if (addrs.length < entries) entries = addrs.length;
  if (ports.length < entries) entries = ports.length;
  if (!check_slots(env, &buf, (uint64_t)slot_size, (uint64_t)max, entries)) return NULL;

  struct mmsghdr messages[MMSG_CHUNK];
  struct iovec iovecs[MMSG_CHUNK];
  struct sockaddr_in peers[MMSG_CHUNK];
  gro_control controls[MMSG_CHUNK];
  uint32_t n = 0;
  while (n < max) {
    unsigned chunk = max - n < MMSG_CHUNK ? (unsigned)(max - n) : MMSG_CHUNK;
    fill_recv_chunk(messages, iovecs, peers, want_gso ? controls : NULL, &buf, (uint64_t)slot_size, n, chunk);
    int r = recvmmsg(fd, messages, chunk, MSG_DONTWAIT, NULL);
    if (r < 0) {
      if (errno == EINTR || is_reported_icmp_error(errno)) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n > 0) break;
      return throw_errno(env, errno, "recvmmsg");
    }
    for (int j = 0; j < r; j++, n++) {
      const struct msghdr *header = &messages[j].msg_hdr;
      offsets.data[n] = (uint32_t)((uint64_t)n * (uint64_t)slot_size);
      lengths.data[n] = (header->msg_flags & MSG_TRUNC) ? TRUNCATED_LENGTH : messages[j].msg_len;
      addrs.data[n] = ntohl(peers[j].sin_addr.s_addr);
      ports.data[n] = ntohs(peers[j].sin_port);
      if (want_gso) gso_sizes.data[n] = gro_segment_size(&messages[j].msg_hdr);
    }
    if ((unsigned)r < chunk) break; /* the queue is drained */
  }
  return make_u32(env, n);
}

/* ---------------------------------------------------------------------------------------------- */
/* Offloads: TUN super-packets out as UDP GSO trains, coalesced TCP segments into the TUN          */

/* Largest UDP payload of one (GSO) datagram. */
#define UDP_MAX_PAYLOAD 65507
/* Linux accepts up to 64 segments per UDP_SEGMENT message before 6.1 (UDP_MAX_SEGMENTS). */
#define UDP_MAX_SEGMENTS 64
#define GSO_SEND_MESSAGES 256
#define GSO_SEND_IOVECS (2 * GSO_MAX_SEGMENTS + GSO_SEND_MESSAGES)

typedef union {
  char space[CMSG_SPACE(sizeof(uint16_t))];
  struct cmsghdr align;
} segment_control;

/* Per-thread scratch for one udpSendGso call: rebuilt headers, pieces and the sendmmsg vectors. */
typedef struct {
  uint8_t headers[GSO_MAX_SEGMENTS * GSO_HDR_SLOT];
  gso_piece pieces[GSO_MAX_SEGMENTS];
  struct iovec iovecs[GSO_SEND_IOVECS];
  struct mmsghdr messages[GSO_SEND_MESSAGES];
  struct sockaddr_in peers[GSO_SEND_MESSAGES];
  segment_control controls[GSO_SEND_MESSAGES];
  uint32_t message_segments[GSO_SEND_MESSAGES];
  uint32_t used_segments, used_iovecs, used_messages;
  /* The last queued message is a train of single datagrams of train_size bytes that more may join. */
  bool train_open;
  uint32_t train_size;
} gso_send_state;

static __thread gso_send_state *send_state;

static gso_send_state *get_send_state(void) {
  if (send_state == NULL) send_state = calloc(1, sizeof *send_state);
  return send_state;
}

typedef struct {
  int fd;
  uint32_t sent;   /* segments handed to the kernel */
  bool stopped;    /* the socket buffer is full: the rest of the batch is not sent */
  int error;       /* an errno that is neither per-message nor a full queue */
} gso_send_result;

/* sendmmsg of the queued messages; the header scratch stays valid (a packet may span two flushes). */
static void flush_messages(gso_send_state *st, gso_send_result *res) {
  uint32_t next = 0, count = st->used_messages;
  while (next < count && !res->stopped && res->error == 0) {
    int r = sendmmsg(res->fd, st->messages + next, count - next, MSG_DONTWAIT);
    if (r > 0) {
      for (int j = 0; j < r; j++) res->sent += st->message_segments[next + j];
      next += (uint32_t)r;
    } else if (r == 0 || is_queue_full(errno)) {
      res->stopped = true;
    } else if (errno == EINTR) {
      continue;
    } else if (is_per_message_send_error(errno)) {
      next++;
    } else {
      res->error = errno;
    }
  }
  st->used_messages = 0;
  st->used_iovecs = 0;
  st->train_open = false;
}

/* Marks message m as a UDP GSO train of datagrams of `size` bytes (the last may be shorter). */
static void set_segment_size(gso_send_state *st, uint32_t m, uint32_t size) {
  struct cmsghdr *c = &st->controls[m].align;
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  uint16_t value = (uint16_t)size;
  memcpy(CMSG_DATA(c), &value, sizeof value);
  st->messages[m].msg_hdr.msg_control = st->controls[m].space;
  st->messages[m].msg_hdr.msg_controllen = sizeof st->controls[m].space;
}

static uint32_t piece_iovecs(const gso_piece *piece, struct iovec *iov) {
  uint32_t k = 0;
  iov[k++] = (struct iovec){(void *)piece->hdr, piece->hdr_len};
  if (piece->payload_len > 0) iov[k++] = (struct iovec){(void *)piece->payload, piece->payload_len};
  return k;
}

static void queue_message(gso_send_state *st, gso_send_result *res, const gso_piece *pieces, uint32_t count,
                          uint32_t datagram_size, uint32_t addr, uint16_t port) {
  if (st->used_messages == GSO_SEND_MESSAGES || st->used_iovecs + 2 * count > GSO_SEND_IOVECS)
    flush_messages(st, res);
  uint32_t m = st->used_messages++;
  struct msghdr *h = &st->messages[m].msg_hdr;
  memset(h, 0, sizeof *h);
  struct iovec *iov = st->iovecs + st->used_iovecs;
  uint32_t k = 0;
  for (uint32_t j = 0; j < count; j++) k += piece_iovecs(&pieces[j], iov + k);
  st->used_iovecs += k;
  st->peers[m] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {htonl(addr)}};
  h->msg_name = &st->peers[m];
  h->msg_namelen = sizeof st->peers[m];
  h->msg_iov = iov;
  h->msg_iovlen = k;
  st->message_segments[m] = count;
  if (count > 1) set_segment_size(st, m, datagram_size);
  st->train_open = count == 1;
  st->train_size = pieces[0].hdr_len + pieces[0].payload_len;
}

/*
 * Appends a single datagram to the last queued message when that is a train to the same peer that
 * it can end or continue (not larger than the train's datagrams, within the segment and size
 * limits): many small packets to one peer then cross the kernel as one UDP GSO send.
 */
static bool join_train(gso_send_state *st, const gso_piece *piece, uint32_t addr, uint16_t port,
                       uint32_t max_segments) {
  if (!st->train_open) return false;
  uint32_t m = st->used_messages - 1;
  uint32_t size = piece->hdr_len + piece->payload_len;
  uint32_t in_train = st->message_segments[m];
  if (size > st->train_size || in_train >= max_segments || (in_train + 1) * st->train_size > UDP_MAX_PAYLOAD ||
      st->used_iovecs + 2 > GSO_SEND_IOVECS)
    return false;
  if (st->peers[m].sin_addr.s_addr != htonl(addr) || st->peers[m].sin_port != htons(port)) return false;
  struct msghdr *h = &st->messages[m].msg_hdr;
  uint32_t k = piece_iovecs(piece, st->iovecs + st->used_iovecs);
  st->used_iovecs += k;
  h->msg_iovlen += k;
  st->message_segments[m] = in_train + 1;
  if (in_train == 1) set_segment_size(st, m, st->train_size);
  if (size < st->train_size) st->train_open = false;
  return true;
}

static bool get_gpe(napi_env env, napi_value value, byte_view *gpe) {
  if (!get_bytes(env, value, "gpeHeader", gpe)) return false;
  if (gpe->length != GPE_LEN) {
    throw_range_error(env, "gpeHeader must be 8 bytes");
    return false;
  }
  return true;
}

/*
 * udpSendGso(fd, buf, offsets, lengths, addrs, ports, n, gpeHeader, maxSegments, segments, partial?) -> sent
 * Packet i is one TUN read, [virtio_net_hdr][IPv4 packet]; it is segmented (TSO/USO) into datagrams
 * of GPE header + inner packet with complete checksums (left partial and marked GPE_PARTIAL_BIT where
 * partial[i] is set: the peer completes them), sent to addrs[i]:ports[i] as UDP_SEGMENT
 * messages of up to maxSegments datagrams (1: one sendmmsg entry per datagram). segments[i] gets the
 * number of inner packets packet i became (0: malformed, not sent). Returns the inner packets sent;
 * a full socket buffer ends the batch. Throws on other errors (EIO: the device refused UDP GSO).
 */
static napi_value udp_send_gso(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  int fd;
  byte_view buf, gpe, partial;
  u32_view offsets, lengths, addrs, segments;
  u16_view ports;
  int64_t count, max_segments;
  if (!get_args(env, info, 11, argv)) return NULL;
  if (!get_fd(env, argv[0], &fd) || !get_bytes(env, argv[1], "buf", &buf) ||
      !get_u32s(env, argv[2], "offsets", &offsets) || !get_u32s(env, argv[3], "lengths", &lengths) ||
      !get_u32s(env, argv[4], "addrs", &addrs) || !get_u16s(env, argv[5], "ports", &ports) ||
      !get_integer(env, argv[6], "n", 0, UINT32_MAX, &count) || !get_gpe(env, argv[7], &gpe) ||
      !get_integer(env, argv[8], "maxSegments", 1, UDP_MAX_SEGMENTS, &max_segments) ||
      !get_u32s(env, argv[9], "segments", &segments) ||
      !get_optional_flags(env, argv[10], "partial", (uint64_t)count, &partial))
    return NULL;
  if (!check_packets(env, &buf, &offsets, &lengths, (uint64_t)count)) return NULL;
  if ((uint64_t)count > addrs.length || (uint64_t)count > ports.length || (uint64_t)count > segments.length)
    return throw_range_error(env, "n exceeds the entries of addrs, ports or segments");
  gso_send_state *st = get_send_state();
  if (st == NULL) return throw_errno(env, ENOMEM, "udpSendGso");
  gso_send_result res = {.fd = fd};
  st->used_segments = st->used_iovecs = st->used_messages = 0;
  st->train_open = false;
  uint32_t i = 0;
  for (; i < count && !res.stopped && res.error == 0; i++) {
    uint8_t *pkt = buf.data + offsets.data[i];
    uint32_t segs = gso_count(pkt, lengths.data[i]);
    segments.data[i] = segs;
    if (segs == 0) continue;
    if (st->used_segments + segs > GSO_MAX_SEGMENTS) {
      flush_messages(st, &res);
      st->used_segments = 0;
      if (res.stopped || res.error) break;
    }
    gso_piece *pieces = st->pieces + st->used_segments;
    uint32_t datagram_size;
    gso_segment(pkt, lengths.data[i], gpe.data, flag_at(&partial, i),
                st->headers + (size_t)st->used_segments * GSO_HDR_SLOT, pieces, &datagram_size);
    st->used_segments += segs;
    if (segs == 1 && join_train(st, pieces, addrs.data[i], ports.data[i], (uint32_t)max_segments)) continue;
    uint32_t per_message = UDP_MAX_PAYLOAD / datagram_size;
    if (per_message > (uint32_t)max_segments) per_message = (uint32_t)max_segments;
    if (per_message == 0) per_message = 1;
    for (uint32_t k = 0; k < segs; k += per_message) {
      uint32_t take = segs - k < per_message ? segs - k : per_message;
      queue_message(st, &res, pieces + k, take, datagram_size, addrs.data[i], ports.data[i]);
    }
  }
  if (!res.stopped && res.error == 0) flush_messages(st, &res);
  for (; i < count; i++) segments.data[i] = gso_count(buf.data + offsets.data[i], lengths.data[i]);
  if (res.error != 0) return throw_errno(env, res.error, "sendmmsg");
  return make_u32(env, res.sent);
}

/* Packet i's run of coalesced packets as iovecs: [vnet header (+ merged header)][payload...]. */
static uint32_t gro_iovecs(const byte_view *buf, const u32_view *offsets, const u32_view *lengths,
                           const byte_view *partial, uint32_t i, uint32_t count, uint8_t *hdr, struct iovec *iov) {
  uint32_t k = 0;
  iov[k++] = (struct iovec){hdr, gro_build_header(buf->data, offsets->data, lengths->data, i, count, hdr)};
  if (count == 1) {
    /* A run is always written NEEDS_CSUM; a single packet only when its sender left the checksum partial. */
    if (flag_at(partial, i)) partial_vnet_header(buf->data + offsets->data[i], lengths->data[i], hdr);
    iov[k++] = (struct iovec){buf->data + offsets->data[i], lengths->data[i]};
    return k;
  }
  uint32_t skip = gro_payload_offset(buf->data + offsets->data[i]);
  for (uint32_t j = i; j < i + count; j++)
    iov[k++] = (struct iovec){buf->data + offsets->data[j] + skip, lengths->data[j] - skip};
  return k;
}

#define GRO_HDR_SPACE (VNET_HDR_LEN + 120)

/* An optional boolean argument; undefined is false. */
static bool get_optional_bool(napi_env env, napi_value value, const char *name, bool *out) {
  napi_valuetype type;
  char message[160];
  *out = false;
  napi_typeof(env, value, &type);
  if (type == napi_undefined) return true;
  if (napi_get_value_bool(env, value, out) == napi_ok) return true;
  snprintf(message, sizeof message, "%s must be a boolean", name);
  throw_type_error(env, message);
  return false;
}

/* Writes packets [i, i+count) to the TUN one by one; returns how many were written, or -1 (errno) on a failure. */
static int64_t tun_write_singly(int fd, const byte_view *buf, const u32_view *offsets, const u32_view *lengths,
                                const byte_view *partial, uint32_t i, uint32_t count, bool *full) {
  uint8_t hdr[GRO_HDR_SPACE];
  struct iovec iov[2];
  int64_t written = 0;
  for (uint32_t j = i; j < i + count; j++) {
    gro_iovecs(buf, offsets, lengths, partial, j, 1, hdr, iov);
    tun_write_outcome outcome = tun_write_packet(fd, iov, 2);
    if (outcome == TUN_FULL) {
      *full = true;
      break;
    }
    if (outcome == TUN_FAILED) return -1;
    if (outcome == TUN_WRITTEN) written++;
  }
  return written;
}

/*
 * tunWriteGro(fd, buf, offsets, lengths, n, coalesceUdp?, partial?) -> packets written. For a TUN opened with
 * vnetHdr: packets are whole inner IPv4 packets (partial[i] set: its TCP/UDP checksum holds only the
 * pseudo-header sum, so it is written NEEDS_CSUM); consecutive TCP segments of one flow (and with
 * coalesceUdp, same-size UDP datagrams of one flow) are written as one GSO super-packet (NEEDS_CSUM,
 * the kernel completes the checksum and cuts UDP back into the original datagrams), everything else
 * alone with an empty virtio_net_hdr. A full queue ends the batch; a packet refused on its own is
 * skipped; a merged run the kernel refuses is written packet by packet instead.
 */
static napi_value tun_write_gro(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  int fd;
  byte_view buf, partial;
  u32_view offsets, lengths;
  int64_t count;
  bool coalesce_udp;
  if (!get_args(env, info, 7, argv)) return NULL;
  if (!get_fd(env, argv[0], &fd) || !get_packet_list(env, argv + 1, &buf, &offsets, &lengths, &count) ||
      !get_optional_bool(env, argv[5], "coalesceUdp", &coalesce_udp) ||
      !get_optional_flags(env, argv[6], "partial", (uint64_t)count, &partial))
    return NULL;
  uint8_t hdr[GRO_HDR_SPACE];
  struct iovec iov[GRO_MAX_SEGMENTS + 1];
  uint32_t written = 0;
  for (uint32_t i = 0; i < count;) {
    uint32_t run = gro_run_length(buf.data, offsets.data, lengths.data, i, (uint32_t)count, coalesce_udp);
    uint32_t k = gro_iovecs(&buf, &offsets, &lengths, &partial, i, run, hdr, iov);
    tun_write_outcome outcome = tun_write_packet(fd, iov, (int)k);
    if (outcome == TUN_FULL) break;
    if (outcome == TUN_FAILED) return throw_errno(env, errno, "writev");
    if (outcome == TUN_WRITTEN) written += run;
    if (outcome == TUN_SKIPPED && run > 1) {
      bool full = false;
      int64_t singly = tun_write_singly(fd, &buf, &offsets, &lengths, &partial, i, run, &full);
      if (singly < 0) return throw_errno(env, errno, "writev");
      written += (uint32_t)singly;
      if (full) break;
    }
    i += run;
  }
  return make_u32(env, written);
}

/* Appends iovecs to out at *used; false when they do not fit. */
static bool flatten(const struct iovec *iov, uint32_t k, const byte_view *out, uint64_t *used) {
  uint64_t total = 0;
  for (uint32_t j = 0; j < k; j++) total += iov[j].iov_len;
  if (*used + total > out->length) return false;
  for (uint32_t j = 0; j < k; j++) {
    memcpy(out->data + *used, iov[j].iov_base, iov[j].iov_len);
    *used += iov[j].iov_len;
  }
  return true;
}

static bool record_output(napi_env env, const u32_view *offsets, const u32_view *lengths, uint32_t index,
                          uint64_t start, uint64_t end) {
  if (index >= offsets->length || index >= lengths->length) {
    throw_range_error(env, "more output packets than outOffsets/outLengths entries");
    return false;
  }
  offsets->data[index] = (uint32_t)start;
  lengths->data[index] = (uint32_t)(end - start);
  return true;
}

/*
 * groCoalesce(buf, offsets, lengths, n, out, outOffsets, outLengths, coalesceUdp?, partial?) -> packets out: what
 * tunWriteGro would write, each [virtio_net_hdr][packet], copied into out (for tests and the in-memory TUN).
 */
static napi_value gro_coalesce(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  byte_view buf, out, partial;
  u32_view offsets, lengths, out_offsets, out_lengths;
  int64_t count;
  bool coalesce_udp;
  if (!get_args(env, info, 9, argv)) return NULL;
  if (!get_packet_list(env, argv, &buf, &offsets, &lengths, &count) || !get_bytes(env, argv[4], "out", &out) ||
      !get_u32s(env, argv[5], "outOffsets", &out_offsets) || !get_u32s(env, argv[6], "outLengths", &out_lengths) ||
      !get_optional_bool(env, argv[7], "coalesceUdp", &coalesce_udp) ||
      !get_optional_flags(env, argv[8], "partial", (uint64_t)count, &partial))
    return NULL;
  uint8_t hdr[GRO_HDR_SPACE];
  struct iovec iov[GRO_MAX_SEGMENTS + 1];
  uint64_t used = 0;
  uint32_t produced = 0;
  for (uint32_t i = 0; i < count;) {
    uint32_t run = gro_run_length(buf.data, offsets.data, lengths.data, i, (uint32_t)count, coalesce_udp);
    uint32_t k = gro_iovecs(&buf, &offsets, &lengths, &partial, i, run, hdr, iov);
    uint64_t start = used;
    if (!flatten(iov, k, &out, &used)) return throw_range_error(env, "out is too small");
    if (!record_output(env, &out_offsets, &out_lengths, produced++, start, used)) return NULL;
    i += run;
  }
  return make_u32(env, produced);
}

/*
 * gsoSegment(buf, offset, length, gpeHeader, out, outOffsets, outLengths, partial?) -> datagrams: the
 * datagrams udpSendGso would send for one TUN read at buf[offset] (edited in place: the GPE
 * header of an unsegmented packet overwrites the end of its virtio_net_hdr), copied into out. 0 when the packet is malformed.
 */
static napi_value gso_segment_js(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  byte_view buf, gpe, out;
  u32_view out_offsets, out_lengths;
  int64_t offset, length;
  bool partial;
  if (!get_args(env, info, 8, argv)) return NULL;
  if (!get_bytes(env, argv[0], "buf", &buf) || !get_integer(env, argv[1], "offset", 0, UINT32_MAX, &offset) ||
      !get_integer(env, argv[2], "length", 0, UINT32_MAX, &length) || !get_gpe(env, argv[3], &gpe) ||
      !get_bytes(env, argv[4], "out", &out) || !get_u32s(env, argv[5], "outOffsets", &out_offsets) ||
      !get_u32s(env, argv[6], "outLengths", &out_lengths) || !get_optional_bool(env, argv[7], "partial", &partial))
    return NULL;
  if ((uint64_t)offset + (uint64_t)length > buf.length) return throw_range_error(env, "packet outside buf");
  uint8_t *pkt = buf.data + offset;
  uint32_t segs = gso_count(pkt, (uint32_t)length);
  if (segs == 0) return make_u32(env, 0);
  uint8_t *headers = malloc((size_t)segs * GSO_HDR_SLOT);
  gso_piece *pieces = malloc((size_t)segs * sizeof *pieces);
  if (headers == NULL || pieces == NULL) {
    free(headers);
    free(pieces);
    return throw_errno(env, ENOMEM, "gsoSegment");
  }
  uint32_t datagram_size;
  gso_segment(pkt, (uint32_t)length, gpe.data, partial, headers, pieces, &datagram_size);
  uint64_t used = 0;
  bool ok = true;
  for (uint32_t j = 0; j < segs && ok; j++) {
    struct iovec iov[2] = {{(void *)pieces[j].hdr, pieces[j].hdr_len},
                           {(void *)pieces[j].payload, pieces[j].payload_len}};
    uint64_t start = used;
    if (!flatten(iov, 2, &out, &used)) {
      throw_range_error(env, "out is too small");
      ok = false;
    } else {
      ok = record_output(env, &out_offsets, &out_lengths, j, start, used);
    }
  }
  free(headers);
  free(pieces);
  return ok ? make_u32(env, segs) : NULL;
}

/*
 * completePartialChecksums(buf, offsets, lengths, n, partial) -> packets completed: for a TUN without the
 * virtio header, finishes in place the TCP/UDP checksum of each packet flagged in partial (the field
 * holds only the pseudo-header sum). Other flagged packets are left as they are (the kernel checks them).
 */
static napi_value complete_partial_checksums(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  byte_view buf, partial;
  u32_view offsets, lengths;
  int64_t count;
  if (!get_args(env, info, 5, argv) || !get_packet_list(env, argv, &buf, &offsets, &lengths, &count) ||
      !get_optional_flags(env, argv[4], "partial", (uint64_t)count, &partial))
    return NULL;
  uint32_t completed = 0;
  for (uint32_t i = 0; i < count; i++)
    if (flag_at(&partial, i)) completed += (uint32_t)complete_partial_csum(buf.data + offsets.data[i], lengths.data[i]);
  return make_u32(env, completed);
}

/* ---------------------------------------------------------------------------------------------- */
/* Readiness polling                                                                               */

/*
 * A poll record has two owners: the JS handle object (released by its finalizer) and the uv handle
 * (released by its close callback). It is freed when both are gone, so neither a GC'd handle nor a
 * stopped poll can leave the other with a dangling pointer.
 */
typedef struct {
  uint32_t magic;
  uv_poll_t uv;
  napi_env env;
  napi_ref callback;
  napi_async_context async_context;
  napi_async_cleanup_hook_handle cleanup_hook;
  int owners;
  bool closing;
} poll_record;

#define POLL_MAGIC 0x77706f6cu /* "wpol" */

static void release_owner(poll_record *record) {
  if (--record->owners == 0) {
    record->magic = 0;
    free(record);
  }
}

static void on_handle_finalized(napi_env env, void *data, void *hint) {
  release_owner((poll_record *)data);
}

/*
 * The env's async cleanup hook stays registered until the uv handle has closed, so a worker's
 * teardown waits for this callback and the napi env is still valid here.
 */
static void on_poll_closed(uv_handle_t *handle) {
  poll_record *record = handle->data;
  napi_delete_reference(record->env, record->callback);
  napi_async_destroy(record->env, record->async_context);
  napi_remove_async_cleanup_hook(record->cleanup_hook);
  release_owner(record);
}

static void close_poll(poll_record *record) {
  if (record->closing) return;
  record->closing = true;
  uv_poll_stop(&record->uv);
  uv_close((uv_handle_t *)&record->uv, on_poll_closed);
}

static void on_env_teardown(napi_async_cleanup_hook_handle hook, void *data) {
  close_poll((poll_record *)data);
}

/* A JS exception thrown by the callback must not stay pending (it would resurface in an unrelated call). */
static void raise_pending_exception(napi_env env) {
  bool pending = false;
  napi_value exception;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  poll_record *record = handle->data;
  napi_env env = record->env;
  napi_handle_scope scope;
  napi_value callback, global, result, argv[1];
  size_t argc = 0;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (status < 0) {
    /* libuv stops a poll on POLLERR. Re-arm it: the callback's next read reports the real errno, and a
     * transient error must not silently end the flow of packets. */
    argv[argc++] = make_uv_error(env, status, "poll");
    uv_poll_start(handle, UV_READABLE, on_poll);
  }
  if (napi_get_reference_value(env, record->callback, &callback) == napi_ok && napi_get_global(env, &global) == napi_ok) {
    /* recv must be an object: undefined fails with napi_object_expected. */
    if (napi_make_callback(env, record->async_context, global, callback, argc, argv, &result) != napi_ok)
      raise_pending_exception(env);
  }
  napi_close_handle_scope(env, scope);
}

static void free_unstarted_record(uv_handle_t *handle) {
  free(handle->data);
}

static bool init_poll_js_state(napi_env env, poll_record *record, napi_value callback) {
  napi_value resource_name;
  if (napi_create_string_utf8(env, "weft_dp.poll", NAPI_AUTO_LENGTH, &resource_name) != napi_ok) return false;
  if (napi_create_reference(env, callback, 1, &record->callback) != napi_ok) return false;
  if (napi_async_init(env, NULL, resource_name, &record->async_context) != napi_ok) {
    napi_delete_reference(env, record->callback);
    return false;
  }
  return true;
}

/* pollStart(fd, callback) -> handle: calls callback() whenever fd is readable (level-triggered). */
static napi_value poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[2], handle;
  int fd;
  napi_valuetype type;
  uv_loop_t *loop;
  if (!get_args(env, info, 2, argv) || !get_fd(env, argv[0], &fd)) return NULL;
  napi_typeof(env, argv[1], &type);
  if (type != napi_function) return throw_type_error(env, "callback must be a function");
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_type_error(env, "no event loop");

  poll_record *record = calloc(1, sizeof *record);
  if (record == NULL) return throw_errno(env, ENOMEM, "pollStart");
  record->magic = POLL_MAGIC;
  record->env = env;
  record->uv.data = record;
  int rc = uv_poll_init(loop, &record->uv, fd);
  if (rc < 0) {
    free(record);
    napi_throw(env, make_uv_error(env, rc, "uv_poll_init"));
    return NULL;
  }
  rc = uv_poll_start(&record->uv, UV_READABLE, on_poll);
  if (rc < 0 || !init_poll_js_state(env, record, argv[1])) {
    uv_close((uv_handle_t *)&record->uv, free_unstarted_record);
    if (rc < 0) napi_throw(env, make_uv_error(env, rc, "uv_poll_start"));
    return NULL;
  }
  record->owners = 2;
  napi_add_async_cleanup_hook(env, on_env_teardown, record, &record->cleanup_hook);
  if (napi_create_external(env, record, on_handle_finalized, NULL, &handle) != napi_ok) {
    record->owners = 1;
    close_poll(record);
    return NULL;
  }
  return handle;
}

/* pollStop(handle): idempotent. */
static napi_value poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  napi_valuetype type;
  void *data = NULL;
  if (!get_args(env, info, 1, argv)) return NULL;
  napi_typeof(env, argv[0], &type);
  if (type == napi_external) napi_get_value_external(env, argv[0], &data);
  poll_record *record = data;
  if (record == NULL || record->magic != POLL_MAGIC) return throw_type_error(env, "not a pollStart handle");
  close_poll(record);
  return NULL;
}

/* close(fd) */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !get_fd(env, argv[0], &fd)) return NULL;
  /* On Linux the fd is released even when close() fails with EINTR, so never retry. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Module                                                                                          */

static napi_value make_offload_constants(napi_env env) {
  static const struct {
    const char *name;
    uint32_t value;
  } flags[] = {
      {"TUN_F_CSUM", TUN_F_CSUM}, {"TUN_F_TSO4", TUN_F_TSO4}, {"TUN_F_TSO6", TUN_F_TSO6},
      {"TUN_F_TSO_ECN", TUN_F_TSO_ECN}, {"TUN_F_USO4", TUN_F_USO4}, {"TUN_F_USO6", TUN_F_USO6},
  };
  napi_value constants;
  napi_create_object(env, &constants);
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    set_named_property(env, constants, flags[i].name, make_u32(env, flags[i].value));
  return constants;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  static const struct {
    const char *name;
    napi_callback function;
  } functions[] = {
      {"tunOpen", tun_open},         {"tunSetOffload", tun_set_offload}, {"tunReadBatch", tun_read_batch},
      {"tunWriteBatch", tun_write_batch}, {"udpOpen", udp_open},      {"udpSendBatch", udp_send_batch},
      {"udpRecvBatch", udp_recv_batch}, {"pollStart", poll_start},   {"pollStop", poll_stop},
      {"close", close_fd},         {"udpSendGso", udp_send_gso}, {"tunWriteGro", tun_write_gro},
      {"groCoalesce", gro_coalesce}, {"gsoSegment", gso_segment_js}, {"completePartialChecksums", complete_partial_checksums},
  };
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value function;
    napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].function, NULL, &function);
    set_named_property(env, exports, functions[i].name, function);
  }
  set_named_property(env, exports, "constants", make_offload_constants(env));
  netlink_register(env, exports);
  return exports;
}

/*
 * Pod links over rtnetlink: a pod's veth pair, its host route and the pod side's address and routes,
 * without an `ip` process per step. Each call runs on a thread of its own (see start()) and returns a
 * promise: a veth delete waits for its device's references to drop (tens of milliseconds under load)
 * and must not hold up the event loop.
 *
 * The pod side is configured through a NETLINK_ROUTE socket created inside the pod's network
 * namespace. Network namespaces are per thread: the operation's thread enters the pod's namespace only
 * to create that socket and returns to its own before doing anything else, on every path.
 *
 * A failed step rejects with an Error carrying `code` ("EEXIST"), `errno` (negative, as in Node),
 * `step` (a stable name such as "create-veth") and a message naming the step and the objects, plus
 * the kernel's extended ack when it gave one. Steps run in order and stop at the first failure: the
 * caller decides what to undo.
 */
#define _GNU_SOURCE

#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETNS_PATH_MAX 4096
#define DETAIL_MAX 512
#define EXTACK_MAX 160
/* Requests are a few hundred bytes; a link dump entry without stats fits easily. */
#define REQUEST_MAX 1024
#define REPLY_MAX 16384

/* ---------------------------------------------------------------------------------------------- */
/* Failures                                                                                        */

typedef struct {
  char bridge[IFNAMSIZ];
  char host_if[IFNAMSIZ];
  uint8_t host_mac[6];
  char netns[NETNS_PATH_MAX];
  char ifname[IFNAMSIZ];
  uint8_t pod_mac[6];
  struct in_addr address;
  struct in_addr gateway;
  uint32_t mtu;
} pod_link_spec;

typedef struct {
  int err; /* positive errno; 0 when every step succeeded */
  const char *step;
  char detail[DETAIL_MAX];
  char extack[EXTACK_MAX];
} failure;

static int fail(failure *f, int err, const char *step, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the first failure of an operation; returns -err so callers can `return fail(...)`. */
static int fail(failure *f, int err, const char *step, const char *format, ...) {
  f->err = err;
  f->step = step;
  va_list args;
  va_start(args, format);
  vsnprintf(f->detail, sizeof f->detail, format, args);
  va_end(args);
  return -err;
}

/* ---------------------------------------------------------------------------------------------- */
/* Messages                                                                                        */

typedef struct {
  union {
    struct nlmsghdr header;
    char bytes[REQUEST_MAX];
  } u;
} request;

static struct nlmsghdr *request_start(request *r, uint16_t type, uint16_t flags, const void *body,
                                      size_t body_len) {
  memset(r, 0, sizeof *r);
  struct nlmsghdr *h = &r->u.header;
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  h->nlmsg_len = NLMSG_LENGTH(body_len);
  memcpy(NLMSG_DATA(h), body, body_len);
  return h;
}

/* Arguments are bounded (names < IFNAMSIZ, no paths in messages), so a request never nears REQUEST_MAX. */
static struct rtattr *put_attr(struct nlmsghdr *h, uint16_t type, const void *data, size_t len) {
  struct rtattr *rta = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
  if (NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len) > REQUEST_MAX) abort();
  rta->rta_type = type;
  rta->rta_len = RTA_LENGTH(len);
  if (len > 0) memcpy(RTA_DATA(rta), data, len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(rta->rta_len);
  return rta;
}

static void put_u32(struct nlmsghdr *h, uint16_t type, uint32_t value) {
  put_attr(h, type, &value, sizeof value);
}

static void put_string(struct nlmsghdr *h, uint16_t type, const char *value) {
  put_attr(h, type, value, strlen(value) + 1);
}

static struct rtattr *nest_start(struct nlmsghdr *h, uint16_t type) {
  return put_attr(h, type, NULL, 0);
}

static void nest_end(struct nlmsghdr *h, struct rtattr *nest) {
  nest->rta_len = (unsigned short)((char *)h + h->nlmsg_len - (char *)nest);
}

/* Appends raw bytes (the peer's ifinfomsg inside VETH_INFO_PEER) without an attribute header. */
static void put_raw(struct nlmsghdr *h, const void *data, size_t len) {
  if (NLMSG_ALIGN(h->nlmsg_len) + NLMSG_ALIGN(len) > REQUEST_MAX) abort();
  memcpy((char *)h + NLMSG_ALIGN(h->nlmsg_len), data, len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + NLMSG_ALIGN(len);
}

/* ---------------------------------------------------------------------------------------------- */
/* Sockets                                                                                         */

static int open_rtnetlink(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  int one = 1;
  /* Best effort: the kernel's own words for a refusal ("Nexthop has invalid gateway"). */
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  return fd;
}

/*
 * A NETLINK_ROUTE socket of the namespace `netns_fd`: the socket stays bound to the namespace it was
 * created in, the thread returns to its own at once. Every later request goes through a socket, so
 * nothing depends on the thread's namespace; the thread returns anyway, and fails the operation if
 * it cannot.
 */
static int open_rtnetlink_in(int netns_fd) {
  int own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (own < 0) return -errno;
  if (setns(netns_fd, CLONE_NEWNET) < 0) {
    int err = errno;
    close(own);
    return -err;
  }
  int fd = open_rtnetlink();
  int err = setns(own, CLONE_NEWNET) < 0 ? errno : 0;
  close(own);
  if (err != 0) {
    if (fd >= 0) close(fd);
    return -err;
  }
  return fd;
}

static void copy_extack(const struct nlmsghdr *reply, failure *f) {
  if (!(reply->nlmsg_flags & NLM_F_ACK_TLVS)) return;
  const struct nlmsgerr *e = NLMSG_DATA(reply);
  /* With NETLINK_CAP_ACK only the request's header is echoed, then the TLVs. */
  size_t offset = NLMSG_LENGTH(sizeof *e);
  if (!(reply->nlmsg_flags & NLM_F_CAPPED)) offset += NLMSG_ALIGN(e->msg.nlmsg_len - NLMSG_HDRLEN);
  const char *end = (const char *)reply + reply->nlmsg_len;
  for (const struct nlattr *a = (const struct nlattr *)((const char *)reply + offset);
       (const char *)a + NLA_HDRLEN <= end && a->nla_len >= NLA_HDRLEN && (const char *)a + a->nla_len <= end;
       a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len))) {
    if ((a->nla_type & NLA_TYPE_MASK) != NLMSGERR_ATTR_MSG) continue;
    snprintf(f->extack, sizeof f->extack, "%.*s", (int)(a->nla_len - NLA_HDRLEN),
             (const char *)a + NLA_HDRLEN);
    return;
  }
}

/*
 * Sends one request and reads until its ack. The ifinfomsg of a reply of type `reply_type` (a
 * GETLINK answer) is copied to `reply`. Returns 0 or -errno; the kernel's ack message goes to f->extack.
 */
static int talk(int fd, struct nlmsghdr *h, failure *f, uint16_t reply_type, struct ifinfomsg *reply) {
  static uint32_t sequence;
  uint32_t seq = __atomic_add_fetch(&sequence, 1, __ATOMIC_RELAXED);
  h->nlmsg_seq = seq;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
  static _Thread_local union {
    struct nlmsghdr header;
    char bytes[REPLY_MAX];
  } buffer;
  for (;;) {
    ssize_t n = recv(fd, buffer.bytes, sizeof buffer.bytes, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    size_t left = (size_t)n;
    for (struct nlmsghdr *m = &buffer.header; NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
      if (m->nlmsg_seq != seq) continue;
      if (m->nlmsg_type == NLMSG_ERROR) {
        if (m->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) return -EBADMSG;
        const struct nlmsgerr *e = NLMSG_DATA(m);
        if (e->error != 0) copy_extack(m, f);
        return e->error;
      }
      if (m->nlmsg_type == reply_type && reply != NULL && m->nlmsg_len >= NLMSG_LENGTH(sizeof *reply))
        memcpy(reply, NLMSG_DATA(m), sizeof *reply);
    }
  }
}

/* ---------------------------------------------------------------------------------------------- */
/* Requests                                                                                        */

static int find_link(int fd, const char *name, int *index, failure *f) {
  request r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  struct nlmsghdr *h = request_start(&r, RTM_GETLINK, 0, &ifi, sizeof ifi);
  put_string(h, IFLA_IFNAME, name);
  put_u32(h, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  struct ifinfomsg reply = {0};
  int rc = talk(fd, h, f, RTM_NEWLINK, &reply);
  if (rc < 0) return rc;
  if (reply.ifi_index <= 0) return -ENODEV;
  *index = reply.ifi_index;
  return 0;
}

/*
 * One queue each: a veth otherwise gets one per possible CPU, every queue a set of sysfs objects the
 * kernel creates (and a delete removes) under the RTNL lock, and a pod's veth without XDP uses one.
 * The pod end cannot come up here: it would open before the pair is joined (ENOTCONN).
 */
static int create_veth(int fd, const pod_link_spec *s, int bridge_index, int netns_fd, failure *f) {
  request r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
  struct nlmsghdr *h = request_start(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
  put_string(h, IFLA_IFNAME, s->host_if);
  put_u32(h, IFLA_MTU, s->mtu);
  put_attr(h, IFLA_ADDRESS, s->host_mac, sizeof s->host_mac);
  put_u32(h, IFLA_MASTER, (uint32_t)bridge_index);
  put_u32(h, IFLA_NUM_TX_QUEUES, 1);
  put_u32(h, IFLA_NUM_RX_QUEUES, 1);
  struct rtattr *linkinfo = nest_start(h, IFLA_LINKINFO);
  put_string(h, IFLA_INFO_KIND, "veth");
  struct rtattr *data = nest_start(h, IFLA_INFO_DATA);
  struct rtattr *peer = nest_start(h, VETH_INFO_PEER);
  struct ifinfomsg peer_ifi = {.ifi_family = AF_UNSPEC};
  put_raw(h, &peer_ifi, sizeof peer_ifi);
  put_string(h, IFLA_IFNAME, s->ifname);
  put_u32(h, IFLA_MTU, s->mtu);
  put_attr(h, IFLA_ADDRESS, s->pod_mac, sizeof s->pod_mac);
  put_u32(h, IFLA_NUM_TX_QUEUES, 1);
  put_u32(h, IFLA_NUM_RX_QUEUES, 1);
  put_u32(h, IFLA_NET_NS_FD, (uint32_t)netns_fd);
  nest_end(h, peer);
  nest_end(h, data);
  nest_end(h, linkinfo);
  return talk(fd, h, f, 0, NULL);
}

static int set_link_up(int fd, int index, failure *f) {
  request r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
  return talk(fd, request_start(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi), f, 0, NULL);
}

static int add_address(int fd, int index, struct in_addr address, failure *f) {
  request r;
  struct ifaddrmsg ifa = {
      .ifa_family = AF_INET, .ifa_prefixlen = 32, .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = (uint32_t)index};
  struct nlmsghdr *h = request_start(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
  put_attr(h, IFA_LOCAL, &address, sizeof address);
  put_attr(h, IFA_ADDRESS, &address, sizeof address);
  return talk(fd, h, f, 0, NULL);
}

typedef struct {
  uint16_t type;   /* RTM_NEWROUTE or RTM_DELROUTE */
  uint16_t flags;  /* NLM_F_CREATE | NLM_F_EXCL (add) or NLM_F_REPLACE (replace) */
  struct in_addr dst;
  uint8_t dst_len;
  uint8_t protocol; /* as `ip route`: boot unless said otherwise; unspecified for a delete */
  uint8_t scope;    /* link for a direct route, universe via a gateway, nowhere (any) for a delete */
  int oif;
  const struct in_addr *gateway;
} route_request;

static int change_route(int fd, const route_request *q, failure *f) {
  request r;
  struct rtmsg rtm = {
      .rtm_family = AF_INET,
      .rtm_dst_len = q->dst_len,
      .rtm_table = RT_TABLE_MAIN,
      .rtm_protocol = q->protocol,
      .rtm_scope = q->scope,
      .rtm_type = q->type == RTM_DELROUTE ? RTN_UNSPEC : RTN_UNICAST,
  };
  struct nlmsghdr *h = request_start(&r, q->type, q->flags, &rtm, sizeof rtm);
  if (q->dst_len > 0) put_attr(h, RTA_DST, &q->dst, sizeof q->dst);
  if (q->gateway != NULL) put_attr(h, RTA_GATEWAY, q->gateway, sizeof *q->gateway);
  put_u32(h, RTA_OIF, (uint32_t)q->oif);
  return talk(fd, h, f, 0, NULL);
}

static int delete_link(int fd, const char *name, failure *f) {
  request r;
  struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
  struct nlmsghdr *h = request_start(&r, RTM_DELLINK, 0, &ifi, sizeof ifi);
  put_string(h, IFLA_IFNAME, name);
  return talk(fd, h, f, 0, NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* Operations (own thread)                                                                         */

static const char *ip4(struct in_addr address, char buffer[INET_ADDRSTRLEN]) {
  return inet_ntop(AF_INET, &address, buffer, INET_ADDRSTRLEN);
}

static int attach_with(const pod_link_spec *s, int host, int pod, int netns_fd, failure *f) {
  char address[INET_ADDRSTRLEN], gateway[INET_ADDRSTRLEN];
  ip4(s->address, address);
  ip4(s->gateway, gateway);
  const char *ns = s->netns;
  int bridge, index, rc;
  if ((rc = find_link(host, s->bridge, &bridge, f)) < 0)
    return fail(f, -rc, "find-bridge", "find bridge %s", s->bridge);
  if ((rc = create_veth(host, s, bridge, netns_fd, f)) < 0)
    return fail(f, -rc, "create-veth", "create veth %s peer %s in %s", s->host_if, s->ifname, ns);
  /* The pod's /32 through the bridge keeps it reachable whatever the node's blocks and the cluster route
   * are (even when one node owns the whole range); `proto static` keeps the bridge's route sync
   * (route.ts) from taking it for one of its own. */
  route_request host_route = {.type = RTM_NEWROUTE, .flags = NLM_F_CREATE | NLM_F_REPLACE, .dst = s->address,
                              .dst_len = 32, .protocol = RTPROT_STATIC, .scope = RT_SCOPE_LINK, .oif = bridge};
  if ((rc = change_route(host, &host_route, f)) < 0)
    return fail(f, -rc, "host-route", "add route %s/32 dev %s", address, s->bridge);
  if ((rc = find_link(pod, s->ifname, &index, f)) < 0)
    return fail(f, -rc, "find-pod-link", "find %s in %s", s->ifname, ns);
  if ((rc = set_link_up(pod, index, f)) < 0) return fail(f, -rc, "pod-link-up", "set %s up in %s", s->ifname, ns);
  if ((rc = add_address(pod, index, s->address, f)) < 0)
    return fail(f, -rc, "pod-address", "add address %s/32 to %s in %s", address, s->ifname, ns);
  route_request on_link = {.type = RTM_NEWROUTE, .flags = NLM_F_CREATE | NLM_F_EXCL, .dst = s->gateway,
                           .dst_len = 32, .protocol = RTPROT_BOOT, .scope = RT_SCOPE_LINK, .oif = index};
  if ((rc = change_route(pod, &on_link, f)) < 0)
    return fail(f, -rc, "pod-gateway-route", "add route %s dev %s scope link in %s", gateway, s->ifname, ns);
  route_request by_default = {.type = RTM_NEWROUTE, .flags = NLM_F_CREATE | NLM_F_EXCL, .protocol = RTPROT_BOOT,
                              .scope = RT_SCOPE_UNIVERSE, .oif = index, .gateway = &s->gateway};
  if ((rc = change_route(pod, &by_default, f)) < 0)
    return fail(f, -rc, "pod-default-route", "add default route via %s dev %s in %s", gateway, s->ifname, ns);
  return 0;
}

/* Everything that can fail without changing anything comes first: sockets and the namespace. */
static void pod_attach_run(const pod_link_spec *s, failure *f) {
  int host = -1, pod = -1, netns_fd = -1;
  if ((host = open_rtnetlink()) < 0) {
    fail(f, -host, "open-netlink", "open a netlink socket");
  } else if ((netns_fd = open(s->netns, O_RDONLY | O_CLOEXEC)) < 0) {
    fail(f, errno, "open-netns", "open network namespace %s", s->netns);
  } else if ((pod = open_rtnetlink_in(netns_fd)) < 0) {
    fail(f, -pod, "enter-netns", "open a netlink socket in %s", s->netns);
  } else {
    attach_with(s, host, pod, netns_fd, f);
  }
  if (pod >= 0) close(pod);
  if (netns_fd >= 0) close(netns_fd);
  if (host >= 0) close(host);
}

static void pod_detach_run(const pod_link_spec *s, bool with_route, bool *existed, failure *f) {
  int host = open_rtnetlink();
  if (host < 0) {
    fail(f, -host, "open-netlink", "open a netlink socket");
    return;
  }
  int rc = delete_link(host, s->host_if, f);
  *existed = rc == 0;
  if (rc < 0 && rc != -ENODEV) {
    fail(f, -rc, "delete-link", "delete link %s", s->host_if);
  } else if (with_route) {
    char address[INET_ADDRSTRLEN];
    int bridge = 0;
    f->extack[0] = '\0';
    rc = find_link(host, s->bridge, &bridge, f);
    route_request q = {.type = RTM_DELROUTE, .dst = s->address, .dst_len = 32, .scope = RT_SCOPE_NOWHERE,
                       .oif = bridge};
    /* No bridge, no route through it. */
    if (rc == 0) rc = change_route(host, &q, f);
    if (rc < 0 && rc != -ENODEV && rc != -ESRCH && rc != -ENOENT)
      fail(f, -rc, "delete-route", "delete route %s/32 dev %s", ip4(s->address, address), s->bridge);
  }
  close(host);
}

/* ---------------------------------------------------------------------------------------------- */
/* JavaScript                                                                                      */

typedef struct {
  napi_threadsafe_function done;
  napi_deferred deferred;
  bool detach;
  bool with_route;
  bool existed;
  pod_link_spec spec;
  failure failure;
} link_work;

static napi_value reject_value(napi_env env, const failure *f) {
  char message[DETAIL_MAX + EXTACK_MAX + 64];
  if (f->extack[0] != '\0')
    snprintf(message, sizeof message, "%s: %s (%s)", f->detail, strerror(f->err), f->extack);
  else
    snprintf(message, sizeof message, "%s: %s", f->detail, strerror(f->err));
  const char *name = strerrorname_np(f->err);
  napi_value code, text, error, errno_value, step;
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_create_int32(env, -f->err, &errno_value);
  napi_create_string_utf8(env, f->step, NAPI_AUTO_LENGTH, &step);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "step", step);
  return error;
}

/* On the JS thread once the operation's thread is done; env is NULL when the environment is gone. */
static void settle(napi_env env, napi_value js_callback, void *context, void *data) {
  (void)js_callback;
  (void)context;
  link_work *w = data;
  if (env != NULL) {
    napi_value value;
    if (w->failure.err != 0) {
      napi_reject_deferred(env, w->deferred, reject_value(env, &w->failure));
    } else {
      if (w->detach)
        napi_get_boolean(env, w->existed, &value);
      else
        napi_get_undefined(env, &value);
      napi_resolve_deferred(env, w->deferred, value);
    }
  }
  free(w);
}

static void *run_operation(void *data) {
  link_work *w = data;
  if (w->detach)
    pod_detach_run(&w->spec, w->with_route, &w->existed, &w->failure);
  else
    pod_attach_run(&w->spec, &w->failure);
  napi_threadsafe_function done = w->done;
  if (napi_call_threadsafe_function(done, w, napi_tsfn_blocking) != napi_ok) free(w);
  napi_release_threadsafe_function(done, napi_tsfn_release);
  return NULL;
}

/*
 * Each operation runs on a short-lived thread of its own rather than on libuv's threadpool: a veth
 * delete holds its thread for tens of milliseconds, and 50 concurrent DELs filled the 4 pool threads,
 * so that the fsyncs of the agent's IPAM saves (also pool work) waited behind every delete. Creating
 * a thread costs tens of microseconds; these operations take milliseconds. The caller bounds how
 * many run at once.
 */
static napi_value start(napi_env env, link_work *w, const char *name) {
  napi_value promise, resource_name;
  if (napi_create_promise(env, &w->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, resource_name, 0, 1, NULL, NULL, NULL, settle,
                                      &w->done) != napi_ok) {
    free(w);
    napi_throw_error(env, NULL, "cannot start a netlink operation");
    return NULL;
  }
  pthread_attr_t attr;
  pthread_t thread;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int err = pthread_create(&thread, &attr, run_operation, w);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    fail(&w->failure, err, "start-thread", "start a thread for %s", name);
    napi_reject_deferred(env, w->deferred, reject_value(env, &w->failure));
    napi_release_threadsafe_function(w->done, napi_tsfn_abort);
    free(w);
  }
  return promise;
}

/* Reads spec[key] as a string of 1..max-1 bytes into out; throws and returns false otherwise. */
static bool get_string(napi_env env, napi_value object, const char *key, char *out, size_t max) {
  napi_value value;
  napi_valuetype type;
  size_t length = 0;
  char message[128];
  if (napi_get_named_property(env, object, key, &value) != napi_ok) return false;
  napi_typeof(env, value, &type);
  if (type != napi_string) {
    snprintf(message, sizeof message, "%s must be a string", key);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  napi_get_value_string_utf8(env, value, NULL, 0, &length);
  if (length == 0 || length >= max) {
    snprintf(message, sizeof message, "%s must have 1 to %zu bytes", key, max - 1);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  napi_get_value_string_utf8(env, value, out, max, &length);
  return true;
}

static bool get_ipv4(napi_env env, napi_value object, const char *key, struct in_addr *out) {
  char text[INET_ADDRSTRLEN + 1];
  if (!get_string(env, object, key, text, sizeof text)) return false;
  if (inet_pton(AF_INET, text, out) == 1) return true;
  char message[128];
  snprintf(message, sizeof message, "%s is not an IPv4 address: %s", key, text);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return false;
}

static bool get_mac(napi_env env, napi_value object, const char *key, uint8_t out[6]) {
  char text[20];
  char rest;
  if (!get_string(env, object, key, text, sizeof text)) return false;
  if (sscanf(text, "%2hhx:%2hhx:%2hhx:%2hhx:%2hhx:%2hhx%c", &out[0], &out[1], &out[2], &out[3], &out[4], &out[5],
             &rest) == 6 && strlen(text) == 17)
    return true;
  char message[128];
  snprintf(message, sizeof message, "%s is not a MAC address: %s", key, text);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return false;
}

static bool get_object(napi_env env, napi_value value, const char *what) {
  napi_valuetype type;
  napi_typeof(env, value, &type);
  if (type == napi_object) return true;
  char message[64];
  snprintf(message, sizeof message, "%s must be an object", what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return false;
}

/* podAttach(spec) -> Promise<void> */
static napi_value pod_attach(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value spec, mtu;
  if (napi_get_cb_info(env, info, &argc, &spec, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || !get_object(env, spec, "spec")) return NULL;
  link_work *w = calloc(1, sizeof *w);
  if (w == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  pod_link_spec *s = &w->spec;
  uint32_t mtu_value = 0;
  bool ok = get_string(env, spec, "bridge", s->bridge, sizeof s->bridge) &&
            get_string(env, spec, "hostIf", s->host_if, sizeof s->host_if) &&
            get_mac(env, spec, "hostMac", s->host_mac) &&
            get_string(env, spec, "netns", s->netns, sizeof s->netns) &&
            get_string(env, spec, "ifname", s->ifname, sizeof s->ifname) &&
            get_mac(env, spec, "podMac", s->pod_mac) && get_ipv4(env, spec, "address", &s->address) &&
            get_ipv4(env, spec, "gateway", &s->gateway) &&
            napi_get_named_property(env, spec, "mtu", &mtu) == napi_ok;
  if (ok && (napi_get_value_uint32(env, mtu, &mtu_value) != napi_ok || mtu_value < 68 || mtu_value > 65535)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "mtu must be an integer from 68 to 65535");
    ok = false;
  }
  if (!ok) {
    free(w);
    return NULL;
  }
  s->mtu = mtu_value;
  return start(env, w, "podAttach");
}

/* podDetach(hostIf, route?: {address, bridge}) -> Promise<boolean>: false when the link was gone. */
static napi_value pod_detach(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name_holder;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  link_work *w = calloc(1, sizeof *w);
  if (w == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  w->detach = true;
  napi_valuetype route_type = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &route_type);
  w->with_route = route_type != napi_undefined;
  /* hostIf is read through a holder object so that one validator serves properties and arguments. */
  bool ok = argc >= 1 && napi_create_object(env, &name_holder) == napi_ok &&
            napi_set_named_property(env, name_holder, "hostIf", argv[0]) == napi_ok &&
            get_string(env, name_holder, "hostIf", w->spec.host_if, sizeof w->spec.host_if);
  if (ok && w->with_route)
    ok = get_object(env, argv[1], "route") && get_ipv4(env, argv[1], "address", &w->spec.address) &&
         get_string(env, argv[1], "bridge", w->spec.bridge, sizeof w->spec.bridge);
  if (!ok) {
    if (argc < 1) napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "hostIf must be a string");
    free(w);
    return NULL;
  }
  return start(env, w, "podDetach");
}

void netlink_register(napi_env env, napi_value exports) {
  napi_value function;
  napi_create_function(env, "podAttach", NAPI_AUTO_LENGTH, pod_attach, NULL, &function);
  napi_set_named_property(env, exports, "podAttach", function);
  napi_create_function(env, "podDetach", NAPI_AUTO_LENGTH, pod_detach, NULL, &function);
  napi_set_named_property(env, exports, "podDetach", function);
}

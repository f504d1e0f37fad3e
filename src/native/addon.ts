/**
 * Typed loader for the `weft_dp` native addon (native/weft_dp.c): batched, non-blocking TUN and UDP
 * I/O plus libuv readiness polling. Build it with `npm run build:native`.
 *
 * Conventions shared by the batch calls: packets live in a caller-owned Buffer and are described by
 * parallel typed arrays; arguments are validated before any syscall (RangeError when a batch would
 * reach outside its buffer or arrays); kernel failures throw an Error with `code` (e.g. 'EBUSY'),
 * negative `errno` and `syscall`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Error thrown by the addon for a failed syscall. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

/** Error rejected by podAttach/podDetach: the step that failed (e.g. 'create-veth') and the kernel's errno. */
export interface NetlinkError extends Error {
  code: string;
  errno: number;
  step: string;
}

/** A pod's veth pair as podAttach creates it (the fields of plumbing's PodLinkSpec). */
export interface NativePodLink {
  bridge: string;
  hostIf: string;
  hostMac: string;
  /** Path of the pod's network namespace, e.g. /var/run/netns/cni-… */
  netns: string;
  ifname: string;
  podMac: string;
  address: string;
  gateway: string;
  mtu: number;
}

/** Opaque handle returned by {@link WeftDpAddon.pollStart}. */
export type PollHandle = { readonly __brand: 'weft_dp.PollHandle' };

export interface TunOpenFlags {
  /** Prefix every packet with a 10-byte virtio_net_hdr (IFF_VNET_HDR), needed for offloads. */
  vnetHdr?: boolean;
}

export interface UdpOpenOptions {
  /** SO_RCVBUF in bytes; as root SO_RCVBUFFORCE lifts the net.core.rmem_max cap. */
  rcvbuf?: number;
  /** SO_SNDBUF in bytes; as root SO_SNDBUFFORCE lifts the net.core.wmem_max cap. */
  sndbuf?: number;
  /** Ask for UDP_GRO: the kernel may hand over several datagrams of one flow as one (see udpRecvBatch). */
  gro?: boolean;
}

export interface UdpSocketInfo {
  fd: number;
  /** The bound port (the ephemeral one when 0 was asked for). */
  port: number;
  /** Buffer sizes the kernel granted (it doubles the requested value for bookkeeping). */
  rcvbuf: number;
  sndbuf: number;
  /** UDP_GRO was asked for and granted. */
  gro: boolean;
  /** The kernel knows UDP_SEGMENT (UDP GSO sends). */
  gso: boolean;
}

/** TUNSETOFFLOAD bits. */
export interface TunOffloadFlags {
  TUN_F_CSUM: number;
  TUN_F_TSO4: number;
  TUN_F_TSO6: number;
  TUN_F_TSO_ECN: number;
  TUN_F_USO4: number;
  TUN_F_USO6: number;
}

export interface WeftDpAddon {
  /** Opens /dev/net/tun non-blocking as IFF_TUN|IFF_NO_PI. EBUSY: another process holds `name`. */
  tunOpen(name: string, flags?: TunOpenFlags): { fd: number; name: string };
  /** TUNSETOFFLOAD; the device must have been opened with vnetHdr. */
  tunSetOffload(fd: number, flags: number): void;
  /**
   * Up to `max` reads; packet i lands at i*slotSize+headroom. Returns how many were read (0 when
   * none were waiting). A packet longer than slotSize-headroom is reported with length TRUNCATED_LENGTH (io.ts): drop it.
   */
  tunReadBatch(
    fd: number,
    buf: Uint8Array,
    slotSize: number,
    headroom: number,
    max: number,
    offsets: Uint32Array,
    lengths: Uint32Array,
  ): number;
  /**
   * Writes packets 0..n-1; returns how many the kernel accepted. A full queue (EAGAIN, ENOBUFS) ends
   * the batch; a packet refused on its own (EINVAL, EMSGSIZE, EIO when the link is down) is skipped.
   */
  tunWriteBatch(fd: number, buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, n: number): number;
  /** Non-blocking IPv4 UDP socket with SO_REUSEADDR, bound to bindAddress:port. */
  udpOpen(bindAddress: string, port: number, opts?: UdpOpenOptions): UdpSocketInfo;
  /**
   * sendmmsg of packets 0..n-1 to addrs[i]:ports[i]. Stops at a full socket buffer (EAGAIN/ENOBUFS)
   * and skips a datagram refused on its own (unreachable, EPERM, EMSGSIZE...). Returns how many were sent.
   */
  udpSendBatch(
    fd: number,
    buf: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    addrs: Uint32Array,
    ports: Uint16Array,
    n: number,
  ): number;
  /**
   * recvmmsg of up to `max` datagrams; datagram i lands at i*slotSize, with the sender in addrs/ports.
   * A datagram longer than slotSize (MSG_TRUNC) is reported with length TRUNCATED_LENGTH (io.ts): drop it.
   */
  udpRecvBatch(
    fd: number,
    buf: Uint8Array,
    slotSize: number,
    max: number,
    offsets: Uint32Array,
    lengths: Uint32Array,
    addrs: Uint32Array,
    ports: Uint16Array,
    gsoSizes?: Uint32Array,
  ): number;
  /**
   * Segments TUN reads 0..n-1 ([virtio_net_hdr][IPv4], TSO/USO super-packets or single packets) into
   * GPE datagrams with complete inner checksums and sends them to addrs[i]:ports[i] with sendmmsg, up
   * to maxSegments datagrams per UDP_SEGMENT message (1 = no GSO). segments[i] gets how many inner
   * packets packet i became (0: malformed, skipped). Returns the inner packets sent; a full socket
   * buffer ends the batch. Throws EIO when the device refuses UDP GSO. Edits the packets in place.
   * Where `partial[i]` is set, TCP/UDP checksums are left partial (pseudo-header sum) and the
   * datagrams carry the GPE partial-checksum bit: only for peers that announced they complete them.
   */
  udpSendGso(
    fd: number,
    buf: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    addrs: Uint32Array,
    ports: Uint16Array,
    n: number,
    gpeHeader: Uint8Array,
    maxSegments: number,
    segments: Uint32Array,
    partial?: Uint8Array,
  ): number;
  /**
   * Writes whole IPv4 packets 0..n-1 to a vnetHdr TUN, consecutive TCP segments of one flow merged
   * into GSO super-packets, and with `coalesceUdp` (a TUN granted USO) same-size UDP datagrams of one
   * flow too. A packet with `partial[i]` set (its checksum holds only the pseudo-header sum) is written
   * NEEDS_CSUM. Returns the packets accepted (as tunWriteBatch).
   */
  tunWriteGro(
    fd: number,
    buf: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    n: number,
    coalesceUdp?: boolean,
    partial?: Uint8Array,
  ): number;
  /** What tunWriteGro would write, copied into `out` as [virtio_net_hdr][packet] each; returns the count. */
  groCoalesce(
    buf: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    n: number,
    out: Uint8Array,
    outOffsets: Uint32Array,
    outLengths: Uint32Array,
    coalesceUdp?: boolean,
    partial?: Uint8Array,
  ): number;
  /** What udpSendGso sends for one TUN read, copied into `out` one datagram each; 0 when malformed. */
  gsoSegment(
    buf: Uint8Array,
    offset: number,
    length: number,
    gpeHeader: Uint8Array,
    out: Uint8Array,
    outOffsets: Uint32Array,
    outLengths: Uint32Array,
    partial?: boolean,
  ): number;
  /**
   * For a TUN without the virtio header: finishes in place the TCP/UDP checksum of each packet
   * 0..n-1 flagged in `partial` (its checksum field holds only the pseudo-header sum); other flagged
   * packets stay as they are, for the kernel to check. Returns the packets completed.
   */
  completePartialChecksums(
    buf: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    n: number,
    partial: Uint8Array,
  ): number;
  /**
   * Calls `callback` on the calling thread's event loop whenever fd is readable (level-triggered).
   * After a poll error (POLLERR) the callback receives it and polling continues; the next read reports
   * the real errno. An exception thrown by the callback becomes an uncaught exception. The active poll
   * keeps the event loop alive until pollStop. Stop it before closing the fd.
   */
  pollStart(fd: number, callback: (error?: NativeError) => void): PollHandle;
  /** Stops and releases a poll; calling it again is a no-op. */
  pollStop(handle: PollHandle): void;
  close(fd: number): void;
  /**
   * On a thread of its own (not libuv's threadpool), over rtnetlink: creates the veth pair (host end up, MTU, MAC, port of
   * the bridge; pod end in the netns at `netns` with its name, MTU and MAC), replaces the host route
   * `address/32 dev bridge proto static`, then inside the pod's namespace sets the pod end up, adds
   * `address/32`, an on-link route to the gateway and the default route via it. Stops at the first
   * failing step and rejects with a {@link NetlinkError}; undoing is the caller's choice.
   * Malformed arguments throw TypeError/RangeError before anything is done.
   */
  podAttach(spec: NativePodLink): Promise<void>;
  /**
   * Deletes the host end (the pod end goes with it), then the host route if given. Resolves false
   * when the link was already gone; a route already gone is not an error.
   */
  podDetach(hostIf: string, route?: { address: string; bridge: string }): Promise<boolean>;
  constants: TunOffloadFlags;
}

const ADDON_PATH = join('native', 'build', 'Release', 'weft_dp.node');

let loaded: WeftDpAddon | undefined;

/** The addon, loaded on first use. Throws with build instructions when it has not been built. */
export function weftDp(): WeftDpAddon {
  loaded ??= loadAddon();
  return loaded;
}

function loadAddon(): WeftDpAddon {
  const path = findAddon(dirname(fileURLToPath(import.meta.url)));
  if (path === undefined) {
    throw new Error(
      `native addon ${ADDON_PATH} not found: run \`npm run build:native\` in the weft checkout`,
    );
  }
  return createRequire(import.meta.url)(path) as WeftDpAddon;
}

/** Walks up from this module (src/native or dist/src/native) to the checkout that holds the build. */
function findAddon(start: string): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, ADDON_PATH);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * The data plane's two kernel-facing devices, as batched interfaces.
 *
 * Both move packets through a reusable {@link PacketBatch}: one contiguous buffer split into
 * fixed-size slots, with parallel typed arrays for each packet's offset, length and underlay
 * address. Nothing is allocated per packet; the forwarder edits offsets and headers in place.
 */

/** The length a device reports for a packet that did not fit its slot (and was cut short). */
export const TRUNCATED_LENGTH = 0xffffffff;

/** Packets 0..count-1 at offsets/lengths inside one buffer, e.g. inner packets inside received datagrams. */
export class PacketList {
  /** Start of packet i inside {@link buf}. */
  readonly offsets: Uint32Array;
  /** Length of packet i in bytes. */
  readonly lengths: Uint32Array;
  /**
   * 1 where packet i's TCP/UDP checksum is (to be) left partial: before a segmented send, the peer
   * completes it; in a list for the TUN, it holds only the pseudo-header sum (written NEEDS_CSUM).
   */
  readonly partial: Uint8Array;
  /** Number of valid entries. */
  count = 0;

  constructor(
    readonly buf: Buffer,
    readonly capacity: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`batch capacity ${capacity}`);
    this.offsets = new Uint32Array(capacity);
    this.lengths = new Uint32Array(capacity);
    this.partial = new Uint8Array(capacity);
  }
}

/** A reusable set of packet slots. Slot i occupies buf[i*slotSize, (i+1)*slotSize). */
export class PacketBatch extends PacketList {
  /**
   * Underlay IPv4 address of packet i as an unsigned 32-bit integer (network order value, i.e.
   * 10.0.0.1 = 0x0a000001): the sender after a receive, the destination before a send.
   */
  readonly addrs: Uint32Array;
  /** Underlay UDP port of packet i: source after a receive, destination before a send. */
  readonly ports: Uint16Array;
  /**
   * After a receive on a socket with GRO: the size of the datagrams that datagram i was coalesced
   * from (the last one may be shorter), 0 for a plain datagram. After a segmented send: how many
   * inner packets super-packet i became (0: malformed, not sent).
   */
  readonly segments: Uint32Array;

  constructor(
    capacity: number,
    readonly slotSize: number,
  ) {
    if (!Number.isInteger(slotSize) || slotSize < 64) throw new RangeError(`batch slot size ${slotSize}`);
    super(Buffer.alloc(capacity * slotSize), capacity);
    this.addrs = new Uint32Array(capacity);
    this.ports = new Uint16Array(capacity);
    this.segments = new Uint32Array(capacity);
  }

  slotStart(i: number): number {
    return i * this.slotSize;
  }
}

/** Size of the virtio_net_hdr in front of every packet read from a TUN with {@link TunDevice.vnetHdr}. */
export const VNET_HDR_LENGTH = 10;

/**
 * A layer-3 TUN device opened with IFF_TUN | IFF_NO_PI: every read returns one IP packet.
 * Reads and writes never block.
 */
export interface TunDevice {
  readonly name: string;
  /**
   * Offload mode (IFF_VNET_HDR): every read starts with a {@link VNET_HDR_LENGTH}-byte
   * virtio_net_hdr and may be a TCP/UDP super-packet of up to 64 KB to be segmented (by
   * {@link UdpTransport.sendSegmented}); writes coalesce consecutive TCP segments of a flow.
   */
  readonly vnetHdr: boolean;
  /**
   * Reads up to batch.capacity packets. Packet i is placed at slotStart(i) + headroom, so that a
   * header of up to `headroom` bytes can later be written in front of it without a copy. Sets
   * offsets, lengths and count; returns count (0 when nothing is waiting).
   */
  readBatch(batch: PacketBatch, headroom: number): number;
  /**
   * Writes whole IP packets 0..count-1 (offsets/lengths). Those flagged in `partial` hold only the
   * pseudo-header sum in their TCP/UDP checksum: in offload mode they are written CHECKSUM_PARTIAL,
   * without the virtio header the checksum is finished first. Returns how many the kernel accepted;
   * the rest were refused (queue full or invalid) and are the caller's to count as dropped.
   */
  writeBatch(packets: PacketList): number;
  /** Calls `onReady` whenever the device has packets to read (level-triggered). */
  onReadable(onReady: () => void): void;
  close(): void;
}

/** An IPv4 UDP socket bound to the data-plane port. Sends and receives never block. */
export interface UdpTransport {
  readonly localAddress: string;
  readonly localPort: number;
  /**
   * Receives up to batch.capacity datagrams, datagram i at slotStart(i). Sets offsets, lengths,
   * addrs/ports (the sender) and count; returns count (0 when nothing is waiting).
   */
  recvBatch(batch: PacketBatch): number;
  /**
   * Sends packets 0..count-1 to addrs[i]:ports[i]. Returns how many were sent; the rest were
   * refused (socket buffer full) and are the caller's to count as dropped.
   */
  sendBatch(batch: PacketBatch): number;
  /**
   * Receive side offload: datagrams may arrive coalesced (UDP GRO), see {@link PacketBatch.segments}.
   */
  readonly gro: boolean;
  /**
   * Sends TUN reads 0..count-1 of a {@link TunDevice.vnetHdr} device to addrs[i]:ports[i], each
   * segmented into GPE datagrams (header `gpeHeader`) with complete inner checksums (partial and
   * marked where batch.partial[i] is set), as UDP GSO trains where the kernel allows it. Sets
   * batch.segments; returns the inner packets sent.
   */
  sendSegmented(batch: PacketBatch, gpeHeader: Uint8Array): number;
  onReadable(onReady: () => void): void;
  close(): void;
}

export { ipv4ToUint32, uint32ToIpv4 } from '../util/ipv4.js';

import {
  checkGpeDatagram,
  GPE_HEADER_LENGTH,
  gpeHeader,
  hasPartialChecksum,
  ipv4Destination,
  ipv4Source,
  ipv4TotalLength,
  NextProtocol,
  WireVerdict,
} from '../wire/index.js';
import { type DataplaneCounters, DropReason } from './counters.js';
import {
  PacketBatch,
  PacketList,
  TRUNCATED_LENGTH,
  type TunDevice,
  type UdpTransport,
  VNET_HDR_LENGTH,
} from './io.js';
import { LOCAL, type RouteTable } from './route-table.js';

export interface ForwarderOptions {
  tun: TunDevice;
  udp: UdpTransport;
  routes: RouteTable;
  counters: DataplaneCounters;
  vni: number;
  /** Largest inner packet that may be encapsulated: the overlay MTU. */
  maxInnerSize: number;
  /** Packets per read call (and per sendmmsg / recvmmsg). */
  batchSize?: number;
  /**
   * Read batches drained per readiness callback before yielding to the event loop, so that one
   * busy direction cannot starve the other or the control plane.
   */
  batchesPerWakeup?: number;
}

const DEFAULT_BATCH_SIZE = 64;
const DEFAULT_BATCHES_PER_WAKEUP = 8;
/** Room for the largest datagram we accept: anything longer is truncated by the kernel and dropped. */
const SLOT_SIZE = 2048;
/** Room for a TUN super-packet (virtio_net_hdr + 64 KB) or a GRO-coalesced datagram. */
const OFFLOAD_SLOT_SIZE = VNET_HDR_LENGTH + 65536 + 6;
/** Inner packets written to the TUN per call; received GRO trains are split into this list. */
const DECAP_LIST_SIZE = 4096;
const IPV4_MIN_HEADER = 20;
const TCP_MIN_HEADER = 20;
const UDP_HEADER = 8;
const GSO_TYPE_NONE = 0;
const GSO_TYPE_TCPV4 = 1;
const GSO_TYPE_MASK = 0x7f;

/**
 * The encapsulate/decapsulate loop. It makes no decisions of its own: the control plane hands it
 * a {@link RouteTable} snapshot, and it applies it to batches of packets in both directions.
 *
 * TUN → lookup destination → write the GPE header into the headroom in front of the packet →
 * sendmmsg (offload mode: segment, leaving inner checksums partial for peers that complete them). Socket → known sender? → valid GPE for our VNI? → inner source owned by that sender?
 * → inner destination served here? → strip header (by moving the offset) → TUN.
 */
export class Forwarder {
  private routes: RouteTable;
  private readonly tun: TunDevice;
  private readonly udp: UdpTransport;
  private readonly counters: DataplaneCounters;
  private readonly vni: number;
  /** The encapsulation header, validated once, copied in front of every packet. */
  private readonly header: Uint8Array;
  private readonly maxInnerSize: number;
  private readonly batchesPerWakeup: number;
  private readonly txBatch: PacketBatch;
  private readonly rxBatch: PacketBatch;
  /** Inner packets of the datagrams being received, ready for the TUN. */
  private readonly decapList: PacketList;
  /** Peer index of each packet in the batch being sent, for per-peer counters. */
  private readonly txPeers: Int32Array;
  /** Per entry of a super-packet send: the IP + L4 header size every segment repeats (0: no GSO). */
  private readonly txHeaders: Uint32Array;
  /**
   * Inner source and destination last checked for the datagram (or GRO train) being received: its
   * segments are nearly always one flow, so the two route lookups run once per train. Reset per
   * datagram, so a cached verdict never outlives its sender.
   */
  private checkedSource = -1;
  private checkedDestination = -1;
  private running = false;

  constructor(options: ForwarderOptions) {
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.tun = options.tun;
    this.udp = options.udp;
    this.routes = options.routes;
    this.counters = options.counters;
    this.vni = options.vni;
    this.header = gpeHeader(options.vni, NextProtocol.IPv4);
    this.maxInnerSize = options.maxInnerSize;
    this.batchesPerWakeup = options.batchesPerWakeup ?? DEFAULT_BATCHES_PER_WAKEUP;
    if (this.maxInnerSize + GPE_HEADER_LENGTH > SLOT_SIZE) {
      throw new RangeError(`overlay MTU ${this.maxInnerSize} is larger than the data plane supports`);
    }
    this.txBatch = new PacketBatch(batchSize, this.tun.vnetHdr ? OFFLOAD_SLOT_SIZE : SLOT_SIZE);
    this.rxBatch = new PacketBatch(batchSize, this.udp.gro ? OFFLOAD_SLOT_SIZE : SLOT_SIZE);
    this.decapList = new PacketList(this.rxBatch.buf, DECAP_LIST_SIZE);
    this.txPeers = new Int32Array(batchSize);
    this.txHeaders = new Uint32Array(batchSize);
  }

  /** Swaps in a new route table; packets already in a batch finish with the old one. */
  setRoutes(routes: RouteTable): void {
    this.routes = routes;
  }

  get routeTable(): RouteTable {
    return this.routes;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tun.onReadable(() => this.pumpTun());
    this.udp.onReadable(() => this.pumpUdp());
  }

  stop(): void {
    this.running = false;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Moves pod packets from the TUN to their peers. Returns the number of packets read. */
  pumpTun(): number {
    let total = 0;
    const batch = this.txBatch;
    for (let round = 0; round < this.batchesPerWakeup && this.running; round++) {
      const read = this.tun.readBatch(batch, GPE_HEADER_LENGTH);
      if (read === 0) break;
      total += read;
      this.counters.tunReadBatch();
      if (this.tun.vnetHdr) this.encapsulateSuperPackets(batch, read);
      else this.encapsulateBatch(batch, read);
      if (read < batch.capacity) break;
    }
    return total;
  }

  /** Moves datagrams from the socket to local pods. Returns the number of datagrams received. */
  pumpUdp(): number {
    let total = 0;
    const batch = this.rxBatch;
    for (let round = 0; round < this.batchesPerWakeup && this.running; round++) {
      const received = this.udp.recvBatch(batch);
      if (received === 0) break;
      total += received;
      this.counters.udpRecvBatch();
      this.decapsulateBatch(batch, received);
      if (received < batch.capacity) break;
    }
    return total;
  }

  private encapsulateBatch(batch: PacketBatch, read: number): void {
    const { buf, offsets, lengths } = batch;
    const routes = this.routes;
    const counters = this.counters;
    let out = 0;
    for (let i = 0; i < read; i++) {
      const offset = offsets[i] as number;
      const length = lengths[i] as number;
      if (length > this.maxInnerSize) {
        counters.drop(DropReason.Oversize);
        continue;
      }
      const peer = this.peerFor(buf, offset, length);
      if (peer < 0) continue;
      const start = offset - GPE_HEADER_LENGTH;
      buf.set(this.header, start);
      offsets[out] = start;
      lengths[out] = length + GPE_HEADER_LENGTH;
      this.addressTo(batch, out, peer);
      out++;
    }
    if (out === 0) return;
    batch.count = out;
    const sent = this.udp.sendBatch(batch);
    let bytes = 0;
    for (let i = 0; i < out; i++) {
      const innerLength = (lengths[i] as number) - GPE_HEADER_LENGTH;
      routes.countTx(this.txPeers[i] as number, innerLength);
      if (i < sent) bytes += innerLength;
    }
    counters.encapsulated(sent, bytes);
    if (sent < out) counters.drop(DropReason.SendFailed, out - sent);
  }

  /**
   * TUN reads in offload mode: [virtio_net_hdr][IPv4 packet or TSO/USO super-packet]. The lookup
   * is per super-packet; segmentation, checksums and the GPE headers are the transport's.
   */
  private encapsulateSuperPackets(batch: PacketBatch, read: number): void {
    const { buf, offsets, lengths, segments } = batch;
    const routes = this.routes;
    const counters = this.counters;
    let out = 0;
    for (let i = 0; i < read; i++) {
      const offset = offsets[i] as number;
      const length = lengths[i] as number;
      const ip = offset + VNET_HDR_LENGTH;
      const largest =
        length === TRUNCATED_LENGTH
          ? Number.POSITIVE_INFINITY
          : this.largestSegment(buf, offset, length, out);
      if (largest < 0) {
        counters.drop(DropReason.Malformed);
        continue;
      }
      if (largest > this.maxInnerSize) {
        counters.drop(DropReason.Oversize);
        continue;
      }
      const peer = this.peerFor(buf, ip, length - VNET_HDR_LENGTH);
      if (peer < 0) continue;
      offsets[out] = offset;
      lengths[out] = length;
      this.addressTo(batch, out, peer);
      out++;
    }
    if (out === 0) return;
    batch.count = out;
    const sent = this.udp.sendSegmented(batch, this.header);
    let planned = 0;
    let bytes = 0;
    for (let i = 0; i < out; i++) {
      const count = segments[i] as number;
      if (count === 0) {
        counters.drop(DropReason.Malformed);
        continue;
      }
      // The headers repeat in every segment; the send has edited the packet, so use what was parsed before.
      const innerBytes =
        (lengths[i] as number) - VNET_HDR_LENGTH + (count - 1) * (this.txHeaders[i] as number);
      routes.countTx(this.txPeers[i] as number, innerBytes, count);
      planned += count;
      bytes += innerBytes;
    }
    counters.encapsulated(sent, sent === planned ? bytes : Math.round((bytes * sent) / planned));
    if (sent < planned) counters.drop(DropReason.SendFailed, planned - sent);
  }

  /** The peer serving the destination of the IPv4 packet at `ip`, or -1 (counted as NoRoute). */
  private peerFor(buf: Buffer, ip: number, ipLength: number): number {
    // Pod addressing is IPv4; an IPv6 or damaged packet from the kernel has nowhere to go.
    const peer =
      ipLength < IPV4_MIN_HEADER || (buf[ip] as number) >> 4 !== 4
        ? -1
        : this.routes.lookup(buf.readUInt32BE(ip + 16));
    if (peer < 0) this.counters.drop(DropReason.NoRoute);
    return peer;
  }

  /** Addresses entry `out` of the batch being sent to `peer`. */
  private addressTo(batch: PacketBatch, out: number, peer: number): void {
    batch.addrs[out] = this.routes.peerAddrs[peer] as number;
    batch.ports[out] = this.routes.peerPorts[peer] as number;
    batch.partial[out] = this.routes.peerPartial[peer] as number;
    this.txPeers[out] = peer;
  }

  /**
   * The largest inner packet a TUN read becomes: itself, or header + MSS for a super-packet; -1 when
   * the read is too short for the headers its virtio header names (nothing past `length` is read).
   * Records the header size as entry `out`'s txHeaders.
   */
  private largestSegment(buf: Buffer, offset: number, length: number, out: number): number {
    this.txHeaders[out] = 0;
    if (length < VNET_HDR_LENGTH + IPV4_MIN_HEADER) return -1;
    const gsoType = (buf[offset + 1] as number) & GSO_TYPE_MASK;
    if (gsoType === GSO_TYPE_NONE) return length - VNET_HDR_LENGTH;
    const ip = offset + VNET_HDR_LENGTH;
    const ihl = ((buf[ip] as number) & 15) * 4;
    const tcp = gsoType === GSO_TYPE_TCPV4;
    if (ihl < IPV4_MIN_HEADER || VNET_HDR_LENGTH + ihl + (tcp ? TCP_MIN_HEADER : UDP_HEADER) > length)
      return -1;
    const headers = ihl + (tcp ? ((buf[ip + ihl + 12] as number) >> 4) * 4 : UDP_HEADER);
    if (VNET_HDR_LENGTH + headers > length) return -1;
    this.txHeaders[out] = headers;
    return headers + buf.readUInt16LE(offset + 4);
  }

  /**
   * Validates every received datagram, or every segment of a GRO-coalesced one, and writes the
   * inner packets that pass to the TUN.
   */
  private decapsulateBatch(batch: PacketBatch, received: number): void {
    const { offsets, lengths, addrs, segments } = batch;
    const routes = this.routes;
    const counters = this.counters;
    const gro = this.udp.gro;
    for (let i = 0; i < received; i++) {
      const offset = offsets[i] as number;
      const length = lengths[i] as number;
      const peer = routes.peerBySender(addrs[i] as number);
      const segmentSize = gro ? (segments[i] as number) : 0;
      if (peer < 0) {
        counters.drop(DropReason.UnknownSender, segmentSize > 0 ? Math.ceil(length / segmentSize) : 1);
        continue;
      }
      // Larger than any datagram we accept, e.g. an unsegmented GSO train from a peer whose
      // underlay never split it, or (GRO slots hold 64 KB) a reassembled datagram or train of them.
      if (length === TRUNCATED_LENGTH || (segmentSize || length) > SLOT_SIZE) {
        counters.drop(
          DropReason.Oversize,
          segmentSize > 0 && length !== TRUNCATED_LENGTH ? Math.ceil(length / segmentSize) : 1,
        );
        continue;
      }
      this.checkedSource = -1;
      this.checkedDestination = -1;
      if (segmentSize === 0 || segmentSize >= length) {
        this.acceptDatagram(offset, length, peer);
        continue;
      }
      for (let at = 0; at < length; at += segmentSize) {
        this.acceptDatagram(offset + at, Math.min(segmentSize, length - at), peer);
      }
    }
    this.flushDecapsulated();
  }

  /** Checks one datagram from `peer` and queues its inner packet for the TUN, or counts the drop. */
  private acceptDatagram(offset: number, length: number, peer: number): void {
    const buf = this.rxBatch.buf;
    const routes = this.routes;
    const counters = this.counters;
    const verdict = checkGpeDatagram(buf, offset, length, this.vni);
    if (verdict !== WireVerdict.Ok) {
      counters.drop(verdict === WireVerdict.WrongVni ? DropReason.WrongVni : DropReason.Malformed);
      return;
    }
    const inner = offset + GPE_HEADER_LENGTH;
    if ((buf[inner] as number) >> 4 !== 4) {
      counters.drop(DropReason.NoRoute);
      return;
    }
    const source = ipv4Source(buf, inner);
    if (source !== this.checkedSource) {
      if (routes.lookup(source) !== peer) {
        counters.drop(DropReason.SpoofedSource);
        return;
      }
      this.checkedSource = source;
    }
    const destination = ipv4Destination(buf, inner);
    if (destination !== this.checkedDestination) {
      if (routes.lookup(destination) !== LOCAL) {
        counters.drop(DropReason.NoRoute);
        return;
      }
      this.checkedDestination = destination;
    }
    if (buf[inner + 8] === 0) {
      counters.drop(DropReason.TtlExpired);
      return;
    }
    // Handed on with the packet: the TUN writes it CHECKSUM_PARTIAL, or finishes it without a virtio
    // header (a peer may send the bit for a while to a node that never announced the feature).
    const partial = hasPartialChecksum(buf, offset);
    // The IPv4 total length (already checked to fit) drops any padding after the packet.
    const innerLength = ipv4TotalLength(buf, inner);
    const list = this.decapList;
    if (list.count === list.capacity) this.flushDecapsulated();
    list.offsets[list.count] = inner;
    list.lengths[list.count] = innerLength;
    list.partial[list.count] = partial ? 1 : 0;
    list.count++;
    routes.countRx(peer, innerLength);
  }

  private flushDecapsulated(): void {
    const list = this.decapList;
    const out = list.count;
    if (out === 0) return;
    const { lengths } = list;
    const written = this.tun.writeBatch(list);
    list.count = 0;
    let writtenBytes = 0;
    for (let i = 0; i < written; i++) writtenBytes += lengths[i] as number;
    this.counters.decapsulated(written, writtenBytes);
    if (written < out) this.counters.drop(DropReason.TunWriteFailed, out - written);
  }
}

import { weftDp } from '../../native/addon.js';
import type { PacketBatch, PacketList, TunDevice, UdpTransport } from '../io.js';
import { ipv4ToUint32, TRUNCATED_LENGTH } from '../io.js';

/**
 * In-memory stand-ins for the kernel devices, so that the forwarder's logic is tested without
 * root. They copy bytes in and out of batches exactly as the real devices do, including
 * headroom, truncation (TRUNCATED_LENGTH) and partial acceptance when a queue is full.
 *
 * In offload mode they segment and coalesce with the native addon's own functions (no syscalls),
 * so the forwarder's offload path runs on exactly the bytes the kernel devices would carry.
 */

/** Copies what a native segment/coalesce call wrote into `out` as separate buffers. */
function collect(out: Buffer, offsets: Uint32Array, lengths: Uint32Array, count: number): Buffer[] {
  const result: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const start = offsets[i] as number;
    result.push(Buffer.from(out.subarray(start, start + (lengths[i] as number))));
  }
  return result;
}

const SCRATCH_PACKETS = 8192;

/** Output space for one native segment/coalesce call. */
class Scratch {
  readonly out = Buffer.alloc(SCRATCH_PACKETS * 128 + 4 * 65536);
  readonly offsets = new Uint32Array(SCRATCH_PACKETS);
  readonly lengths = new Uint32Array(SCRATCH_PACKETS);
}

type ReadyListener = () => void;

class Readiness {
  private listener: ReadyListener | undefined;

  set(listener: ReadyListener): void {
    this.listener = listener;
  }

  /** Runs the listener as the event loop would after the fd became readable. */
  signal(): void {
    this.listener?.();
  }
}

export class FakeTun implements TunDevice {
  /** Packets the kernel routed into the TUN, waiting for the agent to read them. */
  readonly inbound: Buffer[] = [];
  /** Packets the agent wrote into the TUN, in order. */
  readonly written: Buffer[] = [];
  /** How many more packets the TUN queue accepts; Infinity by default. */
  writeCapacity = Number.POSITIVE_INFINITY;
  closed = false;
  private readonly readiness = new Readiness();

  /**
   * Offload mode: injected packets must start with a virtio_net_hdr, and writes are coalesced as
   * the kernel TUN would receive them (each written entry is [virtio_net_hdr][packet]).
   */
  readonly vnetHdr: boolean;
  private readonly scratch = new Scratch();

  constructor(
    readonly name = 'fake-tun',
    opts: { vnetHdr?: boolean } = {},
  ) {
    this.vnetHdr = opts.vnetHdr ?? false;
  }

  /** Simulates the kernel routing a packet into the device. */
  inject(packet: Uint8Array): void {
    this.inbound.push(Buffer.from(packet));
    this.readiness.signal();
  }

  readBatch(batch: PacketBatch, headroom: number): number {
    let n = 0;
    while (n < batch.capacity && this.inbound.length > 0) {
      const packet = this.inbound.shift() as Buffer;
      const offset = batch.slotStart(n) + headroom;
      const fits = packet.length <= batch.slotSize - headroom;
      if (fits) packet.copy(batch.buf, offset);
      batch.offsets[n] = offset;
      batch.lengths[n] = fits ? packet.length : TRUNCATED_LENGTH;
      n++;
    }
    batch.count = n;
    return n;
  }

  writeBatch(packets: PacketList): number {
    const accepted = Math.min(packets.count, this.writeCapacity);
    this.writeCapacity -= accepted;
    if (!this.vnetHdr) {
      weftDp().completePartialChecksums(
        packets.buf,
        packets.offsets,
        packets.lengths,
        accepted,
        packets.partial,
      );
      for (let i = 0; i < accepted; i++) {
        const offset = packets.offsets[i] as number;
        this.written.push(Buffer.from(packets.buf.subarray(offset, offset + (packets.lengths[i] as number))));
      }
      return accepted;
    }
    const { out, offsets, lengths } = this.scratch;
    const n = weftDp().groCoalesce(
      packets.buf,
      packets.offsets,
      packets.lengths,
      accepted,
      out,
      offsets,
      lengths,
      false,
      packets.partial,
    );
    this.written.push(...collect(out, offsets, lengths, n));
    return accepted;
  }

  onReadable(onReady: () => void): void {
    this.readiness.set(onReady);
  }

  close(): void {
    this.closed = true;
  }
}

export interface Datagram {
  from: { address: number; port: number };
  to: { address: number; port: number };
  payload: Buffer;
  /** A UDP GSO train: datagrams of this size back to back (the last may be shorter). */
  gsoSize?: number;
}

/** The datagrams of a GSO train, or the datagram itself. */
function splitTrain(datagram: Datagram): Datagram[] {
  const size = datagram.gsoSize;
  if (size === undefined) return [datagram];
  const parts: Datagram[] = [];
  for (let at = 0; at < datagram.payload.length; at += size) {
    const { gsoSize: _train, ...plain } = datagram;
    parts.push({ ...plain, payload: datagram.payload.subarray(at, at + size) });
  }
  return parts;
}

/** A switch that delivers datagrams between {@link FakeUdp} sockets by address and port. */
export class FakeNetwork {
  private readonly sockets = new Map<string, FakeUdp>();
  /** Every datagram sent, delivered or not. */
  readonly log: Datagram[] = [];

  socket(address: string, port: number, opts: { gro?: boolean; gso?: boolean } = {}): FakeUdp {
    const socket = new FakeUdp(this, address, port, opts);
    this.sockets.set(`${ipv4ToUint32(address)}:${port}`, socket);
    return socket;
  }

  /** Delivers a datagram; a GSO train whole (as GRO would) to a socket with GRO, else split. */
  deliver(datagram: Datagram): void {
    this.log.push(datagram);
    const socket = this.sockets.get(`${datagram.to.address}:${datagram.to.port}`);
    if (socket === undefined) return;
    if (socket.gro) socket.enqueue(datagram);
    else for (const part of splitTrain(datagram)) socket.enqueue(part);
  }
}

export class FakeUdp implements UdpTransport {
  readonly received: Datagram[] = [];
  /** How many more datagrams the socket buffer accepts for sending; Infinity by default. */
  sendCapacity = Number.POSITIVE_INFINITY;
  /** Datagrams longer than this are truncated on receive, as a too-small buffer would. */
  maxDatagram = 65535;
  closed = false;
  private readonly readiness = new Readiness();
  private readonly address: number;
  /** Receives GSO trains whole, with their segment size, as a socket with UDP_GRO does. */
  readonly gro: boolean;
  /** Sends the segments of one super-packet as GSO trains of up to this many datagrams. */
  private readonly gsoSegments: number;
  private readonly scratch = new Scratch();

  constructor(
    private readonly network: FakeNetwork,
    readonly localAddress: string,
    readonly localPort: number,
    opts: { gro?: boolean; gso?: boolean } = {},
  ) {
    this.address = ipv4ToUint32(localAddress);
    this.gro = opts.gro ?? false;
    this.gsoSegments = (opts.gso ?? true) ? 44 : 1;
  }

  /** Puts a datagram from anywhere into this socket's receive queue, as the underlay would. */
  enqueue(datagram: Datagram): void {
    this.received.push(datagram);
    this.readiness.signal();
  }

  /** Sends raw bytes to this socket as if they came from `fromAddress:fromPort`. */
  injectFrom(fromAddress: string, fromPort: number, payload: Uint8Array): void {
    this.enqueue({
      from: { address: ipv4ToUint32(fromAddress), port: fromPort },
      to: { address: this.address, port: this.localPort },
      payload: Buffer.from(payload),
    });
  }

  recvBatch(batch: PacketBatch): number {
    let n = 0;
    while (n < batch.capacity && this.received.length > 0) {
      const datagram = this.received.shift() as Datagram;
      const offset = batch.slotStart(n);
      const truncated = datagram.payload.length > Math.min(batch.slotSize, this.maxDatagram);
      if (!truncated) datagram.payload.copy(batch.buf, offset);
      batch.offsets[n] = offset;
      batch.lengths[n] = truncated ? TRUNCATED_LENGTH : datagram.payload.length;
      batch.addrs[n] = datagram.from.address;
      batch.ports[n] = datagram.from.port;
      batch.segments[n] = datagram.gsoSize ?? 0;
      n++;
    }
    batch.count = n;
    return n;
  }

  sendBatch(batch: PacketBatch): number {
    let sent = 0;
    for (let i = 0; i < batch.count; i++) {
      if (this.sendCapacity <= 0) break;
      this.sendCapacity--;
      const offset = batch.offsets[i] as number;
      const payload = Buffer.from(batch.buf.subarray(offset, offset + (batch.lengths[i] as number)));
      this.network.deliver({
        from: { address: this.address, port: this.localPort },
        to: { address: batch.addrs[i] as number, port: batch.ports[i] as number },
        payload,
      });
      sent++;
    }
    return sent;
  }

  sendSegmented(batch: PacketBatch, gpeHeader: Uint8Array): number {
    const { out, offsets, lengths } = this.scratch;
    let sent = 0;
    for (let i = 0; i < batch.count; i++) {
      const count = weftDp().gsoSegment(
        batch.buf,
        batch.offsets[i] as number,
        batch.lengths[i] as number,
        gpeHeader,
        out,
        offsets,
        lengths,
        batch.partial[i] === 1,
      );
      batch.segments[i] = count;
      const datagrams = collect(out, offsets, lengths, count);
      for (let k = 0; k < datagrams.length; k += this.gsoSegments) {
        if (this.sendCapacity <= 0) break;
        this.sendCapacity--;
        const train = datagrams.slice(k, k + this.gsoSegments);
        sent += train.length;
        this.network.deliver({
          from: { address: this.address, port: this.localPort },
          to: { address: batch.addrs[i] as number, port: batch.ports[i] as number },
          payload: Buffer.concat(train),
          ...(train.length > 1 ? { gsoSize: (train[0] as Buffer).length } : {}),
        });
      }
    }
    return sent;
  }

  onReadable(onReady: () => void): void {
    this.readiness.set(onReady);
  }

  close(): void {
    this.closed = true;
  }
}

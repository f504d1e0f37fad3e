import type { PacketBatch, TunDevice, UdpTransport } from '../io.js';
import { ipv4ToUint32, TRUNCATED_LENGTH } from '../io.js';

/**
 * In-memory stand-ins for the kernel devices, so that the forwarder's logic is tested without
 * root. They copy bytes in and out of batches exactly as the real devices do, including
 * headroom, truncation (TRUNCATED_LENGTH) and partial acceptance when a queue is full.
 */

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

  constructor(readonly name = 'fake-tun') {}

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

  writeBatch(batch: PacketBatch): number {
    let accepted = 0;
    for (let i = 0; i < batch.count; i++) {
      if (this.writeCapacity <= 0) continue;
      this.writeCapacity--;
      const offset = batch.offsets[i] as number;
      this.written.push(Buffer.from(batch.buf.subarray(offset, offset + (batch.lengths[i] as number))));
      accepted++;
    }
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
}

/** A switch that delivers datagrams between {@link FakeUdp} sockets by address and port. */
export class FakeNetwork {
  private readonly sockets = new Map<string, FakeUdp>();
  /** Every datagram sent, delivered or not. */
  readonly log: Datagram[] = [];

  socket(address: string, port: number): FakeUdp {
    const socket = new FakeUdp(this, address, port);
    this.sockets.set(`${ipv4ToUint32(address)}:${port}`, socket);
    return socket;
  }

  deliver(datagram: Datagram): void {
    this.log.push(datagram);
    this.sockets.get(`${datagram.to.address}:${datagram.to.port}`)?.enqueue(datagram);
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

  constructor(
    private readonly network: FakeNetwork,
    readonly localAddress: string,
    readonly localPort: number,
  ) {
    this.address = ipv4ToUint32(localAddress);
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

  onReadable(onReady: () => void): void {
    this.readiness.set(onReady);
  }

  close(): void {
    this.closed = true;
  }
}

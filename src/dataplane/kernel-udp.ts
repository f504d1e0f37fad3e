import { type PollHandle, type UdpOpenOptions, type WeftDpAddon, weftDp } from '../native/addon.js';
import type { PacketBatch, UdpTransport } from './io.js';

export type KernelUdpOptions = UdpOpenOptions;

/**
 * A non-blocking IPv4 UDP socket driven through the native addon (sendmmsg/recvmmsg).
 *
 * A datagram longer than the batch's slotSize is returned by {@link recvBatch} with length TRUNCATED_LENGTH (io.ts); the
 * caller drops it.
 */
export class KernelUdp implements UdpTransport {
  private fd: number;
  private poll: PollHandle | undefined;

  private constructor(
    private readonly dp: WeftDpAddon,
    fd: number,
    readonly localAddress: string,
    readonly localPort: number,
    /** Socket buffer sizes the kernel granted. */
    readonly rcvbuf: number,
    readonly sndbuf: number,
  ) {
    this.fd = fd;
  }

  /** Binds `address`:`port` (SO_REUSEADDR); port 0 picks an ephemeral port, see {@link localPort}. */
  static open(address: string, port: number, opts: KernelUdpOptions = {}): KernelUdp {
    const dp = weftDp();
    const socket = dp.udpOpen(address, port, opts);
    return new KernelUdp(dp, socket.fd, address, socket.port, socket.rcvbuf, socket.sndbuf);
  }

  recvBatch(batch: PacketBatch): number {
    batch.count = this.dp.udpRecvBatch(
      this.openFd(),
      batch.buf,
      batch.slotSize,
      batch.capacity,
      batch.offsets,
      batch.lengths,
      batch.addrs,
      batch.ports,
    );
    return batch.count;
  }

  sendBatch(batch: PacketBatch): number {
    return this.dp.udpSendBatch(
      this.openFd(),
      batch.buf,
      batch.offsets,
      batch.lengths,
      batch.addrs,
      batch.ports,
      batch.count,
    );
  }

  /** Replaces any earlier callback. */
  onReadable(onReady: () => void): void {
    const fd = this.openFd();
    this.stopPolling();
    // A poll error is not passed on: onReady's next receive clears a transient socket error and
    // throws a lasting one.
    this.poll = this.dp.pollStart(fd, () => onReady());
  }

  close(): void {
    if (this.fd < 0) return;
    this.stopPolling();
    const fd = this.fd;
    this.fd = -1;
    this.dp.close(fd);
  }

  private stopPolling(): void {
    if (this.poll === undefined) return;
    this.dp.pollStop(this.poll);
    this.poll = undefined;
  }

  /** Refuses use after close: the fd number may already belong to another socket. */
  private openFd(): number {
    if (this.fd < 0) throw new Error(`UDP socket ${this.localAddress}:${this.localPort} is closed`);
    return this.fd;
  }
}

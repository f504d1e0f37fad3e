import { type UdpOpenOptions, type WeftDpAddon, weftDp } from '../native/addon.js';
import type { PacketBatch, UdpTransport } from './io.js';
import { PolledFd } from './polled-fd.js';

export type KernelUdpOptions = UdpOpenOptions;

/**
 * A non-blocking IPv4 UDP socket driven through the native addon (sendmmsg/recvmmsg).
 *
 * A datagram longer than the batch's slotSize is returned by {@link recvBatch} with length TRUNCATED_LENGTH (io.ts); the
 * caller drops it.
 */
export class KernelUdp implements UdpTransport {
  private readonly fd: PolledFd;

  private constructor(
    private readonly dp: WeftDpAddon,
    fd: number,
    readonly localAddress: string,
    readonly localPort: number,
    /** Socket buffer sizes the kernel granted. */
    readonly rcvbuf: number,
    readonly sndbuf: number,
  ) {
    this.fd = new PolledFd(dp, fd, `UDP socket ${localAddress}:${localPort}`);
  }

  /** Binds `address`:`port` (SO_REUSEADDR); port 0 picks an ephemeral port, see {@link localPort}. */
  static open(address: string, port: number, opts: KernelUdpOptions = {}): KernelUdp {
    const dp = weftDp();
    const socket = dp.udpOpen(address, port, opts);
    return new KernelUdp(dp, socket.fd, address, socket.port, socket.rcvbuf, socket.sndbuf);
  }

  recvBatch(batch: PacketBatch): number {
    batch.count = this.dp.udpRecvBatch(
      this.fd.open,
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
      this.fd.open,
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
    this.fd.onReadable(onReady);
  }

  close(): void {
    this.fd.close();
  }
}

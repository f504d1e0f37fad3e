import { type UdpOpenOptions, type WeftDpAddon, weftDp } from '../native/addon.js';
import type { PacketBatch, UdpTransport } from './io.js';
import { PolledFd } from './polled-fd.js';

export type KernelUdpOptions = UdpOpenOptions;

/** Datagrams per UDP GSO message: the kernel limit before 6.1 (64) is above what 64 KB allows at MTU 1500 (44). */
const MAX_GSO_SEGMENTS = 64;

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
    readonly gro: boolean,
    /** UDP GSO messages carry up to this many datagrams; 1 means one sendmmsg entry per datagram. */
    private gsoSegments: number,
    private readonly onGsoRefused: (error: Error) => void,
  ) {
    this.fd = new PolledFd(dp, fd, `UDP socket ${localAddress}:${localPort}`);
  }

  /**
   * Binds `address`:`port` (SO_REUSEADDR); port 0 picks an ephemeral port, see {@link localPort}.
   * `gro` asks for UDP GRO; `gso` (default true) allows UDP GSO sends where the kernel has them.
   * `onGsoRefused` hears once when a send shows that the device refuses GSO (sends then go on without).
   */
  static open(
    address: string,
    port: number,
    opts: KernelUdpOptions & { gso?: boolean; onGsoRefused?: (error: Error) => void } = {},
  ): KernelUdp {
    const dp = weftDp();
    const { gso, onGsoRefused, ...native } = opts;
    const socket = dp.udpOpen(address, port, native);
    const segments = (gso ?? true) && socket.gso ? MAX_GSO_SEGMENTS : 1;
    return new KernelUdp(
      dp,
      socket.fd,
      address,
      socket.port,
      socket.rcvbuf,
      socket.sndbuf,
      socket.gro,
      segments,
      onGsoRefused ?? (() => {}),
    );
  }

  /** Whether sends use UDP GSO (false when off, unsupported, or refused by the device). */
  get gso(): boolean {
    return this.gsoSegments > 1;
  }

  sendSegmented(batch: PacketBatch, gpeHeader: Uint8Array): number {
    try {
      return this.sendGso(batch, gpeHeader);
    } catch (error) {
      // EIO: the route's device cannot checksum or segment UDP GSO trains. Datagrams the call
      // sent before failing go out again; the inner TCP handles the duplicates.
      if ((error as NodeJS.ErrnoException).code !== 'EIO' || this.gsoSegments === 1) throw error;
      this.gsoSegments = 1;
      this.onGsoRefused(error as Error);
      return this.sendGso(batch, gpeHeader);
    }
  }

  /** One udpSendGso call, a method rather than a closure so that a send allocates nothing. */
  private sendGso(batch: PacketBatch, gpeHeader: Uint8Array): number {
    return this.dp.udpSendGso(
      this.fd.open,
      batch.buf,
      batch.offsets,
      batch.lengths,
      batch.addrs,
      batch.ports,
      batch.count,
      gpeHeader,
      this.gsoSegments,
      batch.segments,
      batch.partial,
    );
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
      this.gro ? batch.segments : undefined,
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

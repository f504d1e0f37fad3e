import { type PollHandle, type WeftDpAddon, weftDp } from '../native/addon.js';
import type { PacketBatch, TunDevice } from './io.js';

export interface KernelTunOptions {
  /** Prefix packets with a 10-byte virtio_net_hdr (needed before {@link KernelTun.setOffload}). */
  vnetHdr?: boolean;
}

/**
 * A kernel TUN device (IFF_TUN | IFF_NO_PI) driven through the native addon. Opening it creates the
 * link but configures nothing: addresses, routes, MTU and `up` are the caller's business.
 *
 * A packet longer than the slot (slotSize - headroom) is returned by {@link readBatch} with length TRUNCATED_LENGTH (io.ts);
 * the caller drops it.
 */
export class KernelTun implements TunDevice {
  private fd: number;
  private poll: PollHandle | undefined;

  private constructor(
    private readonly dp: WeftDpAddon,
    fd: number,
    readonly name: string,
  ) {
    this.fd = fd;
  }

  /**
   * Creates (or attaches to) TUN `name`. Throws an error with code 'EBUSY' while another process
   * still holds the device, e.g. a previous agent that has not exited yet.
   */
  static open(name: string, opts: KernelTunOptions = {}): KernelTun {
    const dp = weftDp();
    const tun = dp.tunOpen(name, { vnetHdr: opts.vnetHdr ?? false });
    return new KernelTun(dp, tun.fd, tun.name);
  }

  /** TUNSETOFFLOAD with TUN_F_* bits from the addon's `constants`. */
  setOffload(flags: number): void {
    this.dp.tunSetOffload(this.openFd(), flags);
  }

  readBatch(batch: PacketBatch, headroom: number): number {
    batch.count = this.dp.tunReadBatch(
      this.openFd(),
      batch.buf,
      batch.slotSize,
      headroom,
      batch.capacity,
      batch.offsets,
      batch.lengths,
    );
    return batch.count;
  }

  writeBatch(batch: PacketBatch): number {
    return this.dp.tunWriteBatch(this.openFd(), batch.buf, batch.offsets, batch.lengths, batch.count);
  }

  /** Replaces any earlier callback. */
  onReadable(onReady: () => void): void {
    const fd = this.openFd();
    this.stopPolling();
    // A poll error is not passed on: onReady's next read throws the real errno.
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

  /** Refuses use after close: the fd number may already belong to another file. */
  private openFd(): number {
    if (this.fd < 0) throw new Error(`TUN ${this.name} is closed`);
    return this.fd;
  }
}

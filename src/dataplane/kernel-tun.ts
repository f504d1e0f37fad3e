import { type WeftDpAddon, weftDp } from '../native/addon.js';
import type { PacketBatch, TunDevice } from './io.js';
import { PolledFd } from './polled-fd.js';

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
  private readonly fd: PolledFd;

  private constructor(
    private readonly dp: WeftDpAddon,
    fd: number,
    readonly name: string,
  ) {
    this.fd = new PolledFd(dp, fd, `TUN ${name}`);
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
    this.dp.tunSetOffload(this.fd.open, flags);
  }

  readBatch(batch: PacketBatch, headroom: number): number {
    batch.count = this.dp.tunReadBatch(
      this.fd.open,
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
    return this.dp.tunWriteBatch(this.fd.open, batch.buf, batch.offsets, batch.lengths, batch.count);
  }

  /** Replaces any earlier callback. */
  onReadable(onReady: () => void): void {
    this.fd.onReadable(onReady);
  }

  close(): void {
    this.fd.close();
  }
}

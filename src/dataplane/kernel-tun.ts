import { type WeftDpAddon, weftDp } from '../native/addon.js';
import type { PacketBatch, PacketList, TunDevice } from './io.js';
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
  private offloads = 0;
  /** Merge same-size UDP datagrams of a flow into one USO write: a kernel that grants USO (6.2+) takes them. */
  private coalesceUdp = false;

  private constructor(
    private readonly dp: WeftDpAddon,
    fd: number,
    readonly name: string,
    readonly vnetHdr: boolean,
  ) {
    this.fd = new PolledFd(dp, fd, `TUN ${name}`);
  }

  /**
   * Creates (or attaches to) TUN `name`. Throws an error with code 'EBUSY' while another process
   * still holds the device, e.g. a previous agent that has not exited yet.
   */
  static open(name: string, opts: KernelTunOptions = {}): KernelTun {
    const dp = weftDp();
    const vnetHdr = opts.vnetHdr ?? false;
    const tun = dp.tunOpen(name, { vnetHdr });
    return new KernelTun(dp, tun.fd, tun.name, vnetHdr);
  }

  /** TUNSETOFFLOAD with TUN_F_* bits from the addon's `constants`. */
  setOffload(flags: number): void {
    this.dp.tunSetOffload(this.fd.open, flags);
  }

  /**
   * Asks for the largest set of offloads this kernel grants (checksum + TSO4 + USO, then without
   * USO (Linux < 6.2), then checksum only, then none) and returns the granted TUN_F_* bits. Needs
   * a device opened with vnetHdr. Any refusal other than EINVAL is thrown.
   */
  enableOffloads(): number {
    const { TUN_F_CSUM, TUN_F_TSO4, TUN_F_USO4, TUN_F_USO6 } = this.dp.constants;
    // The kernel takes USO only as the pair USO4 + USO6 (EINVAL for either alone). IPv6 super-packets
    // it may then hand over are dropped like any IPv6 packet: pod addressing is IPv4.
    const uso = TUN_F_USO4 | TUN_F_USO6;
    for (const flags of [TUN_F_CSUM | TUN_F_TSO4 | uso, TUN_F_CSUM | TUN_F_TSO4, TUN_F_CSUM, 0]) {
      try {
        this.setOffload(flags);
        this.offloads = flags;
        this.coalesceUdp = (flags & TUN_F_USO4) !== 0;
        return flags;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
      }
    }
    return 0;
  }

  /** The offloads granted by {@link enableOffloads}, e.g. ['csum', 'tso4']. */
  offloadNames(): string[] {
    const { TUN_F_CSUM, TUN_F_TSO4, TUN_F_USO4 } = this.dp.constants;
    const names: [number, string][] = [
      [TUN_F_CSUM, 'csum'],
      [TUN_F_TSO4, 'tso4'],
      [TUN_F_USO4, 'uso4'],
    ];
    return names.filter(([flag]) => (this.offloads & flag) !== 0).map(([, name]) => name);
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

  writeBatch(packets: PacketList): number {
    const { buf, offsets, lengths, count, partial } = packets;
    if (!this.vnetHdr) {
      this.dp.completePartialChecksums(buf, offsets, lengths, count, partial);
      return this.dp.tunWriteBatch(this.fd.open, buf, offsets, lengths, count);
    }
    return this.dp.tunWriteGro(this.fd.open, buf, offsets, lengths, count, this.coalesceUdp, partial);
  }

  /** Replaces any earlier callback. */
  onReadable(onReady: () => void): void {
    this.fd.onReadable(onReady);
  }

  close(): void {
    this.fd.close();
  }
}

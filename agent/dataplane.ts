import { DataplaneCounters } from '../src/dataplane/counters.js';
import { DataplaneFeature } from '../src/dataplane/features.js';
import { Forwarder } from '../src/dataplane/forwarder.js';
import { KernelTun } from '../src/dataplane/kernel-tun.js';
import { KernelUdp } from '../src/dataplane/kernel-udp.js';
import { RouteTable, type RouteTableSpec } from '../src/dataplane/route-table.js';
import type { Logger } from '../src/util/log.js';

const SOCKET_BUFFER_BYTES = 8 * 1024 * 1024;
const TUN_BUSY_RETRY_MS = 200;
const TUN_BUSY_TIMEOUT_MS = 10_000;

export interface DataplaneSettings {
  tunName: string;
  underlayAddress: string;
  dataPort: number;
  vni: number;
  mtu: number;
  /** Use kernel offloads (TUN TSO/checksum, UDP GSO/GRO) where the kernel grants them. */
  offload: boolean;
  /** Offer peers to complete the inner checksums they leave partial (needs the TUN's virtio header). */
  partialChecksums: boolean;
}

/** The running data plane: kernel devices plus the forwarder, fed route tables from outside. */
export class Dataplane {
  private constructor(
    readonly settings: DataplaneSettings,
    readonly counters: DataplaneCounters,
    private readonly tun: KernelTun,
    private readonly udp: KernelUdp,
    private readonly forwarder: Forwarder,
  ) {}

  /** Opens the TUN (waiting out a previous agent that still holds it) and the UDP socket. */
  static async open(settings: DataplaneSettings, log: Logger): Promise<Dataplane> {
    const tun = await openTunWhenFree(settings.tunName, settings.offload, log);
    let udp: KernelUdp;
    try {
      udp = KernelUdp.open(settings.underlayAddress, settings.dataPort, {
        rcvbuf: SOCKET_BUFFER_BYTES,
        sndbuf: SOCKET_BUFFER_BYTES,
        gro: settings.offload,
        gso: settings.offload,
        onGsoRefused: (error) =>
          log.warn(
            { err: error },
            'the underlay refused UDP GSO; sending one datagram per packet from now on',
          ),
      });
    } catch (error) {
      tun.close();
      throw error;
    }
    logOffloads(settings, tun, udp, log);
    const counters = new DataplaneCounters();
    const forwarder = new Forwarder({
      tun,
      udp,
      counters,
      routes: RouteTable.empty(),
      vni: settings.vni,
      maxInnerSize: settings.mtu,
    });
    return new Dataplane(settings, counters, tun, udp, forwarder);
  }

  start(): void {
    this.forwarder.start();
  }

  /** True while the forwarder moves packets (readiness). */
  get running(): boolean {
    return this.forwarder.isRunning;
  }

  /** How packets move, for status: batching plus the offloads in use. */
  get description(): string {
    const offloads = [
      ...(this.tun.vnetHdr ? this.tun.offloadNames().map((name) => `TUN ${name}`) : []),
      ...(this.udp.gso ? ['UDP GSO'] : []),
      ...(this.udp.gro ? ['UDP GRO'] : []),
    ];
    return `userspace, batched (recvmmsg/sendmmsg), offloads: ${offloads.join(', ') || 'none'}`;
  }

  /** Data-plane features to announce to peers (src/dataplane/features.ts). */
  get features(): DataplaneFeature[] {
    return this.settings.partialChecksums && this.tun.vnetHdr ? [DataplaneFeature.PartialChecksums] : [];
  }

  get routeTable(): RouteTable {
    return this.forwarder.routeTable;
  }

  /** Swaps in a table built from `spec`, keeping per-peer counters. Throws on an invalid spec. */
  setRoutes(spec: RouteTableSpec): void {
    this.forwarder.setRoutes(this.forwarder.routeTable.replace(spec));
  }

  /** Closing the non-persistent TUN removes it and its routes; the bridge stays for the pods. */
  close(): void {
    this.forwarder.stop();
    this.udp.close();
    this.tun.close();
  }
}

async function openTunWhenFree(name: string, offload: boolean, log: Logger): Promise<KernelTun> {
  const deadline = Date.now() + TUN_BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      return offload ? openOffloadTun(name, log) : KernelTun.open(name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || Date.now() > deadline) throw error;
      log.warn({ tun: name }, 'TUN device busy (previous agent still exiting); retrying');
      await new Promise((resolve) => setTimeout(resolve, TUN_BUSY_RETRY_MS));
    }
  }
}

/** A TUN with the virtio_net_hdr and the offloads the kernel grants; a plain TUN if it refuses the header. */
function openOffloadTun(name: string, log: Logger): KernelTun {
  let tun: KernelTun;
  try {
    tun = KernelTun.open(name, { vnetHdr: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
    log.warn({ tun: name, err: error }, 'the kernel refused IFF_VNET_HDR; running without TUN offloads');
    return KernelTun.open(name);
  }
  try {
    tun.enableOffloads();
  } catch (error) {
    tun.close();
    throw error;
  }
  return tun;
}

/** One line saying which offloads are in use, so a slow node is explained by its log. */
function logOffloads(settings: DataplaneSettings, tun: KernelTun, udp: KernelUdp, log: Logger): void {
  const granted = tun.offloadNames();
  const summary = {
    tun: tun.vnetHdr ? granted.join('+') || 'none' : 'off',
    udpGso: udp.gso,
    udpGro: udp.gro,
  };
  if (!settings.offload) log.info(summary, 'data-plane offloads turned off (--offload off)');
  else if (!tun.vnetHdr || !granted.includes('tso4') || !udp.gso || !udp.gro)
    log.warn(summary, 'some data-plane offloads are unavailable; throughput will be lower');
  else log.info(summary, 'data-plane offloads on');
}

import pino from 'pino';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { TunDevice } from '../../../src/dataplane/io.js';

/**
 * What the data plane does when the kernel refuses an offload. The kernel here cannot be made to
 * refuse: 6.18 grants every TUN offload asked for, UDP GSO over an underlay with `ethtool -K … tx
 * off` gets its checksums done in software instead of failing with EIO (tried), and the other EIO
 * case, an IPsec route, needs ESP, which this kernel lacks. So the addon is replaced by a scripted one.
 */
const kernel = vi.hoisted(() => {
  const errno = (code: string) => Object.assign(new Error(`${code} (scripted)`), { code });
  return {
    errno,
    /** TUNSETIFF with IFF_VNET_HDR: the error, or undefined to grant it. */
    refuseVnetHdr: (): Error | undefined => undefined,
    /** TUNSETOFFLOAD: the error for a set of flags, or undefined to grant it. */
    refuseOffload: (_flags: number): Error | undefined => undefined,
    offloadCalls: [] as number[],
    /** udpSendGso: what each call does, by its maxSegments. */
    sendGso: (_maxSegments: number, n: number): number => n,
    sendGsoCalls: [] as number[],
    tunWriteGroCoalesceUdp: [] as boolean[],
  };
});

vi.mock('../../../src/native/addon.js', () => ({
  weftDp: () => ({
    constants: {
      TUN_F_CSUM: 0x01,
      TUN_F_TSO4: 0x02,
      TUN_F_TSO6: 0x04,
      TUN_F_TSO_ECN: 0x08,
      TUN_F_USO4: 0x20,
      TUN_F_USO6: 0x40,
    },
    tunOpen: (name: string, flags?: { vnetHdr?: boolean }) => {
      const error = flags?.vnetHdr ? kernel.refuseVnetHdr() : undefined;
      if (error) throw error;
      return { fd: 7, name };
    },
    tunSetOffload: (_fd: number, flags: number) => {
      kernel.offloadCalls.push(flags);
      const error = kernel.refuseOffload(flags);
      if (error) throw error;
    },
    tunWriteGro: (
      _fd: number,
      _buf: Uint8Array,
      _offsets: Uint32Array,
      _lengths: Uint32Array,
      count: number,
      coalesceUdp: boolean,
    ) => {
      kernel.tunWriteGroCoalesceUdp.push(coalesceUdp);
      return count;
    },
    udpOpen: (_address: string, port: number) => ({
      fd: 8,
      port,
      rcvbuf: 1 << 20,
      sndbuf: 1 << 20,
      gro: true,
      gso: true,
    }),
    udpSendGso: (
      _fd: number,
      _buf: Uint8Array,
      _offsets: Uint32Array,
      _lengths: Uint32Array,
      _addrs: Uint32Array,
      _ports: Uint16Array,
      n: number,
      _gpe: Uint8Array,
      maxSegments: number,
    ) => {
      kernel.sendGsoCalls.push(maxSegments);
      return kernel.sendGso(maxSegments, n);
    },
    close: () => {},
  }),
}));

const { Dataplane } = await import('../../../agent/dataplane.js');
const { KernelTun } = await import('../../../src/dataplane/kernel-tun.js');
const { KernelUdp } = await import('../../../src/dataplane/kernel-udp.js');
const { PacketBatch, PacketList } = await import('../../../src/dataplane/io.js');

const CSUM = 0x01;
const TSO4 = 0x02;
const USO = 0x20 | 0x40;

beforeEach(() => {
  kernel.refuseVnetHdr = () => undefined;
  kernel.refuseOffload = () => undefined;
  kernel.offloadCalls.length = 0;
  kernel.sendGso = (_maxSegments, n) => n;
  kernel.sendGsoCalls.length = 0;
  kernel.tunWriteGroCoalesceUdp.length = 0;
});

function writeOnePacket(tun: TunDevice): void {
  const list = new PacketList(Buffer.alloc(64), 1);
  list.lengths[0] = 28;
  list.count = 1;
  tun.writeBatch(list);
}

describe('TUN offloads the kernel refuses', () => {
  it('takes checksum + TSO4 + USO where granted, and merges UDP runs into USO writes', () => {
    const tun = KernelTun.open('weft0', { vnetHdr: true });
    expect(tun.enableOffloads()).toBe(CSUM | TSO4 | USO);
    expect(tun.offloadNames()).toEqual(['csum', 'tso4', 'uso4']);
    writeOnePacket(tun);
    expect(kernel.tunWriteGroCoalesceUdp).toEqual([true]);
  });

  it('falls back to checksum + TSO4 on a kernel without USO (EINVAL), and stops merging UDP', () => {
    kernel.refuseOffload = (flags) => ((flags & USO) !== 0 ? kernel.errno('EINVAL') : undefined);
    const tun = KernelTun.open('weft0', { vnetHdr: true });
    expect(tun.enableOffloads()).toBe(CSUM | TSO4);
    expect(kernel.offloadCalls).toEqual([CSUM | TSO4 | USO, CSUM | TSO4]);
    expect(tun.offloadNames()).toEqual(['csum', 'tso4']);
    writeOnePacket(tun);
    expect(kernel.tunWriteGroCoalesceUdp).toEqual([false]);
  });

  it('goes down to checksum only, then to none, as long as the kernel says EINVAL', () => {
    kernel.refuseOffload = (flags) => ((flags & TSO4) !== 0 ? kernel.errno('EINVAL') : undefined);
    expect(KernelTun.open('weft0', { vnetHdr: true }).enableOffloads()).toBe(CSUM);

    kernel.refuseOffload = (flags) => (flags !== 0 ? kernel.errno('EINVAL') : undefined);
    const bare = KernelTun.open('weft0', { vnetHdr: true });
    expect(bare.enableOffloads()).toBe(0);
    expect(bare.offloadNames()).toEqual([]);
  });

  it('does not hide any other error (EPERM) behind a fallback', () => {
    kernel.refuseOffload = () => kernel.errno('EPERM');
    expect(() => KernelTun.open('weft0', { vnetHdr: true }).enableOffloads()).toThrow(/EPERM/);
    expect(kernel.offloadCalls).toHaveLength(1);
  });
});

describe('UDP GSO the underlay refuses', () => {
  const batchOf = (count: number) => {
    const batch = new PacketBatch(count, 256);
    batch.count = count;
    return batch;
  };
  const gpe = new Uint8Array(8);

  it('on EIO, tells once, resends the batch one datagram per packet and keeps doing so', () => {
    let firstGso = true;
    kernel.sendGso = (maxSegments, n) => {
      if (maxSegments > 1 && firstGso) {
        firstGso = false;
        throw kernel.errno('EIO');
      }
      return n;
    };
    const refusals: Error[] = [];
    const udp = KernelUdp.open('192.0.2.1', 4790, { onGsoRefused: (error) => refusals.push(error) });
    expect(udp.gso).toBe(true);

    expect(udp.sendSegmented(batchOf(3), gpe)).toBe(3);
    expect(udp.sendSegmented(batchOf(2), gpe)).toBe(2);

    expect(kernel.sendGsoCalls[0]).toBeGreaterThan(1);
    expect(kernel.sendGsoCalls.slice(1)).toEqual([1, 1]);
    expect(refusals.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['EIO']);
    expect(udp.gso).toBe(false);
  });

  it('passes other errors on, and an EIO that comes without GSO', () => {
    kernel.sendGso = () => {
      throw kernel.errno('ENETUNREACH');
    };
    const refusals: Error[] = [];
    const udp = KernelUdp.open('192.0.2.1', 4790, { onGsoRefused: (error) => refusals.push(error) });
    expect(() => udp.sendSegmented(batchOf(1), gpe)).toThrow(/ENETUNREACH/);
    expect(udp.gso).toBe(true);

    kernel.sendGso = () => {
      throw kernel.errno('EIO');
    };
    const plain = KernelUdp.open('192.0.2.1', 4790, { gso: false, onGsoRefused: (e) => refusals.push(e) });
    expect(() => plain.sendSegmented(batchOf(1), gpe)).toThrow(/EIO/);
    expect(refusals).toEqual([]);
  });
});

describe("the agent's data plane on a kernel that refuses the TUN's virtio header", () => {
  const settings = {
    tunName: 'weft0',
    underlayAddress: '192.0.2.1',
    dataPort: 6784,
    vni: 1,
    mtu: 1376,
    offload: true,
    partialChecksums: true,
  };

  const openLogged = async () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const dataplane = await Dataplane.open(settings, log);
    const messages = lines.map((line) => JSON.parse(line) as { level: number; msg: string });
    return { dataplane, messages };
  };

  it('runs without TUN offloads, says so, and does not offer to complete partial checksums', async () => {
    kernel.refuseVnetHdr = () => kernel.errno('EINVAL');
    const { dataplane, messages } = await openLogged();
    expect(kernel.offloadCalls).toEqual([]);
    expect(dataplane.description).toBe('userspace, batched (recvmmsg/sendmmsg), offloads: UDP GSO, UDP GRO');
    expect(dataplane.features).toEqual([]);
    const warnings = messages.filter((m) => m.level === 40).map((m) => m.msg);
    expect(warnings).toEqual([
      'the kernel refused IFF_VNET_HDR; running without TUN offloads',
      'some data-plane offloads are unavailable; throughput will be lower',
    ]);
    dataplane.close();
  });

  it('with the header granted, offers partial checksums and logs the offloads as on', async () => {
    const { dataplane, messages } = await openLogged();
    expect(dataplane.description).toContain('TUN tso4');
    expect(dataplane.features).toHaveLength(1);
    expect(messages.filter((m) => m.level === 40)).toEqual([]);
    expect(messages.map((m) => m.msg)).toContain('data-plane offloads on');
    dataplane.close();
  });

  it('stops with the error when the kernel refuses the header for another reason', async () => {
    kernel.refuseVnetHdr = () => kernel.errno('EPERM');
    await expect(Dataplane.open(settings, pino({ level: 'silent' }))).rejects.toThrow(/EPERM/);
  });
});

import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { PacketBatch, TRUNCATED_LENGTH } from '../../../src/dataplane/io.js';
import { KernelTun } from '../../../src/dataplane/kernel-tun.js';
import { KernelUdp } from '../../../src/dataplane/kernel-udp.js';
import { type NativeError, weftDp } from '../../../src/native/addon.js';
import { gpeHeader, NextProtocol } from '../../../src/wire/index.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import { udpPacket } from '../../unit/dataplane/offload-packets.js';

const LOOPBACK = 0x7f000001;
const ADDON_FILE = fileURLToPath(new URL('../../../native/build/Release/weft_dp.node', import.meta.url));

describe('weft_dp UDP batches on loopback', () => {
  const sockets: KernelUdp[] = [];
  const open = (): KernelUdp => {
    const socket = KernelUdp.open('127.0.0.1', 0);
    sockets.push(socket);
    return socket;
  };

  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });

  it('moves a batch of 32 datagrams with their sender address, port and length', () => {
    const sender = open();
    const receiver = open();
    const out = new PacketBatch(32, 2048);
    for (let i = 0; i < 32; i++) {
      const offset = out.slotStart(i) + 16; // anywhere inside the buffer, not just slot starts
      const length = 100 + i * 37;
      out.offsets[i] = offset;
      out.lengths[i] = length;
      out.buf.fill(i + 1, offset, offset + length);
      out.buf.writeUInt32BE(0xdeadbe00 + i, offset);
      out.addrs[i] = LOOPBACK;
      out.ports[i] = receiver.localPort;
    }
    out.count = 32;

    expect(sender.sendBatch(out)).toBe(32);

    const inbox = new PacketBatch(64, 2048);
    expect(receiver.recvBatch(inbox)).toBe(32);
    expect(inbox.count).toBe(32);
    for (let i = 0; i < 32; i++) {
      expect(inbox.offsets[i]).toBe(inbox.slotStart(i));
      expect(inbox.lengths[i]).toBe(100 + i * 37);
      expect(inbox.addrs[i]).toBe(LOOPBACK);
      expect(inbox.ports[i]).toBe(sender.localPort);
      expect(packetBytes(inbox, i).equals(packetBytes(out, i))).toBe(true);
    }
    expect(receiver.recvBatch(inbox)).toBe(0);
  });

  it('reports a datagram longer than the slot as truncated and keeps one that fits exactly', () => {
    const sender = open();
    const receiver = open();
    const out = batchTo(receiver.localPort, [64, 65, 10]);
    expect(sender.sendBatch(out)).toBe(3);

    const inbox = new PacketBatch(8, 64);
    expect(receiver.recvBatch(inbox)).toBe(3);
    expect(Array.from(inbox.lengths.subarray(0, 3))).toEqual([64, TRUNCATED_LENGTH, 10]);
    expect(inbox.buf[inbox.slotStart(2)]).toBe(3);
  });

  it('skips a datagram the kernel refuses on its own (port 0) and sends the rest', () => {
    const sender = open();
    const receiver = open();
    const out = batchTo(receiver.localPort, [20, 21, 22]);
    out.ports[1] = 0;
    expect(sender.sendBatch(out)).toBe(2);

    const inbox = new PacketBatch(8, 256);
    expect(receiver.recvBatch(inbox)).toBe(2);
    expect(Array.from(inbox.lengths.subarray(0, 2))).toEqual([20, 22]);
  });

  it('sends small same-size packets to one peer as one UDP GSO train, received whole by a GRO socket', () => {
    const sender = open();
    const a = KernelUdp.open('127.0.0.1', 0, { gro: true });
    const b = KernelUdp.open('127.0.0.1', 0, { gro: true });
    sockets.push(a, b);
    const reads = [
      ...Array.from({ length: 12 }, (_, i) => ({ to: a, payload: 64, fill: i })),
      { to: a, payload: 30, fill: 12 }, // shorter: ends the train
      { to: b, payload: 64, fill: 13 },
      { to: b, payload: 64, fill: 14 },
      { to: a, payload: 64, fill: 15 },
    ];
    const out = new PacketBatch(reads.length, 2048);
    reads.forEach(({ to, payload, fill }, i) => {
      const read = Buffer.concat([Buffer.alloc(10), udpPacket(Buffer.alloc(payload, fill))]);
      read.copy(out.buf, out.slotStart(i) + 16);
      out.offsets[i] = out.slotStart(i) + 16;
      out.lengths[i] = read.length;
      out.addrs[i] = LOOPBACK;
      out.ports[i] = to.localPort;
    });
    out.count = reads.length;
    const gpe = gpeHeader(1, NextProtocol.IPv4);
    expect(sender.sendSegmented(out, gpe)).toBe(reads.length);

    const datagram = 8 + 28 + 64;
    const inbox = new PacketBatch(8, 65536);
    expect(a.recvBatch(inbox)).toBe(2);
    expect([inbox.lengths[0], inbox.segments[0]]).toEqual([12 * datagram + 8 + 28 + 30, datagram]);
    expect([inbox.lengths[1], inbox.segments[1]]).toEqual([datagram, 0]);
    const train = packetBytes(inbox, 0);
    for (let i = 0; i <= 12; i++) {
      const at = i * datagram;
      expect(Buffer.compare(train.subarray(at, at + 8), gpe)).toBe(0);
      expect(train[at + 8 + 28]).toBe(i);
    }
    expect(b.recvBatch(inbox)).toBe(1);
    expect([inbox.lengths[0], inbox.segments[0]]).toEqual([2 * datagram, datagram]);
  });

  it('calls onReadable when a datagram is waiting', async () => {
    const sender = open();
    const receiver = open();
    const inbox = new PacketBatch(8, 256);
    const received = new Promise<number>((resolve) => {
      receiver.onReadable(() => {
        const n = receiver.recvBatch(inbox);
        if (n > 0) resolve(inbox.lengths[0] ?? -1);
      });
    });
    expect(sender.sendBatch(batchTo(receiver.localPort, [42]))).toBe(1);
    expect(await withTimeout(received, 5000, 'poll callback')).toBe(42);
  });

  it('binds the requested port and grants the requested buffer sizes', () => {
    const first = open();
    const socket = KernelUdp.open('127.0.0.1', first.localPort, { rcvbuf: 1 << 20, sndbuf: 1 << 19 });
    sockets.push(socket); // SO_REUSEADDR lets it share the port
    expect(socket.localPort).toBe(first.localPort);
    expect(socket.rcvbuf).toBeGreaterThanOrEqual(1 << 20);
    expect(socket.sndbuf).toBeGreaterThanOrEqual(1 << 19);
  });

  it('throws kernel errors with their errno code', () => {
    expectNativeError(() => KernelUdp.open('192.0.2.1', 0), 'EADDRNOTAVAIL', 'bind');
    expectNativeError(() => weftDp().close(1_000_000), 'EBADF', 'close');
  });

  it('refuses use after close', () => {
    const socket = KernelUdp.open('127.0.0.1', 0);
    socket.close();
    socket.close();
    expect(() => socket.recvBatch(new PacketBatch(1, 64))).toThrow(/closed/);
  });

  it('throws RangeError instead of touching memory outside the buffers', () => {
    const dp = weftDp();
    const socket = dp.udpOpen('127.0.0.1', 0);
    onTestFinished(() => dp.close(socket.fd));
    const { fd } = socket;
    const buf = Buffer.alloc(1024);
    const offsets = new Uint32Array(4);
    const lengths = new Uint32Array(4);
    const addrs = new Uint32Array(4).fill(LOOPBACK);
    const ports = new Uint16Array(4).fill(socket.port);

    offsets[1] = 1000;
    lengths[1] = 25;
    expect(() => dp.udpSendBatch(fd, buf, offsets, lengths, addrs, ports, 2)).toThrow(RangeError);
    expect(() => dp.tunWriteBatch(fd, buf, offsets, lengths, 2)).toThrow(RangeError);
    offsets[1] = 0xffffffff;
    lengths[1] = 2;
    expect(() => dp.udpSendBatch(fd, buf, offsets, lengths, addrs, ports, 2)).toThrow(RangeError);
    expect(() => dp.udpSendBatch(fd, buf, offsets, lengths, addrs, ports, 5)).toThrow(RangeError);
    expect(() => dp.udpSendBatch(fd, buf, offsets, lengths, addrs, new Uint16Array(1), 2)).toThrow(
      RangeError,
    );
    expect(() => dp.udpRecvBatch(fd, buf, 512, 3, offsets, lengths, addrs, ports)).toThrow(RangeError);
    expect(() => dp.udpRecvBatch(fd, buf, 128, 5, offsets, lengths, addrs, ports)).toThrow(RangeError);
    expect(() => dp.tunReadBatch(fd, buf, 256, 8, 5, offsets, lengths)).toThrow(RangeError);
    expect(() => dp.tunReadBatch(fd, buf, 256, 256, 1, offsets, lengths)).toThrow(RangeError);
    expect(() => dp.udpSendBatch(fd, buf, lengths, offsets, addrs, new Uint32Array(4) as never, 1)).toThrow(
      TypeError,
    );
  });
});

describe('weft_dp polling in a worker thread', () => {
  it('receives on the worker loop and lets the worker exit after pollStop', async () => {
    const { worker, port } = await startPollingWorker('stop-after-first');
    const messages = collectMessages(worker);
    sendOne(port, 33);
    expect(await waitForExit(worker)).toBe(0);
    expect(messages).toEqual([33]);
  });

  it('survives terminating a worker whose poll is still active', async () => {
    const { worker, port } = await startPollingWorker('keep-polling');
    const first = nextMessage(worker);
    sendOne(port, 17);
    expect(await first).toBe(17);
    expect(await withTimeout(worker.terminate(), 5000, 'worker exit')).toBe(1);
  });

  it('turns an exception thrown by the callback into an uncaught error', async () => {
    const { worker, port } = await startPollingWorker('throw');
    const failed = new Promise<Error>((resolve) => worker.once('error', resolve));
    sendOne(port, 5);
    expect((await withTimeout(failed, 5000, 'worker error')).message).toBe('boom from poll callback');
    expect(await waitForExit(worker)).toBe(1);
  });
});

describeAsRoot('weft_dp TUN inside a private network namespace', () => {
  const suffix = randomBytes(4).toString('hex');
  let group: NetnsGroup;
  let ns = '';
  const ifname = `wtn${suffix}`;
  const LOCAL = '10.201.7.1';
  const PEER = '10.201.7.2';
  const HEADROOM = 8;
  let tun: KernelTun | undefined;
  const inNs = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args], { stdio: 'pipe' });

  beforeAll(async () => {
    // A NetnsGroup, so that a crashed run is swept and an interrupted one cleans up on exit.
    group = await NetnsGroup.createAfterSweep('native');
    ns = await group.addNamespace('tun');
    tun = KernelTun.open(ifname);
    // The fd keeps working after the link moves, so this process never has to enter the namespace.
    execFileSync('ip', ['link', 'set', ifname, 'netns', ns], { stdio: 'pipe' });
    inNs('addr', 'add', `${LOCAL}/24`, 'dev', ifname);
    inNs('link', 'set', ifname, 'up');
  });

  afterAll(async () => {
    try {
      tun?.close();
    } finally {
      await group?.destroy();
    }
  });

  const device = (): KernelTun => {
    if (!tun) throw new Error('TUN not opened');
    return tun;
  };

  it('refuses a second open of the same device with EBUSY', () => {
    const name = `wtb${suffix}`;
    const first = KernelTun.open(name);
    try {
      expect(first.name).toBe(name);
      expectNativeError(() => KernelTun.open(name), 'EBUSY', 'ioctl TUNSETIFF');
    } finally {
      first.close();
    }
  });

  it('reads a ping sent by the namespace kernel, placed after the headroom', async () => {
    const batch = new PacketBatch(16, 2048);
    const found = readUntil(device(), batch, HEADROOM, (packet) => isIcmp(packet, 8));
    const ping = promisify(execFile)('ip', [
      'netns',
      'exec',
      ns,
      'ping',
      '-c',
      '1',
      '-W',
      '1',
      '-s',
      '56',
      '-p',
      'c0ffee',
      PEER,
    ]).catch(() => undefined); // nobody answers; only the request matters

    const { packet, offset, slot } = await withTimeout(found, 5000, 'echo request from the namespace');
    await ping;
    expect(offset).toBe(batch.slotStart(slot) + HEADROOM);
    expect(packet.length).toBe(84);
    expect(packet.readUInt16BE(2)).toBe(84);
    expect(ipv4At(packet, 12)).toBe(LOCAL);
    expect(ipv4At(packet, 16)).toBe(PEER);
    expect(internetChecksum(packet.subarray(0, 20))).toBe(0);
    // ping writes a 16-byte timestamp over the start of the repeated pattern
    const pattern = [0xc0, 0xff, 0xee];
    const data = Array.from(packet.subarray(28 + 16));
    expect(data).toEqual(data.map((_, i) => pattern[(i + 16) % 3]));
  });

  it('writes an echo request to the namespace and reads the reply, skipping a malformed packet', async () => {
    const payload = Buffer.from('weft native addon test');
    const batch = new PacketBatch(4, 2048);
    placePacket(batch, 0, Buffer.alloc(40)); // IP version 0: the kernel refuses it with EINVAL
    placePacket(batch, 1, echoRequest(PEER, LOCAL, 0x5754, 7, payload));
    batch.count = 2;

    const inbox = new PacketBatch(16, 2048);
    const found = readUntil(device(), inbox, HEADROOM, (packet) => isIcmp(packet, 0));
    expect(device().writeBatch(batch)).toBe(1);

    const { packet } = await withTimeout(found, 5000, 'echo reply');
    expect(ipv4At(packet, 12)).toBe(LOCAL);
    expect(ipv4At(packet, 16)).toBe(PEER);
    expect(packet.readUInt16BE(24)).toBe(0x5754);
    expect(packet.readUInt16BE(26)).toBe(7);
    expect(packet.subarray(28).equals(payload)).toBe(true);
  });

  it('reports a packet longer than the slot as truncated', async () => {
    const reply = Buffer.alloc(300 - 28, 0xab);
    const request = new PacketBatch(1, 2048);
    placePacket(request, 0, echoRequest(PEER, LOCAL, 0x5755, 1, reply));
    request.count = 1;

    const small = new PacketBatch(16, 128);
    const truncated = new Promise<number>((resolve) => {
      device().onReadable(() => {
        const n = device().readBatch(small, HEADROOM);
        for (let i = 0; i < n; i++) if (small.lengths[i] === TRUNCATED_LENGTH) resolve(i);
      });
    });
    expect(device().writeBatch(request)).toBe(1);
    expect(await withTimeout(truncated, 5000, 'truncated reply')).toBeGreaterThanOrEqual(0);
  });
});

// ---------------------------------------------------------------------------------------------------

function packetBytes(batch: PacketBatch, i: number): Buffer {
  const offset = batch.offsets[i] ?? 0;
  return batch.buf.subarray(offset, offset + (batch.lengths[i] ?? 0));
}

function batchTo(port: number, lengths: number[]): PacketBatch {
  const batch = new PacketBatch(lengths.length, 128);
  lengths.forEach((length, i) => {
    const offset = batch.slotStart(i);
    batch.offsets[i] = offset;
    batch.lengths[i] = length;
    batch.buf.fill(i + 1, offset, offset + length);
    batch.addrs[i] = LOOPBACK;
    batch.ports[i] = port;
  });
  batch.count = lengths.length;
  return batch;
}

function sendOne(port: number, length: number): void {
  const sender = KernelUdp.open('127.0.0.1', 0);
  try {
    expect(sender.sendBatch(batchTo(port, [length]))).toBe(1);
  } finally {
    sender.close();
  }
}

function expectNativeError(action: () => unknown, code: string, syscall: string): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(Error);
  const error = caught as NativeError;
  expect(error.code).toBe(code);
  expect(error.syscall).toBe(syscall);
  expect(error.errno).toBeLessThan(0);
  expect(error.message).toContain(code);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// --- workers -----------------------------------------------------------------------------------------

type WorkerMode = 'stop-after-first' | 'keep-polling' | 'throw';

/** Plain JS so the worker needs no TypeScript loader; it talks to the addon directly. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const dp = require(workerData.addon);
const socket = dp.udpOpen('127.0.0.1', 0, {});
const buf = Buffer.alloc(8 * 256);
const offsets = new Uint32Array(8), lengths = new Uint32Array(8), addrs = new Uint32Array(8);
const ports = new Uint16Array(8);
const handle = dp.pollStart(socket.fd, () => {
  if (workerData.mode === 'throw') throw new Error('boom from poll callback');
  const n = dp.udpRecvBatch(socket.fd, buf, 256, 8, offsets, lengths, addrs, ports);
  for (let i = 0; i < n; i++) parentPort.postMessage(lengths[i]);
  if (workerData.mode === 'stop-after-first' && n > 0) {
    dp.pollStop(handle);
    dp.pollStop(handle);
    dp.close(socket.fd);
  }
});
parentPort.postMessage({ port: socket.port });
`;

async function startPollingWorker(mode: WorkerMode): Promise<{ worker: Worker; port: number }> {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { addon: ADDON_FILE, mode } });
  const ready = (await withTimeout(nextMessage(worker), 5000, 'worker start')) as { port: number };
  return { worker, port: ready.port };
}

function nextMessage(worker: Worker): Promise<unknown> {
  return new Promise((resolve) => worker.once('message', resolve));
}

function collectMessages(worker: Worker): unknown[] {
  const messages: unknown[] = [];
  worker.on('message', (message) => messages.push(message));
  return messages;
}

function waitForExit(worker: Worker): Promise<number> {
  return withTimeout(new Promise((resolve) => worker.once('exit', resolve)), 5000, 'worker exit');
}

// --- IPv4 / ICMP -------------------------------------------------------------------------------------

interface FoundPacket {
  packet: Buffer;
  offset: number;
  slot: number;
}

/** Drains the TUN on every readiness callback until a packet matches; resolves with a copy of it. */
function readUntil(
  tun: KernelTun,
  batch: PacketBatch,
  headroom: number,
  matches: (packet: Buffer) => boolean,
): Promise<FoundPacket> {
  return new Promise((resolve) => {
    tun.onReadable(() => {
      const n = tun.readBatch(batch, headroom);
      for (let slot = 0; slot < n; slot++) {
        const packet = Buffer.from(packetBytes(batch, slot));
        if (matches(packet)) resolve({ packet, offset: batch.offsets[slot] ?? -1, slot });
      }
    });
  });
}

function isIcmp(packet: Buffer, icmpType: number): boolean {
  return packet.length >= 28 && packet[0] === 0x45 && packet[9] === 1 && packet[20] === icmpType;
}

function placePacket(batch: PacketBatch, slot: number, packet: Buffer): void {
  batch.offsets[slot] = batch.slotStart(slot);
  batch.lengths[slot] = packet.length;
  packet.copy(batch.buf, batch.slotStart(slot));
}

function echoRequest(source: string, destination: string, id: number, seq: number, payload: Buffer): Buffer {
  const packet = Buffer.alloc(28 + payload.length);
  packet[0] = 0x45;
  packet.writeUInt16BE(packet.length, 2);
  packet[8] = 64; // TTL
  packet[9] = 1; // ICMP
  writeIpv4(packet, 12, source);
  writeIpv4(packet, 16, destination);
  packet.writeUInt16BE(internetChecksum(packet.subarray(0, 20)), 10);
  packet[20] = 8; // echo request
  packet.writeUInt16BE(id, 24);
  packet.writeUInt16BE(seq, 26);
  payload.copy(packet, 28);
  packet.writeUInt16BE(internetChecksum(packet.subarray(20)), 22);
  return packet;
}

function internetChecksum(bytes: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += bytes.readUInt16BE(i);
  if (bytes.length % 2 === 1) sum += (bytes[bytes.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function writeIpv4(packet: Buffer, at: number, address: string): void {
  address.split('.').forEach((octet, i) => {
    packet[at + i] = Number(octet);
  });
}

function ipv4At(packet: Buffer, at: number): string {
  return Array.from(packet.subarray(at, at + 4)).join('.');
}

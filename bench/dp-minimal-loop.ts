/**
 * Bench-only comparison point, not shipped: the prototype's "variant 3" loop (shared notes,
 * dataplane-prototype.md) rebuilt on weft's own addon calls, with nothing else: no route lookup, no
 * per-segment checks, no counters, no admin server. Run against `weft` in one bench invocation
 * (`node dist/bench/dataplane.js weft minimal-loop`) it separates the cost of the kernel path and the
 * addon (shared by both) from the agent's own work (the difference).
 *
 * Usage (as root, in a node namespace): node dist/bench/dp-minimal-loop.js <selfIp> <peerIp> [--partial]
 * It creates `weft0`; the caller sets the link up and routes the peer's pods into it.
 */
import { weftDp } from '../src/native/addon.js';
import { ipv4ToUint32 } from '../src/util/ipv4.js';
import {
  GPE_DEFAULT_PORT,
  gpeHeader,
  hasPartialChecksum,
  ipv4TotalLength,
  NextProtocol,
} from '../src/wire/index.js';

const [self, peer, mode] = process.argv.slice(2);
if (self === undefined || peer === undefined) {
  console.error('usage: dp-minimal-loop <selfIp> <peerIp> [--partial]');
  process.exit(2);
}
const partial = mode === '--partial';
const dp = weftDp();
const { TUN_F_CSUM, TUN_F_TSO4, TUN_F_USO4, TUN_F_USO6 } = dp.constants;
const tun = dp.tunOpen('weft0', { vnetHdr: true });
dp.tunSetOffload(tun.fd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_USO4 | TUN_F_USO6);
const SOCKET_BUFFER = 8 << 20;
const udp = dp.udpOpen(self, GPE_DEFAULT_PORT, { rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER, gro: true });
const gpe = gpeHeader(1, NextProtocol.IPv4);

const BATCH = 64;
const ROUNDS = 8;
const SLOT = 10 + 65536 + 6;
const GPE = 8;
const tx = {
  buf: Buffer.alloc(BATCH * SLOT),
  offsets: new Uint32Array(BATCH),
  lengths: new Uint32Array(BATCH),
  addrs: new Uint32Array(BATCH).fill(ipv4ToUint32(peer)),
  ports: new Uint16Array(BATCH).fill(GPE_DEFAULT_PORT),
  segments: new Uint32Array(BATCH),
  partial: new Uint8Array(BATCH).fill(partial ? 1 : 0),
};
const rx = {
  buf: Buffer.alloc(BATCH * SLOT),
  offsets: new Uint32Array(BATCH),
  lengths: new Uint32Array(BATCH),
  addrs: new Uint32Array(BATCH),
  ports: new Uint16Array(BATCH),
  gso: new Uint32Array(BATCH),
};
const LIST = 4096;
const list = {
  offsets: new Uint32Array(LIST),
  lengths: new Uint32Array(LIST),
  partial: new Uint8Array(LIST),
};

function flush(count: number): void {
  if (count > 0) dp.tunWriteGro(tun.fd, rx.buf, list.offsets, list.lengths, count, true, list.partial);
}

dp.pollStart(tun.fd, () => {
  for (let round = 0; round < ROUNDS; round++) {
    const n = dp.tunReadBatch(tun.fd, tx.buf, SLOT, GPE, BATCH, tx.offsets, tx.lengths);
    if (n === 0) return;
    dp.udpSendGso(
      udp.fd,
      tx.buf,
      tx.offsets,
      tx.lengths,
      tx.addrs,
      tx.ports,
      n,
      gpe,
      64,
      tx.segments,
      tx.partial,
    );
    if (n < BATCH) return;
  }
});

dp.pollStart(udp.fd, () => {
  const { buf } = rx;
  for (let round = 0; round < ROUNDS; round++) {
    const n = dp.udpRecvBatch(udp.fd, buf, SLOT, BATCH, rx.offsets, rx.lengths, rx.addrs, rx.ports, rx.gso);
    if (n === 0) return;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const offset = rx.offsets[i] as number;
      const length = rx.lengths[i] as number;
      const size = (rx.gso[i] as number) || length;
      for (let at = 0; at < length; at += size) {
        const inner = offset + at + GPE;
        list.offsets[count] = inner;
        list.lengths[count] = ipv4TotalLength(buf, inner);
        list.partial[count] = hasPartialChecksum(buf, offset + at) ? 1 : 0;
        if (++count === LIST) {
          flush(count);
          count = 0;
        }
      }
    }
    flush(count);
    if (n < BATCH) return;
  }
});

process.on('SIGTERM', () => process.exit(0));

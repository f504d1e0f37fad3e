import { describe, expect, it } from 'vitest';
import { DataplaneCounters, DropReason } from '../../../src/dataplane/counters.js';
import { FakeNetwork, FakeTun, type FakeUdp } from '../../../src/dataplane/fake/fake-io.js';
import { Forwarder } from '../../../src/dataplane/forwarder.js';
import { RouteTable } from '../../../src/dataplane/route-table.js';
import {
  GPE_PARTIAL_CSUM_BIT,
  GPE_PARTIAL_CSUM_OFFSET,
  hasPartialChecksum,
} from '../../../src/wire/index.js';
import { gpeDatagram, ipv4Packet } from '../../helpers/packets.js';
import {
  checksumsValid,
  finishPartial,
  TCP_ACK,
  tcpPacket,
  tcpPayload,
  tunRead,
  VNET,
} from './offload-packets.js';

const VNI = 1;
const MTU = 1464;
const MSS = 1412; // MTU - 20 IP - 20 TCP - 12 timestamps
const a = { name: 'a', underlayAddress: '192.168.9.1', port: 4790, cidrs: ['10.32.1.0/24'] };
const b = { name: 'b', underlayAddress: '192.168.9.2', port: 4790, cidrs: ['10.32.2.0/24'] };

interface Node {
  tun: FakeTun;
  udp: FakeUdp;
  counters: DataplaneCounters;
}

/**
 * Two nodes; `offload` per node: TUN with virtio header, GRO and GSO on the socket. `partialTo`:
 * each node's route table says its peer takes partial checksums (as if the peer announced it).
 */
function pair(offloadA: boolean, offloadB: boolean, partialTo: { a?: boolean; b?: boolean } = {}) {
  const network = new FakeNetwork();
  const make = (self: typeof a, peer: typeof a, offload: boolean, partial: boolean): Node => {
    const tun = new FakeTun(`tun-${self.name}`, { vnetHdr: offload });
    const udp = network.socket(self.underlayAddress, self.port, { gro: offload, gso: offload });
    const counters = new DataplaneCounters();
    const routes = RouteTable.build({
      localCidrs: self.cidrs,
      peers: [{ ...peer, partialChecksums: partial }],
    });
    new Forwarder({ tun, udp, counters, routes, vni: VNI, maxInnerSize: MTU }).start();
    return { tun, udp, counters };
  };
  return {
    network,
    a: make(a, b, offloadA, partialTo.b ?? false),
    b: make(b, a, offloadB, partialTo.a ?? false),
  };
}

const timestamps = Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
function bulk(segments: number, seq = 1000): { packet: Buffer; payload: Buffer } {
  const payload = Buffer.alloc(segments * MSS - 7);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  return { payload, packet: tcpPacket({ seq, payload, options: timestamps }) };
}

/** Whether a datagram on the wire carries the GPE partial-checksum bit (per segment of a GSO train). */
function partialBits(datagram: { payload: Buffer; gsoSize?: number }): boolean[] {
  const size = datagram.gsoSize ?? datagram.payload.length;
  const bits: boolean[] = [];
  for (let at = 0; at < datagram.payload.length; at += size)
    bits.push(hasPartialChecksum(datagram.payload, at));
  return bits;
}

describe('Forwarder: partial inner checksums only to peers that take them', () => {
  /** A bare ACK from b's pod to a's: a single packet, nothing to segment or coalesce. */
  const ack = tcpPacket({
    seq: 9,
    source: '10.32.2.2',
    destination: '10.32.1.2',
    flags: TCP_ACK,
    payload: Buffer.alloc(0),
  });

  it('leaves checksums partial to a peer that announced it (not to one that did not), and both receivers get intact TCP', () => {
    // a → b partial (b announced), b → a complete (a did not).
    const { network, a: n1, b: n2 } = pair(true, true, { b: true });
    const { packet, payload } = bulk(6);
    n1.tun.inject(tunRead(packet, MSS));
    n2.tun.inject(tunRead(ack));

    expect(network.log.map(partialBits)).toEqual([Array(6).fill(true), [false]]);
    const [bulkWritten] = n2.tun.written;
    expect(bulkWritten?.[0]).toBe(VNET.NeedsCsum);
    expect(Buffer.compare(tcpPayload(finishPartial(bulkWritten as Buffer)), payload)).toBe(0);
    // The ACK arrived complete: written alone with an empty virtio header, and its checksum verifies.
    const [ackWritten] = n1.tun.written;
    expect(ackWritten?.subarray(0, 10).every((byte) => byte === 0)).toBe(true);
    expect(checksumsValid(ackWritten?.subarray(10) as Buffer)).toEqual({ ip: true, l4: true });
  });

  it('writes a single partial packet (an ACK) NEEDS_CSUM so the kernel completes it', () => {
    const { a: n1, b: n2 } = pair(true, true, { a: true, b: true });
    n2.tun.inject(tunRead(ack));
    const [written] = n1.tun.written;
    expect(written?.[0]).toBe(VNET.NeedsCsum);
    expect(written?.readUInt16LE(6)).toBe(20);
    expect(written?.readUInt16LE(8)).toBe(16);
    expect(Buffer.compare(finishPartial(written as Buffer), ack)).toBe(0);
  });

  it('finishes the checksum of a partial datagram on a node without a virtio header (a peer with a stale record)', () => {
    const { a: off } = pair(false, true);
    const complete = tcpPacket({
      seq: 1,
      source: '10.32.2.2',
      destination: '10.32.1.2',
      payload: Buffer.alloc(11, 7),
    });
    const partial = gpeDatagram(tunRead(complete).subarray(10), VNI);
    partial[GPE_PARTIAL_CSUM_OFFSET] = (partial[GPE_PARTIAL_CSUM_OFFSET] as number) | GPE_PARTIAL_CSUM_BIT;
    off.udp.injectFrom(b.underlayAddress, b.port, partial);
    expect(off.tun.written).toHaveLength(1);
    expect(Buffer.compare(off.tun.written[0] as Buffer, complete)).toBe(0);
    expect(off.counters.snapshot().droppedTotal).toBe(0);
  });

  it('writes a marked packet it cannot finish (not TCP/UDP) as it is, for the kernel to check', () => {
    const { a: off } = pair(false, true);
    const icmp = ipv4Packet({ source: '10.32.2.2', destination: '10.32.1.2', protocol: 1 });
    const partial = gpeDatagram(icmp, VNI);
    partial[GPE_PARTIAL_CSUM_OFFSET] = (partial[GPE_PARTIAL_CSUM_OFFSET] as number) | GPE_PARTIAL_CSUM_BIT;
    off.udp.injectFrom(b.underlayAddress, b.port, partial);
    expect(off.tun.written).toEqual([icmp]);
    expect(off.counters.snapshot().droppedTotal).toBe(0);
  });
});

describe('Forwarder with offloads (fake devices running the native segmentation and coalescing)', () => {
  it('sends a TSO super-packet as one GSO train and writes it to the far TUN as one GSO packet', () => {
    const { network, a: n1, b: n2 } = pair(true, true);
    const { packet, payload } = bulk(40);
    n1.tun.inject(tunRead(packet, MSS));

    expect(network.log).toHaveLength(1); // 40 datagrams of ≤ 1472 bytes fit one 64 KB train
    expect(network.log[0]?.gsoSize).toBe(8 + 20 + 32 + MSS);
    expect(n2.tun.written).toHaveLength(1);
    const written = n2.tun.written[0] as Buffer;
    expect(written[1]).toBe(VNET.GsoTcpV4);
    expect(written.readUInt16LE(4)).toBe(MSS);
    expect(Buffer.compare(tcpPayload(written.subarray(10)), payload)).toBe(0);
    expect(n1.counters.snapshot().encapsulated.packets).toBe(40);
    expect(n1.counters.snapshot().encapsulated.bytes).toBe(packet.length + 39 * 52);
    expect(n2.counters.snapshot().decapsulated).toEqual(n1.counters.snapshot().encapsulated);
    expect(n2.counters.snapshot().droppedTotal).toBe(0);
  });

  it('talks to a peer with offloads off: it receives plain MTU-sized packets with valid checksums', () => {
    const { network, a: on, b: off } = pair(true, false);
    const { packet, payload } = bulk(5);
    on.tun.inject(tunRead(packet, MSS));

    expect(network.log).toHaveLength(1);
    expect(off.tun.written).toHaveLength(5);
    for (const p of off.tun.written) {
      expect(p.length).toBeLessThanOrEqual(MTU);
      expect(checksumsValid(p)).toEqual({ ip: true, l4: true });
    }
    expect(Buffer.compare(Buffer.concat(off.tun.written.map(tcpPayload)), payload)).toBe(0);
  });

  it('coalesces the plain datagrams of a peer with offloads off, received in one batch, into one GSO write', () => {
    const { a: on } = pair(true, false);
    const fromPeer = (seq: number, size: number) =>
      gpeDatagram(
        tcpPacket({ seq, source: '10.32.2.2', destination: '10.32.1.2', payload: Buffer.alloc(size, seq) }),
        VNI,
      );
    // Queued without a wakeup, then one wakeup: the receive batch holds all six.
    for (let i = 0; i < 5; i++) {
      on.udp.received.push({
        from: { address: 0xc0a80902, port: 4790 },
        to: { address: 0xc0a80901, port: 4790 },
        payload: fromPeer(1000 + i * 100, 100),
      });
    }
    on.udp.injectFrom(b.underlayAddress, b.port, fromPeer(1500, 10));
    expect(on.tun.written).toHaveLength(1);
    expect(on.tun.written[0]?.[1]).toBe(VNET.GsoTcpV4);
    expect(on.tun.written[0]?.readUInt16LE(4)).toBe(100);
    expect(on.counters.snapshot().decapsulated.packets).toBe(6);
  });

  it('checks every segment of a GRO datagram on its own: a bad one is dropped, the rest delivered', () => {
    const { a: on } = pair(true, true);
    const good = (seq: number) =>
      gpeDatagram(
        tcpPacket({ seq, source: '10.32.2.2', destination: '10.32.1.2', payload: Buffer.alloc(100) }),
        VNI,
      );
    const spoofed = gpeDatagram(
      tcpPacket({ seq: 200, source: '10.32.7.7', destination: '10.32.1.2', payload: Buffer.alloc(100) }),
      VNI,
    );
    const train = Buffer.concat([good(0), good(100), spoofed, good(300)]);
    on.udp.enqueue({
      from: { address: 0xc0a80902, port: 4790 },
      to: { address: 0xc0a80901, port: 4790 },
      payload: train,
      gsoSize: good(0).length,
    });
    expect(on.counters.dropped(DropReason.SpoofedSource)).toBe(1);
    expect(on.counters.snapshot().decapsulated.packets).toBe(3);
    // The gap left by the dropped segment keeps the third one out of the coalesced run.
    expect(on.tun.written.map((w) => w[1])).toEqual([VNET.GsoTcpV4, VNET.GsoNone]);
  });

  it('drops a super-packet whose segments would exceed the overlay MTU as oversize', () => {
    const { network, a: n1 } = pair(true, true);
    const { packet } = bulk(3);
    n1.tun.inject(tunRead(packet, MTU));
    expect(n1.counters.dropped(DropReason.Oversize)).toBe(1);
    expect(network.log).toHaveLength(0);
  });

  it('counts TUN reads too short for the headers they claim as malformed, reading nothing past them', () => {
    const { network, a: n1 } = pair(true, true);
    const full = tunRead(bulk(3).packet, MSS);
    n1.tun.inject(full.subarray(0, 6)); // not even a virtio header
    n1.tun.inject(full.subarray(0, 10 + 19)); // a virtio header and 19 bytes of IPv4
    n1.tun.inject(full.subarray(0, 10 + 20 + 19)); // TCPv4 GSO cut inside the TCP header
    expect(n1.counters.dropped(DropReason.Malformed)).toBe(3);
    expect(n1.counters.dropped(DropReason.NoRoute)).toBe(0);
    expect(network.log).toHaveLength(0);
    n1.tun.inject(full);
    expect(network.log).toHaveLength(1);
  });

  it('drops a datagram or GRO segment larger than any peer sends as oversize, though GRO slots hold 64 KB', () => {
    const { b: on } = pair(true, true);
    const from = { address: 0xc0a80901, port: 4790 };
    const to = { address: 0xc0a80902, port: 4790 };
    const big = gpeDatagram(
      tcpPacket({ seq: 1, source: '10.32.1.2', destination: '10.32.2.2', payload: Buffer.alloc(3000) }),
      VNI,
    );
    on.udp.enqueue({ from, to, payload: big }); // e.g. reassembled from IP fragments
    on.udp.enqueue({ from, to, payload: Buffer.concat([big, big]), gsoSize: big.length });
    expect(on.counters.dropped(DropReason.Oversize)).toBe(3);
    expect(on.tun.written).toHaveLength(0);
  });

  it('counts a TUN read the addon cannot segment as malformed', () => {
    const { network, a: n1 } = pair(true, true);
    const read = tunRead(tcpPacket({ seq: 1, payload: Buffer.alloc(3000), flags: TCP_ACK }), 1000);
    read[10 + 9] = 47; // GRE inside a TCPv4 GSO header
    n1.tun.inject(read);
    expect(n1.counters.dropped(DropReason.Malformed)).toBe(1);
    expect(network.log).toHaveLength(0);
  });
});

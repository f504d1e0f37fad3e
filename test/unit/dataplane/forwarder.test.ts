import { describe, expect, it } from 'vitest';
import { DataplaneCounters, DropReason } from '../../../src/dataplane/counters.js';
import {
  FakeNetwork,
  FakeTun,
  type FakeTun as FakeTunType,
  type FakeUdp,
} from '../../../src/dataplane/fake/fake-io.js';
import { Forwarder } from '../../../src/dataplane/forwarder.js';
import { RouteTable, type RouteTableSpec } from '../../../src/dataplane/route-table.js';
import { gpeDatagram, ipv4Packet } from '../../helpers/packets.js';

const VNI = 7;
const MTU = 1464;
const nodes = {
  a: { name: 'a', underlayAddress: '192.168.9.1', port: 4790, cidrs: ['10.32.1.0/24'] },
  b: { name: 'b', underlayAddress: '192.168.9.2', port: 4790, cidrs: ['10.32.2.0/24'] },
  c: { name: 'c', underlayAddress: '192.168.9.3', port: 4790, cidrs: ['10.32.3.0/24'] },
};
type NodeName = keyof typeof nodes;

function specFor(self: NodeName, members: NodeName[] = ['a', 'b', 'c']): RouteTableSpec {
  return {
    localCidrs: nodes[self].cidrs,
    peers: members.filter((m) => m !== self).map((m) => nodes[m]),
  };
}

interface Node {
  tun: FakeTunType;
  udp: FakeUdp;
  counters: DataplaneCounters;
  forwarder: Forwarder;
}

function cluster(options: { batchSize?: number; batchesPerWakeup?: number } = {}) {
  const network = new FakeNetwork();
  const make = (self: NodeName): Node => {
    const tun = new FakeTun(`tun-${self}`);
    const udp = network.socket(nodes[self].underlayAddress, nodes[self].port);
    const counters = new DataplaneCounters();
    const forwarder = new Forwarder({
      tun,
      udp,
      counters,
      routes: RouteTable.build(specFor(self)),
      vni: VNI,
      maxInnerSize: MTU,
      ...options,
    });
    forwarder.start();
    return { tun, udp, counters, forwarder };
  };
  return { network, a: make('a'), b: make('b'), c: make('c') };
}

const dropped = (node: Node, reason: DropReason) => node.counters.dropped(reason);

describe('Forwarder, end to end over the fake underlay', () => {
  it('carries a pod packet from one node to the owner of its destination, byte for byte', () => {
    const { network, a, b, c } = cluster();
    const packet = ipv4Packet({ source: '10.32.1.2', destination: '10.32.2.2' });
    a.tun.inject(packet);

    expect(network.log).toHaveLength(1);
    const wire = network.log[0];
    expect(wire?.payload.subarray(0, 8)).toEqual(Buffer.from([0x0c, 0, 0, 1, 0, 0, 7, 0]));
    expect(b.tun.written).toEqual([packet]);
    expect(c.tun.written).toEqual([]);
    expect(a.counters.snapshot().encapsulated).toEqual({ packets: 1, bytes: packet.length });
    expect(b.counters.snapshot().decapsulated).toEqual({ packets: 1, bytes: packet.length });
    expect(a.forwarder.routeTable.peerTraffic(0).txPackets).toBe(1);
    expect(b.forwarder.routeTable.peerTraffic(0)).toEqual({
      txPackets: 0,
      txBytes: 0,
      rxPackets: 1,
      rxBytes: packet.length,
    });
    expect(b.counters.snapshot().droppedTotal).toBe(0);
  });

  it('drains many packets in batches and delivers them in order', () => {
    const { a, b } = cluster({ batchSize: 16, batchesPerWakeup: 100 });
    const packets = Array.from({ length: 100 }, (_, i) =>
      ipv4Packet({ source: '10.32.1.2', destination: '10.32.2.3', payload: Buffer.from(`packet ${i}`) }),
    );
    a.tun.inbound.push(...packets);
    expect(a.forwarder.pumpTun()).toBe(100);
    expect(b.tun.written).toEqual(packets);
    // 100 packets in batches of 16 need 7 reads.
    expect(a.counters.snapshot().batches.tunReads).toBe(7);
  });

  it('yields after batchesPerWakeup reads so one direction cannot starve the other', () => {
    const { a } = cluster({ batchSize: 4, batchesPerWakeup: 2 });
    a.tun.inbound.push(
      ...Array.from({ length: 20 }, () => ipv4Packet({ source: '10.32.1.2', destination: '10.32.2.3' })),
    );
    expect(a.forwarder.pumpTun()).toBe(8);
    expect(a.tun.inbound).toHaveLength(12);
  });

  it('follows a replaced route table at once', () => {
    const { a, b, c } = cluster();
    const toMoved = ipv4Packet({ source: '10.32.1.2', destination: '10.32.9.9' });
    a.tun.inject(toMoved);
    expect(dropped(a, DropReason.NoRoute)).toBe(1);

    // Node c takes over 10.32.9.0/24: both a (sender) and c (receiver) learn it.
    const moved = { ...nodes.c, cidrs: ['10.32.3.0/24', '10.32.9.0/24'] };
    a.forwarder.setRoutes(
      a.forwarder.routeTable.replace({ localCidrs: nodes.a.cidrs, peers: [nodes.b, moved] }),
    );
    c.forwarder.setRoutes(RouteTable.build({ localCidrs: moved.cidrs, peers: [nodes.a, nodes.b] }));
    a.tun.inject(toMoved);
    expect(c.tun.written).toEqual([toMoved]);
    expect(b.tun.written).toEqual([]);
  });
});

describe('Forwarder, send side drops', () => {
  it('drops packets nobody owns, packets for this node, IPv6 and runts as no_route', () => {
    const { a, network } = cluster();
    a.tun.inject(ipv4Packet({ source: '10.32.1.2', destination: '10.40.0.1' }));
    a.tun.inject(ipv4Packet({ source: '10.32.1.2', destination: '10.32.1.3' }));
    const ipv6 = Buffer.alloc(60);
    ipv6[0] = 0x60;
    a.tun.inject(ipv6);
    a.tun.inject(Buffer.from([0x45, 0, 0]));
    expect(dropped(a, DropReason.NoRoute)).toBe(4);
    expect(network.log).toHaveLength(0);
  });

  it('drops packets larger than the overlay MTU as oversize', () => {
    const { a, network } = cluster();
    a.tun.inject(ipv4Packet({ source: '10.32.1.2', destination: '10.32.2.2', payload: Buffer.alloc(MTU) }));
    expect(dropped(a, DropReason.Oversize)).toBe(1);
    expect(network.log).toHaveLength(0);
  });

  it('counts datagrams the socket refused as send_failed, not as sent', () => {
    const { a } = cluster();
    a.udp.sendCapacity = 2;
    a.tun.inbound.push(
      ...Array.from({ length: 5 }, () => ipv4Packet({ source: '10.32.1.2', destination: '10.32.2.3' })),
    );
    a.forwarder.pumpTun();
    expect(a.counters.snapshot().encapsulated.packets).toBe(2);
    expect(dropped(a, DropReason.SendFailed)).toBe(3);
  });
});

describe('Forwarder, receive side validation', () => {
  const fromB = (node: Node, datagram: Uint8Array, address = nodes.b.underlayAddress) =>
    node.udp.injectFrom(address, 40000, datagram);
  const valid = (overrides: Partial<Parameters<typeof ipv4Packet>[0]> = {}) =>
    ipv4Packet({ source: '10.32.2.5', destination: '10.32.1.5', ...overrides });

  it('accepts from any source port of a known peer (the kernel picks ports by flow hash)', () => {
    const { a } = cluster();
    fromB(a, gpeDatagram(valid(), VNI));
    a.udp.injectFrom(nodes.b.underlayAddress, 51234, gpeDatagram(valid(), VNI));
    expect(a.tun.written).toHaveLength(2);
  });

  it('drops datagrams from unknown underlay addresses', () => {
    const { a } = cluster();
    fromB(a, gpeDatagram(valid(), VNI), '192.168.9.99');
    expect(dropped(a, DropReason.UnknownSender)).toBe(1);
    expect(a.tun.written).toHaveLength(0);
  });

  it('drops inner packets whose source is outside the sending peer’s ranges', () => {
    const { a } = cluster();
    fromB(a, gpeDatagram(valid({ source: '10.32.3.5' }), VNI)); // c's range, sent by b
    fromB(a, gpeDatagram(valid({ source: '10.32.1.9' }), VNI)); // a's own range
    fromB(a, gpeDatagram(valid({ source: '8.8.8.8' }), VNI));
    expect(dropped(a, DropReason.SpoofedSource)).toBe(3);
    expect(a.tun.written).toHaveLength(0);
  });

  it('drops another VNI as wrong_vni', () => {
    const { a } = cluster();
    fromB(a, gpeDatagram(valid(), VNI + 1));
    expect(dropped(a, DropReason.WrongVni)).toBe(1);
  });

  it('drops damaged datagrams as malformed', () => {
    const { a } = cluster();
    const good = gpeDatagram(valid(), VNI);
    fromB(a, Buffer.from([1, 2, 3]));
    fromB(a, good.subarray(0, good.length - 3)); // inner packet cut short
    const badFlags = Buffer.from(good);
    badFlags[0] = 0x08; // P bit missing
    fromB(a, badFlags);
    fromB(a, gpeDatagram(valid(), VNI, 2)); // says IPv6, carries IPv4
    expect(dropped(a, DropReason.Malformed)).toBe(4);
    expect(a.tun.written).toHaveLength(0);
  });

  it('drops datagrams the socket had to truncate as oversize', () => {
    const { a } = cluster();
    a.udp.maxDatagram = 100;
    fromB(a, gpeDatagram(valid({ payload: Buffer.alloc(200) }), VNI));
    expect(dropped(a, DropReason.Oversize)).toBe(1);
    expect(a.tun.written).toHaveLength(0);
  });

  it('drops packets not addressed to this node’s pods as no_route, and TTL 0 as ttl_expired', () => {
    const { a } = cluster();
    fromB(a, gpeDatagram(valid({ destination: '10.32.3.5' }), VNI));
    fromB(a, gpeDatagram(valid({ ttl: 0 }), VNI));
    expect(dropped(a, DropReason.NoRoute)).toBe(1);
    expect(dropped(a, DropReason.TtlExpired)).toBe(1);
  });

  it('writes only the inner packet’s stated length, without padding', () => {
    const { a } = cluster();
    const padded = valid({ padding: 6 });
    fromB(a, gpeDatagram(padded, VNI));
    expect(a.tun.written[0]).toEqual(padded.subarray(0, padded.length - 6));
  });

  it('counts packets the TUN refused as tun_write_failed', () => {
    const { a } = cluster();
    a.tun.writeCapacity = 1;
    a.udp.received.push(
      ...[1, 2, 3].map(() => ({
        from: { address: a.forwarder.routeTable.peerAddrs[0] as number, port: 4790 },
        to: { address: 0, port: 0 },
        payload: gpeDatagram(valid(), VNI),
      })),
    );
    a.forwarder.pumpUdp();
    expect(a.counters.snapshot().decapsulated.packets).toBe(1);
    expect(dropped(a, DropReason.TunWriteFailed)).toBe(2);
  });

  it('survives 20,000 random datagrams from a known peer, counting each as a drop', () => {
    const { a } = cluster();
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 20_000; i++) {
      const datagram = Buffer.alloc(random() % 1600);
      for (let j = 0; j < datagram.length; j++) datagram[j] = random() & 0xff;
      a.udp.injectFrom(nodes.b.underlayAddress, 4790, datagram);
    }
    const snapshot = a.counters.snapshot();
    expect(snapshot.droppedTotal + snapshot.decapsulated.packets).toBe(20_000);
    expect(snapshot.dropped.malformed).toBeGreaterThan(19_000);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv4ToUint32 } from '../../../src/dataplane/io.js';
import { LOCAL, NO_OWNER, RouteTable, RouteTableError } from '../../../src/dataplane/route-table.js';

const spec = {
  localCidrs: ['10.32.1.0/24'],
  peers: [
    { name: 'n2', underlayAddress: '192.168.1.2', port: 4790, cidrs: ['10.32.2.0/24', '10.33.0.0/16'] },
    { name: 'n3', underlayAddress: '192.168.1.3', port: 4791, cidrs: ['10.32.3.128/25'] },
  ],
};

describe('RouteTable', () => {
  const table = RouteTable.build(spec);
  const at = (address: string) => table.lookup(ipv4ToUint32(address));

  it('maps every address of a range, and only those, to its owner', () => {
    expect(at('10.32.1.0')).toBe(LOCAL);
    expect(at('10.32.1.255')).toBe(LOCAL);
    expect(at('10.32.2.0')).toBe(0);
    expect(at('10.32.2.255')).toBe(0);
    expect(at('10.33.200.7')).toBe(0);
    expect(at('10.32.3.128')).toBe(1);
    expect(at('10.32.3.255')).toBe(1);
    expect(at('10.32.3.127')).toBe(NO_OWNER);
    expect(at('10.32.0.255')).toBe(NO_OWNER);
    expect(at('10.34.0.0')).toBe(NO_OWNER);
    expect(at('0.0.0.0')).toBe(NO_OWNER);
    expect(at('255.255.255.255')).toBe(NO_OWNER);
  });

  it('finds peers by underlay address and exposes their ports', () => {
    expect(table.peerBySender(ipv4ToUint32('192.168.1.3'))).toBe(1);
    expect(table.peerBySender(ipv4ToUint32('192.168.1.9'))).toBe(NO_OWNER);
    expect(table.peerPorts[1]).toBe(4791);
  });

  it('agrees with a linear scan for random ranges and addresses', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 50 }),
        (blocks, probes) => {
          // Each block is a /24 inside 10.40.0.0/16, owned round-robin by three peers.
          const peers = [0, 1, 2].map((p) => ({
            name: `p${p}`,
            underlayAddress: `192.168.0.${p + 1}`,
            port: 4790,
            cidrs: blocks.filter((_, i) => i % 3 === p).map((b) => `10.40.${b}.0/24`),
          }));
          const t = RouteTable.build({ localCidrs: [], peers });
          for (const probe of probes) {
            const address = ipv4ToUint32('10.40.0.0') + probe;
            const index = blocks.indexOf(probe >>> 8);
            expect(t.lookup(address)).toBe(index < 0 ? NO_OWNER : index % 3);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects overlapping ranges, naming both owners', () => {
    expect(() =>
      RouteTable.build({
        localCidrs: ['10.32.0.0/16'],
        peers: [{ name: 'n2', underlayAddress: '192.168.1.2', port: 4790, cidrs: ['10.32.5.0/24'] }],
      }),
    ).toThrow(/10\.32\.5\.0\/24 \(peer n2\) overlaps 10\.32\.0\.0\/16 \(this node\)/);
  });

  it('rejects bad CIDRs, duplicate peers and bad ports with a clear message', () => {
    const peer = { name: 'n2', underlayAddress: '192.168.1.2', port: 4790, cidrs: [] as string[] };
    expect(() => RouteTable.build({ localCidrs: ['10.32.1.1/24'], peers: [] })).toThrow(/host bits set/);
    expect(() => RouteTable.build({ localCidrs: ['banana'], peers: [] })).toThrow(RouteTableError);
    expect(() => RouteTable.build({ localCidrs: ['fd00::/64'], peers: [] })).toThrow(
      /not an IPv4 CIDR block/,
    );
    expect(() => RouteTable.build({ localCidrs: [], peers: [peer, { ...peer }] })).toThrow(/listed twice/);
    expect(() => RouteTable.build({ localCidrs: [], peers: [peer, { ...peer, name: 'n3' }] })).toThrow(
      /used by two peers/,
    );
    expect(() => RouteTable.build({ localCidrs: [], peers: [{ ...peer, port: 0 }] })).toThrow(
      /not a UDP port/,
    );
  });

  it('keeps per-peer counters across replacement, by name', () => {
    const t1 = RouteTable.build(spec);
    t1.countTx(1, 100);
    t1.countRx(1, 40);
    const t2 = t1.replace({ ...spec, peers: [spec.peers[1] as (typeof spec.peers)[number]] });
    expect(t2.peerTraffic(0)).toEqual({ txPackets: 1, txBytes: 100, rxPackets: 1, rxBytes: 40 });
    expect(t1.peerTraffic(0)).toEqual({ txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 });
  });
});

import { describe, expect, test } from 'vitest';
import { IpamNode } from '../../../src/ipam/node.js';
import { ipamStatus } from '../../../src/ipam/status.js';
import { TinyNet } from './net.js';

describe('ipamStatus', () => {
  test('a ready node: owners (self first, then by name) with counts and shares, allocations, seed id', () => {
    const seeds = ['b', 'c', 'a'];
    const nodes = seeds.map((peer) =>
      IpamNode.create({ peer, clusterRange: '10.32.0.0/24', seeding: { kind: 'seeds', seeds } }),
    );
    const net = new TinyNet(nodes);
    net.connectAll();
    const c = nodes[1] as IpamNode;
    c.allocate('pod-1');
    c.setKnownPeers(['c', 'a']);
    const status = ipamStatus(c);
    expect(status).toMatchObject({
      peer: 'c',
      clusterRange: '10.32.0.0/24',
      totalAddresses: 256,
      seedId: c.ring?.seedId,
      state: { kind: 'ready' },
      summary: 'ready',
      allocations: 1,
      gateway: status.gateway,
      conflicts: [],
    });
    expect(status.owners.map((o) => [o.peer, o.addresses, o.reachable])).toEqual([
      ['c', 80, true],
      ['a', 96, true],
      ['b', 80, false],
    ]);
    expect(status.owners.reduce((sum, o) => sum + o.percent, 0)).toBeCloseTo(100);
    expect(status.owners[0]?.cidrs).toEqual(['10.32.0.176/28', '10.32.0.192/26']);
    expect(status.freeAddresses).toBe(c.freeAddresses);
  });

  test('states: idle, awaiting consensus, out of space', () => {
    expect(ipamStatus(IpamNode.create({ peer: 'o', seeding: { kind: 'observer' } })).summary).toMatch(
      /^idle/,
    );
    const voter = IpamNode.create({ peer: 'v', seeding: { kind: 'consensus', expectedPeers: 4 } });
    voter.setKnownPeers(['v', 'w', 'x']);
    expect(ipamStatus(voter)).toMatchObject({
      state: { kind: 'awaiting-consensus', quorum: 3, known: 3 },
      summary: 'awaiting consensus: quorum 3, known 3',
    });
    const seeds = ['a', 'b'];
    const late = IpamNode.create({
      peer: 'z',
      clusterRange: '10.0.0.0/28',
      seeding: { kind: 'seeds', seeds },
    });
    const net = new TinyNet([
      IpamNode.create({ peer: 'a', clusterRange: '10.0.0.0/28', seeding: { kind: 'seeds', seeds } }),
      late,
    ]);
    net.connectAll();
    net.run(2);
    expect(ipamStatus(late).state.kind).toBe('out-of-space');
  });
});

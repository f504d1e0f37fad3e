import { describe, expect, test } from 'vitest';
import { IpamNode } from '../../../src/ipam/node.js';
import { ownedRanges, RMPEER_VERSION_MARGIN } from '../../../src/ipam/ring.js';
import { ipamStatus } from '../../../src/ipam/status.js';
import { TinyNet } from './net.js';

const seeded = (peer: string, seeds: string[], range = '10.32.0.0/12') =>
  IpamNode.create({ peer, clusterRange: range, seeding: { kind: 'seeds', seeds }, random: () => 0.5 });

function cidrsOf(node: IpamNode, peer: string): string[] {
  return ownedRanges(node.ring as NonNullable<IpamNode['ring']>).find((o) => o.peer === peer)?.cidrs ?? [];
}

describe('space for new nodes', () => {
  test('a joining node asks the owner, which gives half of its largest free aligned block', () => {
    const owner = seeded('owner', ['owner']);
    const joiner = seeded('joiner', ['owner']);
    const net = new TinyNet([owner, joiner]);
    net.connectAll();
    net.run(3);
    // The owner keeps its gateway at 10.32.0.1, so its largest free block is 10.40.0.0/13.
    expect(cidrsOf(owner, 'joiner')).toEqual(['10.44.0.0/14']);
    expect(cidrsOf(joiner, 'owner')).toEqual(['10.32.0.0/13', '10.40.0.0/14']);
    expect(joiner.allocate('pod')).toMatchObject({ ok: true, address: '10.44.0.2', gateway: '10.44.0.1' });
    expect(net.log.filter((m) => m.type === 'space-request')).toHaveLength(1);
  });

  test('a node that runs out asks again, and is told when nobody has space', () => {
    const make = (peer: string) =>
      IpamNode.create({
        peer,
        clusterRange: '10.0.0.0/26',
        seeding: { kind: 'seeds', seeds: ['a', 'b'] },
        minDonation: 8,
        random: () => 0.5,
      });
    const a = make('a');
    const b = make('b');
    const net = new TinyNet([a, b]);
    net.connectAll();
    // a owns 10.0.0.0/27: 29 pods fit next to its gateway.
    for (let i = 0; i < 29; i++) expect(a.allocate(`pod-${i}`).ok).toBe(true);
    const exhausted = a.allocate('one-more');
    expect(exhausted).toMatchObject({
      ok: false,
      reason: 'out-of-space',
      message: expect.stringMatching(/asked peer b/),
    });
    net.flush();
    // b (gateway 10.0.0.33) gives the upper half of its largest free block, 10.0.0.48/28.
    expect(cidrsOf(a, 'a')).toEqual(['10.0.0.0/27', '10.0.0.56/29']);
    expect(a.allocate('one-more')).toMatchObject({ ok: true, address: '10.0.0.57' });
    for (let i = 0; i < 5; i++) expect(a.allocate(`more-${i}`).ok).toBe(true);
    // b's free blocks are now all smaller than twice the minimum donation.
    expect(a.allocate('last')).toMatchObject({ ok: false, reason: 'out-of-space' });
    net.flush();
    expect(net.log.at(-1)).toMatchObject({ from: 'b', type: 'space-denied' });
    expect(ipamStatus(a).state).toEqual({ kind: 'out-of-space', askingPeer: null });
    expect(ipamStatus(a).summary).toMatch(/no reachable peer has space/);
  });

  test('a lost space request is retried after retryMs', () => {
    const owner = seeded('owner', ['owner']);
    const joiner = seeded('joiner', ['owner']);
    const net = new TinyNet([owner, joiner]);
    net.connectAll();
    let dropped = 0;
    net.drop = (_from, _to, message) => message.type === 'space-request' && dropped++ === 0;
    net.run(2);
    expect(joiner.freeAddresses).toBe(0);
    expect(ipamStatus(joiner).state).toEqual({ kind: 'out-of-space', askingPeer: 'owner' });
    net.run(6);
    expect(joiner.freeAddresses).toBeGreaterThan(0);
  });
});

describe('rmpeer', () => {
  function threeNodes() {
    const seeds = ['a', 'b', 'dead'];
    const nodes = seeds.map((p) => seeded(p, seeds));
    const net = new TinyNet(nodes);
    net.connectAll();
    net.run(2);
    return { net, a: nodes[0] as IpamNode, b: nodes[1] as IpamNode, dead: nodes[2] as IpamNode };
  }

  test('takes every range of the dead peer with higher versions, reports what it took, and is idempotent', () => {
    const { net, a, b, dead } = threeNodes();
    dead.allocate('old-pod');
    net.flush();
    const deadCidrs = cidrsOf(a, 'dead');
    net.nodes.delete('dead');
    a.setKnownPeers(['a', 'b']);
    b.setKnownPeers(['a', 'b']);
    const result = a.rmpeer('dead');
    expect(result).toEqual({ ok: true, peer: 'dead', cidrs: deadCidrs, addresses: expect.any(Number) });
    expect(result.ok && result.addresses).toBeGreaterThan(300_000);
    expect(a.rmpeer('dead')).toEqual({ ok: true, peer: 'dead', cidrs: [], addresses: 0 });
    net.run(2);
    expect(cidrsOf(b, 'dead')).toEqual([]);
    expect(cidrsOf(b, 'a')).toEqual(expect.arrayContaining(deadCidrs));
    const takenEntry = b.ring?.entries.find((e) => e.peer === 'a' && e.version > RMPEER_VERSION_MARGIN);
    expect(takenEntry).toBeDefined();
  });

  test('refuses itself, an unseeded ring, and a peer the topology still reports', () => {
    const { a } = threeNodes();
    expect(a.rmpeer('a')).toMatchObject({ ok: false, reason: 'self' });
    expect(a.rmpeer('dead')).toMatchObject({ ok: false, reason: 'reachable' });
    expect(a.rmpeer('dead', { allowReachable: true })).toMatchObject({ ok: true });
    const lonely = IpamNode.create({ peer: 'x', seeding: { kind: 'observer' } });
    expect(lonely.rmpeer('y')).toMatchObject({ ok: false, reason: 'no-ring' });
  });

  test('a removed peer that returns with its old state does not resurrect its ranges and reports the conflict', () => {
    const { net, a, b, dead } = threeNodes();
    expect(dead.allocate('old-pod')).toMatchObject({ ok: true });
    net.flush();
    const oldState = dead.snapshot();
    const oldCidrs = cidrsOf(a, 'dead');
    net.nodes.delete('dead');
    a.setKnownPeers(['a', 'b']);
    a.rmpeer('dead');
    net.run(2);

    const zombie = IpamNode.restore(
      { peer: 'dead', seeding: { kind: 'seeds', seeds: ['a', 'b', 'dead'] } },
      oldState,
    );
    expect(zombie.ownedIntervals().length).toBeGreaterThan(0);
    net.add(zombie);
    net.connectAll();
    net.tick();
    // Its gossip of the old ring is answered with the newer one, so it learns within one round trip.
    for (const view of [a, b, zombie]) {
      expect(cidrsOf(view, 'a')).toEqual(expect.arrayContaining(oldCidrs));
      expect(cidrsOf(view, 'dead')).toEqual([]);
    }
    const lost = zombie.conflicts.find((c) => c.kind === 'ownership-lost');
    expect(lost?.message).toMatch(/gives ranges this node owned .* to other peers; 2 allocation\(s\) there/);
    expect(lost?.orphaned.map((o) => o.containerId).sort()).toEqual(['old-pod', 'weft:gateway']);
    expect(zombie.addressOf('old-pod')).toBeUndefined();
    // It then asks for space like any new node and gets some.
    net.run(3);
    expect(zombie.freeAddresses).toBeGreaterThan(0);
    expect(a.conflicts).toEqual([]);
  });

  test('rmpeer run on two nodes for the same peer is a version tie: resolved the same way and reported', () => {
    const { net, a, b } = threeNodes();
    net.nodes.delete('dead');
    a.setKnownPeers(['a', 'b']);
    b.setKnownPeers(['a', 'b']);
    a.rmpeer('dead');
    b.rmpeer('dead');
    net.run(2);
    expect(ownedRanges(a.ring as never)).toEqual(ownedRanges(b.ring as never));
    const reports = [...a.conflicts, ...b.conflicts].map((c) => c.kind);
    expect(reports).toContain('version-tie');
    expect(reports).toContain('ownership-lost');
  });
});

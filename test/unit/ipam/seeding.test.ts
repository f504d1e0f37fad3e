import { describe, expect, test } from 'vitest';
import { IpamNode } from '../../../src/ipam/node.js';
import { ringsEqual } from '../../../src/ipam/ring.js';
import { seedIdFor } from '../../../src/ipam/seeding.js';
import { ipamStatus } from '../../../src/ipam/status.js';
import { TinyNet } from './net.js';

const consensus = (peer: string, expectedPeers: number) =>
  IpamNode.create({ peer, seeding: { kind: 'consensus', expectedPeers }, random: () => 0.5 });

describe('consensus seeding (single-decree Paxos)', () => {
  test('a single-node cluster (E = 1) seeds itself', () => {
    const net = new TinyNet([consensus('a', 1)]);
    net.tick();
    expect(ipamStatus(net.nodes.get('a') as IpamNode).state).toEqual({ kind: 'ready' });
  });

  test('below quorum a node waits and says so; it never invents space', () => {
    const net = new TinyNet([consensus('a', 3)]);
    net.connectAll();
    net.run(30);
    const a = net.nodes.get('a') as IpamNode;
    expect(a.ring).toBeNull();
    expect(ipamStatus(a).summary).toBe('awaiting consensus: quorum 2, known 1');
    expect(net.log).toEqual([]);
  });

  test('with a quorum, all peers agree on one ring, split among the peers the proposer knew', () => {
    const net = new TinyNet(['a', 'b', 'c'].map((p) => consensus(p, 3)));
    net.connectAll();
    net.run(3);
    const rings = [...net.nodes.values()].map((n) => n.ring);
    expect(rings.every((r) => r !== null && ringsEqual(r, rings[0] as NonNullable<typeof r>))).toBe(true);
    expect(rings[0]?.seedId).toBe(seedIdFor('consensus', '10.32.0.0/12', ['a', 'b', 'c']));
    expect(new Set(rings[0]?.entries.map((e) => e.peer))).toEqual(new Set(['a', 'b', 'c']));
  });

  test('two of three agree while the third is unreachable; it adopts the ring when it comes back', () => {
    const net = new TinyNet(['a', 'b', 'c'].map((p) => consensus(p, 3)));
    net.drop = (from, to) => from === 'c' || to === 'c';
    for (const node of net.nodes.values()) node.setKnownPeers(node.peer === 'c' ? ['c'] : ['a', 'b']);
    net.run(10);
    const c = net.nodes.get('c') as IpamNode;
    expect(net.nodes.get('a')?.ring).not.toBeNull();
    expect(c.ring).toBeNull();
    expect(ipamStatus(c).summary).toBe('awaiting consensus: quorum 2, known 1');
    net.drop = () => false;
    net.connectAll();
    net.run(6);
    expect(c.ring?.seedId).toBe(net.nodes.get('a')?.ring?.seedId);
  });

  test('a proposal’s retry timer runs from when its prepares left, not from when they were queued', () => {
    const a = IpamNode.create({
      peer: 'a',
      seeding: { kind: 'consensus', expectedPeers: 3 },
      timing: { retryMs: 5_000 },
      random: () => 0.5,
    });
    a.setKnownPeers(['a', 'b', 'c']);
    a.tick(0);
    const first = a.drainOutbox().filter((m) => m.message.type === 'paxos-prepare');
    expect(first.map((m) => m.to)).toEqual(['b', 'c']);
    // Saving before the send took 4 s (a loaded machine); promises come 2 s after the prepares left.
    a.messagesSent(4_000);
    a.tick(5_500);
    const proposal = (first[0]?.message as { proposal?: unknown } | undefined)?.proposal;
    const promise = { type: 'paxos-promise', v: 2, range: a.clusterRange, proposal, accepted: null };
    a.receive('b', promise as never);
    const accepts = a.drainOutbox().filter((m) => m.message.type === 'paxos-accept');
    expect(accepts.map((m) => m.to).sort()).toEqual(['b', 'c']);
    // Without the report, the same timeline abandons the attempt at 5 s and ignores the promise.
    const late = IpamNode.create({
      peer: 'a',
      seeding: { kind: 'consensus', expectedPeers: 3 },
      timing: { retryMs: 5_000 },
      random: () => 0.5,
    });
    late.setKnownPeers(['a', 'b', 'c']);
    late.tick(0);
    late.drainOutbox();
    late.tick(5_500);
    late.receive('b', promise as never);
    expect(late.drainOutbox().filter((m) => m.message.type === 'paxos-accept')).toEqual([]);
  });

  test('the proposer announces the seeded ring; peers adopting it do not repeat it to everyone', () => {
    const net = new TinyNet(['a', 'b', 'c'].map((p) => consensus(p, 3)));
    net.connectAll();
    net.run(3);
    const ringSenders = new Set(net.log.filter((m) => m.type === 'ring').map((m) => m.from));
    expect(ringSenders).toEqual(new Set(['a']));
    expect([...net.nodes.values()].every((n) => n.ring?.seedId === net.nodes.get('a')?.ring?.seedId)).toBe(
      true,
    );
  });

  test('concurrent proposers settle on the lowest name instead of duelling', () => {
    const prepares = (node: IpamNode) => node.drainOutbox().filter((m) => m.message.type === 'paxos-prepare');
    // c ranks itself first in its partial view of a booting cluster and proposes.
    const c = consensus('c', 5);
    c.setKnownPeers(['c', 'd', 'e']);
    c.tick(0);
    expect(prepares(c).map((m) => m.to)).toEqual(['d', 'e']);
    // a, which sorts before c, proposes too; c yields to it and answers (here: rejects a's lower round).
    const a = consensus('a', 5);
    a.setKnownPeers(['a', 'c', 'd']);
    a.tick(0);
    const aPrepare = prepares(a).find((m) => m.to === 'c');
    c.receive('a', (aPrepare as NonNullable<typeof aPrepare>).message);
    const reply = c.drainOutbox().find((m) => m.to === 'a');
    expect(reply?.message.type).toBe('paxos-reject');
    c.tick(9_000);
    expect(prepares(c)).toEqual([]);
    // a, outbid by a higher name, retries within a tenth of the retry interval with a higher round.
    a.receive('c', (reply as NonNullable<typeof reply>).message);
    a.tick(600);
    expect(prepares(a)).toEqual([]);
    a.tick(800);
    const retry = prepares(a);
    expect(retry.map((m) => m.to).sort()).toEqual(['c', 'd']);
    expect(retry[0]?.message).toMatchObject({ proposal: { round: 2, proposer: 'a' } });
    // Once a stays quiet for four retry intervals, c may propose again.
    c.tick(19_000);
    expect(prepares(c)).toEqual([]);
    c.tick(20_001);
    expect(prepares(c).length).toBeGreaterThan(0);
  });

  test('a proposer asks peers it learns of while its prepare phase runs', () => {
    const a = consensus('a', 5);
    a.setKnownPeers(['a', 'b', 'c']);
    a.tick(0);
    const preparedTo = () =>
      a
        .drainOutbox()
        .filter((m) => m.message.type === 'paxos-prepare')
        .map((m) => m.to);
    expect(preparedTo()).toEqual(['b', 'c']);
    a.setKnownPeers(['a', 'b', 'c', 'd']);
    a.tick(500);
    expect(preparedTo()).toEqual(['d']);
    a.tick(1_000);
    expect(preparedTo()).toEqual([]);
  });

  test('with a full-view grace the first proposer waits for every expected peer, or for the grace', () => {
    const withGrace = (peer: string) =>
      IpamNode.create({
        peer,
        seeding: { kind: 'consensus', expectedPeers: 4 },
        timing: { fullViewGraceMs: 5_000 },
        random: () => 0.5,
      });
    const preparedTo = (node: IpamNode) =>
      node
        .drainOutbox()
        .filter((m) => m.message.type === 'paxos-prepare')
        .map((m) => m.to)
        .sort();
    // A quorum (3 of 4) is known, not everyone: a waits, so that d gets space in the first ring.
    const a = withGrace('a');
    a.setKnownPeers(['a', 'b', 'c']);
    a.tick(0);
    a.tick(4_000);
    expect(preparedTo(a)).toEqual([]);
    a.setKnownPeers(['a', 'b', 'c', 'd']);
    a.tick(4_100);
    expect(preparedTo(a)).toEqual(['b', 'c', 'd']);
    // d never shows up: the grace ends and a proposes to the quorum it knows.
    const lone = withGrace('a');
    lone.setKnownPeers(['a', 'b', 'c']);
    lone.tick(0);
    lone.tick(4_999);
    expect(preparedTo(lone)).toEqual([]);
    lone.tick(5_000);
    expect(preparedTo(lone)).toEqual(['b', 'c']);
  });

  test('the accept phase asks every known peer, not only the promisers', () => {
    const a = consensus('a', 5);
    a.setKnownPeers(['a', 'b', 'c', 'd', 'e']);
    a.tick(0);
    const prepare = a.drainOutbox().find((m) => m.message.type === 'paxos-prepare')?.message;
    if (prepare?.type !== 'paxos-prepare') throw new Error('a sent no prepare');
    const { proposal } = prepare;
    for (const from of ['b', 'c']) {
      a.receive(from, { type: 'paxos-promise', v: 2, range: '10.32.0.0/12', proposal, accepted: null });
    }
    const accepts = a.drainOutbox().filter((m) => m.message.type === 'paxos-accept');
    expect(accepts.map((m) => m.to).sort()).toEqual(['b', 'c', 'd', 'e']);
    // A peer that never promised may accept, and counts towards the quorum.
    a.receive('d', { type: 'paxos-accepted', v: 2, range: '10.32.0.0/12', proposal });
    a.receive('e', { type: 'paxos-accepted', v: 2, range: '10.32.0.0/12', proposal });
    expect(a.ring).not.toBeNull();
  });

  test('a prepare delivered twice does not make its proposer abandon the round', () => {
    const a = consensus('a', 3);
    a.setKnownPeers(['a', 'b', 'c']);
    a.tick(0);
    const prepare = a.drainOutbox().find((m) => m.message.type === 'paxos-prepare' && m.to === 'b');
    const b = consensus('b', 3);
    // Sent direct, then again by the driver's fallback broadcast: b promises, then refuses the copy.
    b.receive('a', (prepare as NonNullable<typeof prepare>).message);
    b.receive('a', (prepare as NonNullable<typeof prepare>).message);
    const replies = b.drainOutbox().map((m) => m.message);
    expect(replies.map((m) => m.type)).toEqual(['paxos-promise', 'paxos-reject']);
    a.receive('b', replies[1] as never);
    a.receive('b', replies[0] as never);
    // The promise still counts: with a's own, a quorum of 3, so a goes on to the accept phase.
    expect(a.drainOutbox().some((m) => m.message.type === 'paxos-accept')).toBe(true);
  });

  test('an acceptor restarted from its snapshot keeps its promise (it cannot vote twice)', () => {
    const a = consensus('a', 3);
    a.setKnownPeers(['a', 'b']);
    a.tick(0);
    const prepare = a.drainOutbox().find((m) => m.message.type === 'paxos-prepare');
    expect(prepare?.to).toBe('b');
    const b = consensus('b', 3);
    b.receive('a', (prepare as NonNullable<typeof prepare>).message);
    expect(b.drainOutbox()[0]?.message.type).toBe('paxos-promise');
    const restarted = IpamNode.restore(
      { peer: 'b', seeding: { kind: 'consensus', expectedPeers: 3 } },
      b.snapshot(),
    );
    restarted.receive('a', (prepare as NonNullable<typeof prepare>).message);
    expect(restarted.drainOutbox()[0]?.message.type).toBe('paxos-reject');
  });
});

describe('seed lists', () => {
  test('every listed peer builds the same ring at once; others wait for it', () => {
    const seeds = ['n1', 'n2', 'n3'];
    const nodes = seeds.map((peer) => IpamNode.create({ peer, seeding: { kind: 'seeds', seeds } }));
    for (const node of nodes)
      expect(ringsEqual(node.ring as NonNullable<typeof node.ring>, nodes[0]?.ring as never)).toBe(true);
    const late = IpamNode.create({ peer: 'n4', seeding: { kind: 'seeds', seeds } });
    expect(ipamStatus(late).state).toEqual({ kind: 'idle' });
    const net = new TinyNet([...nodes, late]);
    net.connectAll();
    net.run(3);
    expect(late.ring?.seedId).toBe(nodes[0]?.ring?.seedId);
    expect(late.freeAddresses).toBeGreaterThan(0);
  });

  test('rings seeded differently are reported, never merged', () => {
    const left = IpamNode.create({ peer: 'a', seeding: { kind: 'seeds', seeds: ['a'] } });
    const right = IpamNode.create({ peer: 'b', seeding: { kind: 'seeds', seeds: ['b'] } });
    const before = left.ring;
    const net = new TinyNet([left, right]);
    net.connectAll();
    net.run(2);
    expect(left.ring).toBe(before);
    expect(left.conflicts).toEqual([
      expect.objectContaining({
        kind: 'seed-mismatch',
        from: 'b',
        message: expect.stringMatching(/seeded twice/),
      }),
    ]);
    expect(right.conflicts[0]?.kind).toBe('seed-mismatch');
    expect(ipamStatus(left).conflicts).toHaveLength(1);
  });

  test('a peer waiting for a seed-list ring ignores a ring from another seeding', () => {
    const foreign = IpamNode.create({ peer: 'x', seeding: { kind: 'seeds', seeds: ['x'] } });
    const waiting = IpamNode.create({ peer: 'w', seeding: { kind: 'seeds', seeds: ['s1'] } });
    const net = new TinyNet([foreign, waiting]);
    net.connectAll();
    net.run(2);
    expect(waiting.ring).toBeNull();
    expect(waiting.conflicts[0]?.kind).toBe('seed-mismatch');
  });

  test('messages from another cluster range are reported and ignored', () => {
    const a = IpamNode.create({ peer: 'a', seeding: { kind: 'seeds', seeds: ['a'] } });
    const b = IpamNode.create({
      peer: 'b',
      clusterRange: '10.64.0.0/16',
      seeding: { kind: 'seeds', seeds: ['b'] },
    });
    const net = new TinyNet([a, b]);
    net.connectAll();
    net.run(2);
    expect(a.conflicts[0]).toMatchObject({ kind: 'range-mismatch', from: 'b' });
    expect(a.ring?.entries.map((e) => e.peer)).toEqual(['a']);
  });
});

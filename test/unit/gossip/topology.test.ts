import { describe, expect, it } from 'vitest';
import { Topology } from '../../../src/gossip/topology.js';
import { record } from './fixtures.js';

const self = { name: 'self', peerId: '12D3KooWSelf' };
const A = '12D3KooWAAAA';
const B = '12D3KooWBBBB';
const TIMEOUT = 1_000;

const fresh = () => new Topology(self, TIMEOUT);

describe('Topology', () => {
  it('adds a peer, then treats repeats as heartbeats and address changes as updates', () => {
    const topology = fresh();
    expect(topology.apply(record({ peerId: A, seq: 1 }), 0)).toEqual({ accepted: true, change: 'added' });
    expect(topology.apply(record({ peerId: A, seq: 2 }), 10)).toEqual({
      accepted: true,
      change: 'refreshed',
    });
    expect(topology.apply(record({ peerId: A, seq: 3, underlay: '10.0.0.9' }), 20)).toEqual({
      accepted: true,
      change: 'updated',
    });
    expect(
      topology.apply(record({ peerId: A, seq: 4, underlay: '10.0.0.9', version: '0.2.0' }), 30),
    ).toMatchObject({ change: 'refreshed' });
    expect(topology.peers()).toEqual([
      expect.objectContaining({
        name: 'node-a',
        peerId: A,
        underlayAddress: '10.0.0.9',
        version: '0.2.0',
        lastSeenMs: 30,
      }),
    ]);
    expect(topology.nameOf(A)).toBe('node-a');
    expect(topology.peerIdOf('node-a')).toBe(A);
  });

  it('passes on the pods in use a record reports, from its latest record (absent from older agents)', () => {
    const topology = fresh();
    topology.apply(record({ peerId: A, seq: 1 }), 0);
    expect(topology.peers()[0]?.addressesInUse).toBeUndefined();
    topology.apply(record({ peerId: A, seq: 2, addressesInUse: 7 }), 10);
    expect(topology.peers()[0]?.addressesInUse).toBe(7);
  });

  it('passes on announced data-plane features, and a change of them is route-relevant (none from older agents)', () => {
    const topology = fresh();
    topology.apply(record({ peerId: A, seq: 1 }), 0);
    expect(topology.peers()[0]?.features).toEqual([]);
    const outcome = topology.apply(record({ peerId: A, seq: 2, features: ['partial-csum'] }), 10);
    expect(outcome).toMatchObject({ accepted: true, change: 'updated' });
    expect(topology.peers()[0]?.features).toEqual(['partial-csum']);
    expect(topology.apply(record({ peerId: A, seq: 3, features: ['partial-csum'] }), 20)).toMatchObject({
      change: 'refreshed',
    });
  });

  it('drops stale sequence numbers and older incarnations of a live peer', () => {
    const topology = fresh();
    topology.apply(record({ peerId: A, incarnation: 5, seq: 10 }), 0);
    expect(topology.apply(record({ peerId: A, incarnation: 5, seq: 10 }), 1)).toMatchObject({
      reason: 'stale',
    });
    expect(topology.apply(record({ peerId: A, incarnation: 5, seq: 9 }), 1)).toMatchObject({
      reason: 'stale',
    });
    expect(topology.apply(record({ peerId: A, incarnation: 4, seq: 99 }), 1)).toMatchObject({
      reason: 'stale',
    });
    expect(topology.apply(record({ peerId: A, incarnation: 6, seq: 0 }), 1)).toMatchObject({
      accepted: true,
    });
  });

  it('accepts any new incarnation of an unreachable peer (restart with a clock that went back)', () => {
    const topology = fresh();
    topology.apply(record({ peerId: A, incarnation: 5, seq: 10 }), 0);
    expect(topology.expire(TIMEOUT + 1)).toEqual([A]);
    expect(topology.apply(record({ peerId: A, incarnation: 5, seq: 3 }), TIMEOUT + 2)).toMatchObject({
      reason: 'stale',
    });
    expect(topology.apply(record({ peerId: A, incarnation: 3, seq: 0 }), TIMEOUT + 2)).toEqual({
      accepted: true,
      change: 'updated',
    });
    expect(topology.peers()[0]?.state).toBe('reachable');
  });

  it('marks peers unreachable only after the timeout, once', () => {
    const topology = fresh();
    topology.apply(record({ peerId: A }), 0);
    expect(topology.expire(TIMEOUT)).toEqual([]);
    expect(topology.expire(TIMEOUT + 1)).toEqual([A]);
    expect(topology.expire(TIMEOUT + 500)).toEqual([]);
    expect(topology.peers()[0]).toMatchObject({ state: 'unreachable' });
  });

  it('refuses a name held by a live peer, and our own name', () => {
    const topology = fresh();
    topology.apply(record({ peerId: A, name: 'n1', sentAtMs: 10 }), 0);
    expect(topology.apply(record({ peerId: B, name: 'n1', sentAtMs: 99 }), 1)).toMatchObject({
      accepted: false,
      reason: 'name-conflict',
    });
    expect(topology.apply(record({ peerId: B, name: 'self' }), 1)).toMatchObject({ reason: 'name-conflict' });
    expect(topology.apply(record({ peerId: self.peerId, name: 'x' }), 1)).toMatchObject({ reason: 'self' });
    expect(topology.peerIdOf('n1')).toBe(A);
  });

  it('lets a new peer ID take over the name of an unreachable peer with a later record', () => {
    const topology = fresh();
    topology.apply(record({ peerId: A, name: 'n1', sentAtMs: 100 }), 0);
    topology.expire(TIMEOUT + 1);
    expect(topology.apply(record({ peerId: B, name: 'n1', sentAtMs: 50 }), TIMEOUT + 2)).toMatchObject({
      reason: 'name-conflict',
    });
    expect(topology.apply(record({ peerId: B, name: 'n1', sentAtMs: 200 }), TIMEOUT + 2)).toEqual({
      accepted: true,
      change: 'added',
      replacedPeerId: A,
    });
    expect(topology.peers().map((peer) => peer.peerId)).toEqual([B]);
    expect(topology.nameOf(A)).toBeUndefined();
  });

  it('follows a rename of the same peer ID and frees the old name', () => {
    const topology = fresh();
    topology.apply(record({ peerId: A, name: 'old', seq: 1 }), 0);
    expect(topology.apply(record({ peerId: A, name: 'new', seq: 2 }), 1)).toMatchObject({
      change: 'updated',
    });
    expect(topology.peerIdOf('old')).toBeUndefined();
    expect(topology.apply(record({ peerId: B, name: 'old' }), 2)).toMatchObject({ change: 'added' });
  });

  it('forgets a peer by name', () => {
    const topology = fresh();
    topology.apply(record({ peerId: A, name: 'n1' }), 0);
    expect(topology.forget('n1')).toBe(true);
    expect(topology.forget('n1')).toBe(false);
    expect(topology.peers()).toEqual([]);
  });
});

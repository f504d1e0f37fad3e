import { describe, expect, test } from 'vitest';
import { GATEWAY_ID, IpamNode } from '../../../src/ipam/node.js';

function soloNode(range = '10.32.0.0/28'): IpamNode {
  return IpamNode.create({ peer: 'a', clusterRange: range, seeding: { kind: 'seeds', seeds: ['a'] } });
}

describe('per-pod allocation', () => {
  test('the gateway takes the first usable address, pods follow first-fit', () => {
    const node = soloNode();
    expect(node.gateway).toBe('10.32.0.1');
    expect(node.allocate('pod-1')).toEqual({
      ok: true,
      containerId: 'pod-1',
      address: '10.32.0.2',
      gateway: '10.32.0.1',
    });
    expect(node.allocate('pod-2')).toMatchObject({ ok: true, address: '10.32.0.3' });
  });

  test('idempotent per container ID', () => {
    const node = soloNode();
    const first = node.allocate('pod-1');
    node.allocate('pod-2');
    expect(node.allocate('pod-1')).toEqual(first);
    expect(node.allocationCount).toBe(3);
  });

  test('never hands out the network or broadcast address; exhaustion is an out-of-space error', () => {
    const node = soloNode();
    const addresses: string[] = [];
    for (let i = 0; i < 20; i++) {
      const result = node.allocate(`pod-${i}`);
      if (!result.ok) {
        expect(result.reason).toBe('out-of-space');
        expect(result.message).toMatch(/no free address/);
        break;
      }
      addresses.push(result.address);
    }
    // A /28 has 16 addresses: network .0, gateway .1, broadcast .15, so 13 pods.
    expect(addresses).toHaveLength(13);
    expect(addresses).not.toContain('10.32.0.0');
    expect(addresses).not.toContain('10.32.0.15');
    expect(addresses.at(-1)).toBe('10.32.0.14');
    expect(node.freeAddresses).toBe(0);
  });

  test('release frees the address for the next allocation (first-fit reuses it)', () => {
    const node = soloNode();
    node.allocate('pod-1');
    node.allocate('pod-2');
    expect(node.release('pod-1')).toBe('10.32.0.2');
    expect(node.release('pod-1')).toBeUndefined();
    expect(node.allocate('pod-3')).toMatchObject({ address: '10.32.0.2' });
  });

  test('the gateway cannot be released, collected or requested by a pod', () => {
    const node = soloNode();
    expect(node.release(GATEWAY_ID)).toBeUndefined();
    expect(node.gc([])).toEqual([]);
    expect(node.gateway).toBe('10.32.0.1');
    expect(node.allocate(GATEWAY_ID)).toMatchObject({ ok: false, reason: 'invalid-container-id' });
    expect(node.allocate('')).toMatchObject({ ok: false, reason: 'invalid-container-id' });
  });

  test('GC releases allocations whose containers are not in the valid list', () => {
    const node = soloNode();
    for (const id of ['a', 'b', 'c', 'd']) node.allocate(id);
    expect(node.gc(['b', 'd', 'unknown'])).toEqual([
      { containerId: 'a', address: '10.32.0.2' },
      { containerId: 'c', address: '10.32.0.4' },
    ]);
    expect(node.allocationList().map((a) => a.containerId)).toEqual([GATEWAY_ID, 'b', 'd']);
  });

  test('every change that must be saved bumps the revision', () => {
    const node = soloNode();
    const r0 = node.revision;
    node.allocate('x');
    const r1 = node.revision;
    node.allocate('x');
    expect(node.revision).toBe(r1);
    node.release('x');
    expect(r1).toBeGreaterThan(r0);
    expect(node.revision).toBeGreaterThan(r1);
  });

  test('without a ring: awaiting consensus or idle, never invented space', () => {
    const voter = IpamNode.create({ peer: 'a', seeding: { kind: 'consensus', expectedPeers: 3 } });
    expect(voter.allocate('pod')).toMatchObject({
      ok: false,
      reason: 'awaiting-consensus',
      quorum: 2,
      known: 1,
      message: 'awaiting consensus: quorum 2, known 1',
    });
    const observer = IpamNode.create({ peer: 'b', seeding: { kind: 'observer' } });
    expect(observer.allocate('pod')).toMatchObject({ ok: false, reason: 'no-ring' });
  });
});

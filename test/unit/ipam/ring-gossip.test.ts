import { describe, expect, test } from 'vitest';
import { DEFAULT_IPAM_TIMING, IpamNode, RING_GOSSIPERS_PER_INTERVAL } from '../../../src/ipam/node.js';
import { mulberry32 } from '../../helpers/ipam-sim.js';
import { TinyNet } from './net.js';

/** Seeds a cluster of `size`, lets it settle, then counts ring broadcasts over `windowMs`. */
function ringBroadcasts(size: number, windowMs: number): { perNode: Map<string, number>; total: number } {
  const seeds = Array.from({ length: size }, (_, i) => `n${String(i).padStart(2, '0')}`);
  const net = new TinyNet(
    seeds.map((peer, i) =>
      IpamNode.create({
        peer,
        clusterRange: '10.32.0.0/16',
        seeding: { kind: 'seeds', seeds },
        random: mulberry32(i + 1),
      }),
    ),
  );
  net.connectAll();
  net.run(120, 1_000);
  net.log.length = 0;
  net.run(windowMs / 1_000, 1_000);
  const perNode = new Map<string, number>();
  for (const entry of net.log)
    if (entry.type === 'ring' && entry.to === seeds[0])
      perNode.set(entry.from, (perNode.get(entry.from) ?? 0) + 1);
  // Every broadcast reaches n00 once, except n00's own: count those at another receiver.
  perNode.set(
    seeds[0] as string,
    net.log.filter((e) => e.type === 'ring' && e.from === seeds[0] && e.to === seeds[1]).length,
  );
  return { perNode, total: [...perNode.values()].reduce((a, b) => a + b, 0) };
}

describe('periodic ring gossip', () => {
  const window = 20 * DEFAULT_IPAM_TIMING.gossipMs;

  test(`up to ${RING_GOSSIPERS_PER_INTERVAL} nodes: every node gossips its ring once per gossipMs`, () => {
    const { perNode } = ringBroadcasts(3, window);
    for (const count of perNode.values()) expect(count).toBeGreaterThanOrEqual(17);
    for (const count of perNode.values()) expect(count).toBeLessThanOrEqual(24);
  });

  test('20 nodes: each node gossips 4× less often, so the cluster sends as many rings as 5 nodes would', () => {
    const { perNode, total } = ringBroadcasts(20, window);
    expect(perNode.size).toBe(20);
    for (const count of perNode.values()) expect(count).toBeGreaterThanOrEqual(3);
    for (const count of perNode.values()) expect(count).toBeLessThanOrEqual(7);
    const fiveNodeCluster = RING_GOSSIPERS_PER_INTERVAL * (window / DEFAULT_IPAM_TIMING.gossipMs);
    expect(total).toBeGreaterThanOrEqual(fiveNodeCluster * 0.8);
    expect(total).toBeLessThanOrEqual(fiveNodeCluster * 1.25);
  });
});

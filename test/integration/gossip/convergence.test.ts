import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, fullyConverged, TestCluster, waitFor } from './cluster.js';

type Layout = 'star' | 'chain';

describe('gossip convergence from peer addresses only', () => {
  let cluster: TestCluster;
  afterEach(async () => {
    await cluster?.stopAll();
  });

  it.each<[number, Layout]>([
    [2, 'star'],
    [3, 'star'],
    [3, 'chain'],
    [5, 'star'],
    [5, 'chain'],
  ])('%i nodes (%s of --peers) learn every peer and connect to all', async (count, layout) => {
    cluster = new TestCluster();
    const ports = await freePorts(count);
    for (let i = 0; i < count; i++) {
      const seed = layout === 'star' ? 0 : i - 1;
      await cluster.start({
        nodeName: `node-${i}`,
        listenPort: ports[i],
        stateDir: await cluster.stateDir(),
        peers: i === 0 ? [] : [`127.0.0.1:${ports[seed]}`],
      });
    }

    const convergedMs = await waitFor(
      'every node to know every peer',
      () => fullyConverged(cluster.nodes),
      5_000,
    );
    // Peers learned from records are dialed too, so small clusters become a full mesh.
    const meshMs = await waitFor(
      'a full mesh',
      () =>
        cluster.nodes.every(
          (node) =>
            new Set(
              node
                .connections()
                .filter((c) => c.state === 'established')
                .map((c) => c.peerId),
            ).size ===
            count - 1,
        ),
      5_000,
    );
    console.log(
      `${count} nodes (${layout}): converged ${convergedMs.toFixed(0)} ms, full mesh ${meshMs.toFixed(0)} ms`,
    );
    for (const node of cluster.nodes) {
      expect(node.peers().map((peer) => peer.name)).toEqual(
        cluster.nodes.filter((other) => other !== node).map((other) => other.config.nodeName),
      );
      // Stale drops are routine (a newer record overtook an older one on another path); nothing else may be dropped.
      const { stale: _stale, ...otherDrops } = node.droppedRecords();
      expect(Object.values(otherDrops).every((count) => count === 0)).toBe(true);
    }
  });
});

import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ClusterPod, TestCluster } from '../../helpers/cluster.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';

describeAsRoot('three agents from peer addresses only: gossip, IPAM and data plane end to end', () => {
  let group: NetnsGroup;
  let cluster: TestCluster;
  const pods: ClusterPod[] = [];

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('cp3');
    cluster = await TestCluster.create(group, 3);
    for (const node of cluster.nodes) cluster.startAgent(node.name);
    await cluster.waitUntilReady();
  });

  afterAll(async () => {
    await group?.destroy();
  });

  it('splits the cluster range among the three nodes, shares adding up to 100 %', async () => {
    const status = await cluster.status('n1');
    const owners = status.controlPlane?.ipam.owners ?? [];
    expect(owners.map((o) => o.peer).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(owners.reduce((sum, o) => sum + o.percent, 0)).toBeCloseTo(100, 6);
    // Every node sees the same ring.
    const seeds = await Promise.all(
      cluster.nodes.map(async (n) => (await cluster.status(n.name)).controlPlane?.ipam.seedId),
    );
    expect(new Set(seeds).size).toBe(1);
  });

  it('gives pods on every node distinct addresses and they ping each other across nodes', async () => {
    for (const node of cluster.nodes) pods.push(await cluster.addPod(node.name, `p${node.name.slice(1)}`));
    expect(new Set(pods.map((p) => p.ip)).size).toBe(3);
    for (const from of pods) {
      for (const to of pods) {
        if (from !== to) expect(await cluster.ping(from, to), `${from.name} → ${to.name}`).toBe(true);
      }
    }
  });

  it('allocation is idempotent per container ID', async () => {
    const again = await cluster.allocate('n1', 'p1');
    expect(again.address).toBe(pods[0]?.ip);
  });
});

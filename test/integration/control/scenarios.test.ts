import { afterEach, expect, it } from 'vitest';
import { waitFor } from '../../helpers/agent.js';
import { type ClusterPod, TestCluster } from '../../helpers/cluster.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';

let group: NetnsGroup | undefined;
afterEach(async () => {
  await group?.destroy();
  group = undefined;
});

async function newCluster(size: number, flags: string[] = []): Promise<TestCluster> {
  group = await NetnsGroup.createAfterSweep('cps');
  return TestCluster.create(group, size, { agentFlags: flags });
}

async function allAllocations(cluster: TestCluster, names: string[]): Promise<string[]> {
  const addresses: string[] = [];
  for (const pod of cluster.pods.filter((p) => names.includes(p.node))) addresses.push(pod.ip);
  return addresses;
}

describeAsRoot('control plane scenarios with real agent processes', () => {
  it('a 2-node cluster seeds and carries traffic', async () => {
    const cluster = await newCluster(2);
    for (const node of cluster.nodes) cluster.startAgent(node.name);
    await cluster.waitUntilReady();
    const a = await cluster.addPod('n1', 'pa');
    const b = await cluster.addPod('n2', 'pb');
    expect(await cluster.ping(a, b)).toBe(true);
  });

  it('5 agents started from a single seed address all converge and own space', async () => {
    const cluster = await newCluster(5);
    // Everyone knows only n1's address; gossip finds the rest. Consensus needs the expected size.
    for (const node of cluster.nodes) {
      cluster.startAgent(
        node.name,
        ['--ipam-init', 'consensus=5'],
        node.name === 'n1' ? [] : [cluster.node('n1').underlayIp],
      );
    }
    await cluster.waitUntilReady(undefined, 45_000);
    const owners = (await cluster.status('n3')).controlPlane?.ipam.owners ?? [];
    expect(owners.map((o) => o.peer).sort()).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
    const p1 = await cluster.addPod('n1', 'q1');
    const p5 = await cluster.addPod('n5', 'q5');
    expect(await cluster.ping(p5, p1)).toBe(true);
  });

  it('an agent killed with SIGKILL comes back with its peer ID, ranges and allocations', async () => {
    const cluster = await newCluster(3);
    for (const node of cluster.nodes) cluster.startAgent(node.name);
    await cluster.waitUntilReady();
    const pod2 = await cluster.addPod('n2', 'r2');
    const pod1 = await cluster.addPod('n1', 'r1');
    const before = await cluster.status('n2');

    await cluster.stopAgent('n2', 'SIGKILL');
    cluster.startAgent('n2');
    await cluster.waitUntilReady();
    const after = await cluster.status('n2');
    expect(after.controlPlane?.peerId).toBe(before.controlPlane?.peerId);
    expect(after.node.podCidrs).toEqual(before.node.podCidrs);
    // The same container keeps its address; a new one gets a different one.
    expect((await cluster.allocate('n2', 'r2')).address).toBe(pod2.ip);
    expect((await cluster.allocate('n2', 'r2-new')).address).not.toBe(pod2.ip);
    expect(await cluster.ping(pod1, pod2)).toBe(true);
  });

  it('a partition with allocations on both sides heals without duplicate addresses', async () => {
    const cluster = await newCluster(3);
    for (const node of cluster.nodes) cluster.startAgent(node.name);
    await cluster.waitUntilReady();
    await cluster.partition('n1', 'n2');
    await cluster.partition('n1', 'n3');
    await waitFor(
      async () =>
        (await cluster.status('n1')).controlPlane?.peers.every((p) => p.state === 'unreachable') ?? false,
      10_000,
      'the partition did not cut n1 off',
    );
    // n1 is cut off from both; allocate on both sides during the partition.
    const during: ClusterPod[] = [];
    for (let i = 0; i < 4; i++) {
      during.push(await cluster.addPod('n1', `s1x${i}`));
      during.push(await cluster.addPod('n2', `s2x${i}`));
      during.push(await cluster.addPod('n3', `s3x${i}`));
    }
    await cluster.heal('n1', 'n2');
    await cluster.heal('n1', 'n3');
    await cluster.waitUntilReady();
    const addresses = await allAllocations(cluster, ['n1', 'n2', 'n3']);
    expect(new Set(addresses).size).toBe(addresses.length);
    const seeds = await Promise.all(
      cluster.nodes.map(async (n) => (await cluster.status(n.name)).controlPlane?.ipam.seedId),
    );
    expect(new Set(seeds).size).toBe(1);
    const [x, y] = [during[0] as ClusterPod, during[1] as ClusterPod];
    await waitFor(() => cluster.ping(x, y, 1), 10_000, 'connectivity not restored after heal');
  });

  it('rmpeer hands a dead node’s ranges to the caller, once, and new pods can use them', async () => {
    const cluster = await newCluster(3);
    for (const node of cluster.nodes) cluster.startAgent(node.name);
    await cluster.waitUntilReady();
    const deadRanges = (await cluster.status('n3')).node.podCidrs;
    const share = async (node: string, owner: string) =>
      (await cluster.status(node)).controlPlane?.ipam.owners.find((o) => o.peer === owner)?.addresses ?? 0;
    const n1Before = await share('n1', 'n1');
    const n3Before = await share('n1', 'n3');
    await cluster.stopAgent('n3', 'SIGKILL');
    await waitFor(
      async () =>
        (await cluster.status('n1')).controlPlane?.peers.find((p) => p.name === 'n3')?.state ===
        'unreachable',
      10_000,
      'n3 never became unreachable',
    );
    const { postToAgent } = await import('../../../src/api/admin-client.js');
    const taken = (await postToAgent(cluster.node('n1').socket, '/v1/rmpeer', { peer: 'n3' })) as {
      cidrs: string[];
    };
    expect(taken.cidrs.sort()).toEqual([...deadRanges].sort());
    const again = (await postToAgent(cluster.node('n1').socket, '/v1/rmpeer', { peer: 'n3' })) as {
      cidrs: string[];
    };
    expect(again.cidrs).toEqual([]);
    expect(await share('n1', 'n1')).toBe(n1Before + n3Before);
    // The dead node leaves n1's topology as well; it would come back only by announcing itself.
    expect((await cluster.status('n1')).controlPlane?.peers.map((p) => p.name)).toEqual(['n2']);
    // A pod on n1 still gets an address and reaches n2's pods through the updated routes.
    const onN1 = await cluster.addPod('n1', 't1');
    const onN2 = await cluster.addPod('n2', 't2');
    expect(await cluster.ping(onN2, onN1)).toBe(true);
    await waitFor(
      async () => !(await cluster.status('n2')).controlPlane?.ipam.owners.some((o) => o.peer === 'n3'),
      10_000,
      'n2 still sees n3 owning ranges',
    );
  });

  it('a node added to a running cluster gets space and its pods reach the others', async () => {
    const cluster = await newCluster(3);
    for (const node of cluster.nodes) cluster.startAgent(node.name);
    await cluster.waitUntilReady();
    const old = await cluster.addPod('n1', 'u1');
    await cluster.addNode();
    cluster.startAgent('n4');
    await cluster.waitUntilReady();
    const owners = (await cluster.status('n4')).controlPlane?.ipam.owners ?? [];
    expect(owners.find((o) => o.peer === 'n4')?.addresses ?? 0).toBeGreaterThan(0);
    const fresh = await cluster.addPod('n4', 'u4');
    expect(await cluster.ping(fresh, old)).toBe(true);
  });

  it('an agent with the wrong cluster secret never appears in the topology', async () => {
    const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'weft-secret-'));
    writeFileSync(join(dir, 'good'), 'correct horse battery staple');
    writeFileSync(join(dir, 'bad'), 'wrong secret');
    const cluster = await newCluster(3);
    group?.onDestroy(() => rmSync(dir, { recursive: true, force: true }));
    cluster.startAgent('n1', ['--cluster-secret-file', join(dir, 'good')]);
    cluster.startAgent('n2', ['--cluster-secret-file', join(dir, 'good'), '--ipam-init', 'consensus=2']);
    cluster.startAgent('n3', ['--cluster-secret-file', join(dir, 'bad'), '--ipam-init', 'observer']);
    await cluster.waitUntilReady(['n1', 'n2']);
    await new Promise((r) => setTimeout(r, 3000));
    for (const name of ['n1', 'n2']) {
      const status = await cluster.status(name);
      expect(status.controlPlane?.encryption).toBe(true);
      expect(status.controlPlane?.peers.map((p) => p.name)).not.toContain('n3');
    }
    expect((await cluster.status('n3')).controlPlane?.peers).toEqual([]);
  });
});

import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { StatusReport } from '../../../src/api/status-report.js';
import { cidrInterval, parseCidr, subtractIntervals } from '../../../src/ipam/address.js';
import { seedIdFor } from '../../../src/ipam/seeding.js';
import { parseRegistry } from '../../../src/k8s/peer-registry.js';
import { DEFAULT_REGISTRY_NAME } from '../../../src/k8s/registry-store.js';
import { waitFor } from '../../helpers/agent.js';
import { TestCluster } from '../../helpers/cluster.js';
import type { KubeApiStandin } from '../../helpers/kube-api-standin.js';
import { standinForCluster } from '../../helpers/kube-standin-netns.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';

/**
 * Real agents with `--kube-peers` against the Kubernetes API stand-in (test/helpers/kube-api-standin.ts
 * says why no real API server can run here), served into the node namespaces by standinForCluster.
 * No agent gets --peers: all they know of each other comes from the Node objects.
 */
const LEASE_MS = 3_000;

let group: NetnsGroup;
let cluster: TestCluster;
let api: KubeApiStandin;
let kubeconfig: string;

function registry() {
  return parseRegistry(api.configMap('kube-system', DEFAULT_REGISTRY_NAME)?.data as Record<string, string>);
}

function startKubeAgent(name: string): void {
  cluster.startAgent(
    name,
    ['--kube-peers', '--kubeconfig', kubeconfig, '--kube-reclaim-lease-ms', String(LEASE_MS)],
    [],
  );
}

async function joinNode(name: string): Promise<void> {
  api.addNode(name, cluster.node(name).underlayIp);
  startKubeAgent(name);
}

const owners = (status: StatusReport) =>
  Object.fromEntries((status.controlPlane?.ipam.owners ?? []).map((o) => [o.peer, [...o.cidrs].sort()]));

/** True if `cidrs` cover every address of `wanted` (owners' lists are merged, so compare ranges). */
function covers(cidrs: string[], wanted: string[]): boolean {
  const have = cidrs.map((c) => cidrInterval(parseCidr(c)));
  return (
    subtractIntervals(
      wanted.map((c) => cidrInterval(parseCidr(c))),
      have,
    ).length === 0
  );
}

async function statuses(names: string[]): Promise<Record<string, StatusReport>> {
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, await cluster.status(n)] as const)));
}

describeAsRoot('agents with --kube-peers against a Kubernetes API stand-in', () => {
  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('kube');
    cluster = await TestCluster.create(group, 4);
    ({ api, kubeconfig } = await standinForCluster(cluster));
  }, 60_000);

  afterAll(async () => {
    await group?.destroy();
  });

  it('nodes that join one by one discover each other from Node objects and seed exactly one ring', async () => {
    for (const name of ['n1', 'n2', 'n3', 'n4']) {
      await joinNode(name);
      await cluster.waitUntilReady(
        cluster.nodes.slice(0, Number(name.slice(1))).map((n) => n.name),
        45_000,
      );
    }
    // The first agent saw one Node and wrote the seed list; later agents joined that ring.
    expect(registry().seeds).toEqual(['n1']);
    const all = await statuses(['n1', 'n2', 'n3', 'n4']);
    const seedIds = new Set(Object.values(all).map((s) => s.controlPlane?.ipam.seedId));
    expect([...seedIds]).toEqual([seedIdFor('seeds', '10.32.0.0/12', ['n1'])]);
    for (const status of Object.values(all)) {
      expect(Object.keys(owners(status)).sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
      expect(status.node.podCidrs.length).toBeGreaterThan(0);
    }
    expect([...registry().peers.keys()].sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
  }, 240_000);

  let n4Cidrs: string[] = [];
  let reclaimer = '';

  it('a deleted node’s ranges are taken over exactly once, though three agents race for them', async () => {
    await cluster.allocate('n4', 'old-pod');
    n4Cidrs = [...(await cluster.status('n4')).node.podCidrs].sort();
    await cluster.stopAgent('n4', 'SIGKILL');
    // Hold the survivors' claims until all three are written: no write lands meanwhile, so all three
    // were decided on one version. (Holding their reads instead left the re-reads before the claims
    // to timing: one agent's read + write could complete before another's read.)
    const barrier = api.gate(
      (r) =>
        r.method === 'PUT' &&
        (r.body?.data as Record<string, string> | undefined)?.['peer.n4']?.includes('"reclaiming"') === true,
      3,
    );
    const safety = setTimeout(barrier.release, 15_000);
    const conflictsBefore = api.counters.conflicts;
    api.deleteNode('n4');
    await waitFor(() => registry().peers.get('n4')?.state === 'reclaimed', 40_000, 'n4 never reclaimed');
    clearTimeout(safety);
    barrier.release();
    const record = registry().peers.get('n4');
    reclaimer = record?.state === 'reclaimed' ? record.by : '';
    expect(['n1', 'n2', 'n3']).toContain(reclaimer);
    expect(record).toMatchObject({ cidrs: n4Cidrs });
    expect(api.counters.conflicts - conflictsBefore).toBeGreaterThanOrEqual(1);
    const takeovers = () =>
      ['n1', 'n2', 'n3']
        .flatMap((n) => cluster.log(n).split('\n'))
        .filter((line) => line.includes('took over the IP ranges of a deleted node')).length;
    await waitFor(() => takeovers() > 0, 5_000, 'no agent logged its takeover');
    expect(takeovers()).toBe(1);

    await waitFor(
      async () => {
        const all = await statuses(['n1', 'n2', 'n3']);
        return Object.values(all).every((s) => !('n4' in owners(s)));
      },
      10_000,
      'a survivor still sees n4 owning ranges',
    );
    const all = await statuses(['n1', 'n2', 'n3']);
    for (const status of Object.values(all)) {
      expect(owners(status)).toEqual(owners(all.n1 as StatusReport));
      expect(status.controlPlane?.ipam.conflicts).toEqual([]);
    }
    expect(covers(owners(all.n1 as StatusReport)[reclaimer] ?? [], n4Cidrs)).toBe(true);
  }, 120_000);

  it('the removed node comes back with its old state and does not resurrect its old ranges', async () => {
    await joinNode('n4');
    await cluster.waitUntilReady(['n1', 'n2', 'n3', 'n4'], 45_000);
    const files = readdirSync(cluster.node('n4').stateDir);
    expect(files.some((f) => f.startsWith('ipam-state.json.reclaimed-'))).toBe(true);
    expect(cluster.log('n4')).toContain('starting with fresh IPAM state');
    // The old allocation went with the old state: n4 holds no container, and the container ID is new to it.
    expect((await cluster.status('n4')).controlPlane?.ipam.allocations).toBe(0);
    const again = (await cluster.allocate('n4', 'old-pod')).address;
    expect((await cluster.status('n4')).controlPlane?.ipam.allocations).toBe(1);
    expect(covers((await cluster.status('n4')).node.podCidrs, [`${again}/32`])).toBe(true);
    const all = await statuses(['n1', 'n2', 'n3', 'n4']);
    for (const status of Object.values(all)) {
      expect(status.controlPlane?.ipam.conflicts).toEqual([]);
      expect(owners(status)).toEqual(owners(all.n1 as StatusReport));
    }
    expect(registry().peers.get('n4')).toMatchObject({ state: 'member' });
  }, 120_000);

  it('a holder killed between its rmpeer and its tombstone: another agent finishes after a lease', async () => {
    const n3Cidrs = [...(await cluster.status('n3')).node.podCidrs].sort();
    await cluster.stopAgent('n3', 'SIGKILL');
    // Freeze whoever writes n3's tombstone: that agent has run rmpeer and is about to record it.
    const tombstone = api.gate(
      (r) =>
        r.method === 'PUT' &&
        (r.body?.data as Record<string, string> | undefined)?.['peer.n3']?.includes('"reclaimed"') === true,
    );
    api.deleteNode('n3');
    await waitFor(() => tombstone.held() === 1, 40_000, 'nobody reached the tombstone write');
    const claim = registry().peers.get('n3');
    expect(claim).toMatchObject({ state: 'reclaiming', attempt: 1 });
    const crashed = claim?.state === 'reclaiming' ? claim.holder : '';
    await cluster.stopAgent(crashed, 'SIGKILL');
    // Its connection closes through the forwarder after the process has gone: wait for the stand-in
    // to see that, or the release could still apply the dead agent's write.
    await waitFor(() => tombstone.held() === 0, 5_000, 'the killed agent’s request is still held');
    tombstone.release(); // the killed agent's request is gone with it: never applied

    await waitFor(() => registry().peers.get('n3')?.state === 'reclaimed', 30_000, 'nobody finished n3');
    const done = registry().peers.get('n3');
    expect(done).toMatchObject({ state: 'reclaimed' });
    expect(done?.state === 'reclaimed' && done.by).not.toBe(crashed);
    startKubeAgent(crashed); // its Node is still there: the DaemonSet restarts it
    const live = ['n1', 'n2', 'n4'];
    await cluster.waitUntilReady(live, 45_000);
    await waitFor(
      async () => Object.values(await statuses(live)).every((s) => !('n3' in owners(s))),
      15_000,
      'n3 still owns ranges somewhere',
    );
    const all = await statuses(live);
    const finisher = done?.state === 'reclaimed' ? done.by : '';
    const byCrashed = owners(all.n1 as StatusReport)[crashed] ?? [];
    const byFinisher = owners(all.n1 as StatusReport)[finisher] ?? [];
    // Exactly one of them holds n3's old ranges: the killed holder's rmpeer reached the others before the
    // takeover (then the finisher's rmpeer took nothing), or it did not (then the finisher took them).
    expect(covers(byCrashed, n3Cidrs) !== covers(byFinisher, n3Cidrs)).toBe(true);
    for (const status of Object.values(all)) {
      expect(owners(status)).toEqual(owners(all.n1 as StatusReport));
      expect(status.controlPlane?.ipam.conflicts).toEqual([]);
    }
  }, 150_000);
});

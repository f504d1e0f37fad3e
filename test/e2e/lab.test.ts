import { existsSync, rmSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { type PairResult, pingAll, wgetAll } from '../../src/lab/checks.js';
import { compareCni } from '../../src/lab/compare.js';
import { Lab } from '../../src/lab/lab.js';
import { processStartTime } from '../../src/lab/processes.js';
import { type LabPod, loadState, stateFile } from '../../src/lab/state.js';
import { parseIpv4Network } from '../../src/util/ipv4.js';
import { waitFor } from '../helpers/agent.js';
import { reserveTestLabName, useTestLab } from '../helpers/lab.js';
import { describeAsRoot } from '../helpers/privileges.js';

/**
 * The lab end to end: real agents in node namespaces, podman pods through the node's CNI config,
 * traffic between busybox containers. One 3-node lab is shared by the scenarios that build on
 * each other (restart, partition, add, remove); 2- and 5-node labs check other sizes.
 */

function failures(results: readonly PairResult[]): string[] {
  return results.filter((r) => !r.ok).map((r) => `${r.from} → ${r.to}: ${r.detail}`);
}

/** Ping and wget between every pair of pods on different nodes, retried until all pass. */
async function expectFullConnectivity(lab: Lab, timeoutMs = 20_000): Promise<void> {
  let last: string[] = [];
  await waitFor(
    async () => {
      last = [...failures(await pingAll(lab)), ...failures(await wgetAll(lab))];
      return last.length === 0;
    },
    timeoutMs,
    'connectivity',
    500,
  ).catch(() => {
    throw new Error(`pods that cannot reach each other:\n${last.join('\n')}`);
  });
}

/** Addresses as the pods themselves report them (eth0), not as the lab recorded them. */
async function addressesInPods(lab: Lab): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const pod of lab.pods) {
    const out = await lab.exec(pod.name, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    found.set(pod.name, /inet ([\d.]+)\//.exec(out.stdout)?.[1] ?? '');
  }
  return found;
}

/** Does CIDR `outer` contain CIDR `inner` (owned ranges merge after a reclaim)? */
function covers(outer: string, inner: string): boolean {
  const o = parseIpv4Network(outer);
  const i = parseIpv4Network(inner);
  return o.prefix <= i.prefix && i.start - o.start >= 0 && i.start - o.start < 2 ** (32 - o.prefix);
}

/** Namespaces of a lab that still exist. */
async function labNamespaces(name: string): Promise<string[]> {
  return (await readdir('/run/netns')).filter((ns) => ns.startsWith(`wl-${name}-`));
}

/** Processes (conmon, the containers) whose command line names one of the container IDs. */
async function processesMentioning(ids: readonly string[]): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (ids.some((id) => cmdline.includes(id))) found.push(Number(entry));
  }
  return found;
}

function expectNoDuplicates(addresses: Iterable<string>): void {
  const list = [...addresses];
  const dupes = list.filter((a, i) => list.indexOf(a) !== i);
  expect(dupes, 'an address was handed out twice').toEqual([]);
}

/** A lab just up: `pods` pods, each with its own address, all reaching each other. */
async function expectFreshLab(lab: Lab, pods: number, timeoutMs?: number): Promise<void> {
  expect(lab.pods).toHaveLength(pods);
  expectNoDuplicates(lab.pods.map((p) => p.ip));
  await expectFullConnectivity(lab, timeoutMs);
}

describeAsRoot('lab: a 3-node cluster with podman pods', () => {
  const labOf = useTestLab({ nodes: 3 }, 120_000);

  it('every pod reaches every pod on the other nodes (ping and wget)', async () => {
    await expectFreshLab(labOf(), 6, 10_000);
  });

  it('an agent killed with SIGKILL and restarted: pods keep their addresses, traffic returns, nothing handed out twice', async () => {
    const lab = labOf();
    const before = await addressesInPods(lab);
    await lab.restartAgent('n2', 'SIGKILL');
    expect(await addressesInPods(lab)).toEqual(before);
    const fresh = await lab.startPod('n2', 'n2-after');
    expect([...before.values()]).not.toContain(fresh.ip);
    expectNoDuplicates(lab.pods.map((p) => p.ip));
    await expectFullConnectivity(lab);
    await lab.removePod(fresh.name);
  });

  it('partition, pods started on both sides, heal: no duplicate addresses and full connectivity', async () => {
    const lab = labOf();
    // n1 alone on one side: a node cut from only one peer still hears it through the others' gossip.
    await lab.partition('n1', 'n2');
    await lab.partition('n1', 'n3');
    const during: LabPod[] = [];
    try {
      await waitFor(
        async () =>
          (await lab.status('n1')).controlPlane?.peers.every((p) => p.state === 'unreachable') === true,
        20_000,
        'the partition did not cut n1 off',
      );
      for (const node of ['n1', 'n3', 'n1', 'n3'])
        during.push(await lab.startPod(node, `${node}-p${during.length}`));
    } finally {
      await lab.heal();
    }
    await lab.waitUntilReady();
    expectNoDuplicates((await addressesInPods(lab)).values());
    await expectFullConnectivity(lab);
    for (const pod of during) await lab.removePod(pod.name);
  });

  it('a node added to the running cluster gets space and its pods reach the others', async () => {
    const lab = labOf();
    const node = await lab.addNode();
    const owners = (await lab.status(node.name)).controlPlane?.ipam.owners ?? [];
    expect(owners.find((o) => o.peer === node.name)?.addresses ?? 0).toBeGreaterThan(0);
    expect(lab.pods.filter((p) => p.node === node.name)).toHaveLength(2);
    expectNoDuplicates(lab.pods.map((p) => p.ip));
    await expectFullConnectivity(lab);
  });

  it('a removed node’s ranges are reclaimed and the survivors’ new pods work', async () => {
    const lab = labOf();
    const gone = lab.nodes[lab.nodes.length - 1]?.name as string;
    const ranges = (await lab.status(gone)).node.podCidrs;
    const { by, cidrs } = await lab.removeNode(gone);
    expect([...cidrs].sort()).toEqual([...ranges].sort());
    const owned = (await lab.status(by)).node.podCidrs;
    for (const cidr of ranges)
      expect(
        owned.some((o) => covers(o, cidr)),
        `${by} owns ${cidr}`,
      ).toBe(true);
    for (const node of lab.nodes) {
      await waitFor(
        async () => !(await lab.status(node.name)).controlPlane?.ipam.owners.some((o) => o.peer === gone),
        15_000,
        `${node.name} still sees ${gone} owning ranges`,
      );
    }
    await lab.startPod(by, `${by}-reclaim`, 'web');
    expectNoDuplicates(lab.pods.map((p) => p.ip));
    await expectFullConnectivity(lab);
  });

  it('down removes containers, agents, namespaces and files even without the state file (as after a crash)', async () => {
    const lab = labOf();
    const containers = lab.pods.map((p) => p.containerId);
    const agents = lab.nodes.map((n) => n.agent?.pid);
    expect(agents.length).toBeGreaterThan(0);
    expect(agents).not.toContain(undefined);
    rmSync(stateFile(lab.name));
    await Lab.down(lab.name);
    expect(await labNamespaces(lab.name)).toEqual([]);
    expect(existsSync(lab.state.dir)).toBe(false);
    expect(await processesMentioning(containers)).toEqual([]);
    // Dead, though this test process (their parent) may not have reaped them yet.
    for (const pid of agents) expect(processStartTime(pid as number), `agent ${pid}`).toBeUndefined();
  });
});

describeAsRoot('lab: a 5-node cluster', () => {
  const labOf = useTestLab({ nodes: 5 }, 180_000);

  it('comes up with two pods per node that all reach each other', async () => {
    await expectFreshLab(labOf(), 10);
  });
});

describeAsRoot('lab: 2 nodes with weft, then with the reference bridge + host-local plugins', () => {
  it('both give every pod an address and full connectivity; both labs are removed', async () => {
    const names: [string, string] = [await reserveTestLabName(), await reserveTestLabName()];
    const runs = await compareCni({ nodes: 2, names });
    expect(runs.map((r) => r.cni)).toEqual(['weft', 'reference']);
    for (const run of runs) {
      expect(run.pingTotal).toBe(8);
      expect(run.pingOk).toBe(run.pingTotal);
      expect(run.wgetTotal).toBe(4);
      expect(run.wgetOk).toBe(run.wgetTotal);
      expect(run.podStartMaxMs).toBeGreaterThan(0);
    }
    for (const name of names) expect(loadState(name)).toBeUndefined();
    for (const name of names) expect(await labNamespaces(name)).toEqual([]);
  }, 180_000);
});

/**
 * weft's CNI plugin called by containerd's CRI exactly as under kubelet: two nodes with real
 * agents, containerd in node n1 configured by `agent install-cni`, and pod sandboxes run, stopped
 * and removed over runtime.v1. Every expectation is checked against the agent (allocations), the
 * node (veths on the bridge) and the pod's own network namespace.
 */
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { delQueueDirOf } from '../../../src/cni/agent-cni.js';
import { attachmentKey } from '../../../src/cni/request.js';
import { canonicalCidr } from '../../../src/plumbing/cidr.js';
import type { ClusterPod, TestCluster } from '../../helpers/cluster.js';
import type { Containerd } from '../../helpers/containerd.js';
import { CriError } from '../../helpers/cri/client.js';
import { CniCallRecorder } from '../../helpers/cri/cni-recorder.js';
import { freshCriGroup, startWeftNode } from '../../helpers/cri/networks.js';
import type { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';

const NODE = 'n1';

describeAsRoot('containerd CRI with weft', () => {
  let group: NetnsGroup;
  let cluster: TestCluster;
  let containerd: Containerd;
  let recorder: CniCallRecorder;
  let remote: ClusterPod;

  beforeAll(async () => {
    group = await freshCriGroup('criw');
    ({ cluster, containerd } = await startWeftNode(group, 2));
    remote = await cluster.addPod('n2', 'p2');
    recorder = CniCallRecorder.install(containerd, 'weft');
  }, 120_000);

  // A failed test must not leave its sandboxes to the next one; each test checks its own cleanup.
  afterEach(async () => {
    if (containerd === undefined) return;
    for (const sandbox of await containerd.cri.listPodSandbox()) {
      await containerd.cri.stopPodSandbox(sandbox.id);
      await containerd.cri.removePodSandbox(sandbox.id);
    }
  });

  afterAll(async () => {
    await containerd?.stop();
    await group?.destroy();
  });

  async function allocations(): Promise<number> {
    const status = await cluster.status(NODE);
    return status.controlPlane?.ipam.allocations ?? Number.NaN;
  }

  /** Host ends of pod veths on n1's weave bridge. */
  async function bridgePorts(): Promise<string[]> {
    const { stdout } = await group.exec(NODE, ['ip', '-o', 'link', 'show', 'master', 'weave']);
    return stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(': ')[1]?.split('@')[0] ?? '')
      .sort();
  }

  async function inNodeRange(ip: string): Promise<boolean> {
    const cidrs = (await cluster.status(NODE)).node.podCidrs;
    return cidrs.some((cidr) => canonicalCidr(`${ip}/${cidr.split('/')[1]}`) === canonicalCidr(cidr));
  }

  it('RunPodSandbox puts the pod on the overlay with the address the agent allocated', async () => {
    const cri = containerd.cri;
    const before = await allocations();
    const portsBefore = await bridgePorts();
    const id = await cri.runPodSandbox(containerd.sandboxConfig('web'));
    const status = await cri.podSandboxStatus(id);
    expect(status.state).toBe('SANDBOX_READY');
    const ip = status.network?.ip ?? '';
    expect(await inNodeRange(ip)).toBe(true);

    const info = await cri.sandboxInfo(id);
    expect(info.cniAddresses.eth0).toEqual([ip]);
    const eth0 = await containerd.execInSandbox(info.netnsPath, ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
    expect(eth0.stdout).toContain(` ${ip}/`);
    expect(await allocations()).toBe(before + 1);
    // Allocation is idempotent per attachment: asking again returns what the ADD got, allocates nothing.
    const held = await cluster.allocate(NODE, attachmentKey({ containerId: id, ifname: 'eth0' }));
    expect(held.address).toBe(ip);
    expect(await allocations()).toBe(before + 1);
    expect((await bridgePorts()).length).toBe(portsBefore.length + 1);

    const fromRemote = await group.exec(remote.name, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ip], {
      allowFail: true,
    });
    expect(fromRemote.code, fromRemote.stdout).toBe(0);
    const toRemote = await containerd.execInSandbox(
      info.netnsPath,
      ['ping', '-c', '2', '-i', '0.2', '-W', '2', remote.ip],
      { allowFail: true },
    );
    expect(toRemote.code, toRemote.stdout).toBe(0);

    await cri.stopPodSandbox(id);
    await cri.removePodSandbox(id);
  });

  it('StopPodSandbox releases address and veth; RemovePodSandbox sends the second DEL without netns', async () => {
    const cri = containerd.cri;
    const before = await allocations();
    const portsBefore = await bridgePorts();
    const id = await cri.runPodSandbox(containerd.sandboxConfig('released'));
    const { netnsPath } = await cri.sandboxInfo(id);
    expect(await allocations()).toBe(before + 1);

    await cri.stopPodSandbox(id);
    expect(recorder.trace(id)).toEqual([
      ['ADD', netnsPath, 0],
      ['DEL', netnsPath, 0],
    ]);
    expect(await allocations()).toBe(before);
    expect(await bridgePorts()).toEqual(portsBefore);

    await cri.removePodSandbox(id);
    expect(recorder.trace(id)).toEqual([
      ['ADD', netnsPath, 0],
      ['DEL', netnsPath, 0],
      ['DEL', '', 0],
    ]);
    expect(await allocations()).toBe(before);
    expect(await cri.listPodSandbox()).toEqual([]);
    expect(existsSync(netnsPath)).toBe(false);
  });

  it('gives sandboxes run concurrently distinct addresses and takes them all back', async () => {
    const cri = containerd.cri;
    const before = await allocations();
    const names = Array.from({ length: 5 }, (_, i) => `many${i}`);
    const ids = await Promise.all(names.map((name) => cri.runPodSandbox(containerd.sandboxConfig(name))));
    const ips = await Promise.all(ids.map(async (id) => (await cri.podSandboxStatus(id)).network?.ip ?? ''));
    expect(new Set(ips).size).toBe(names.length);
    for (const ip of ips) expect(await inNodeRange(ip)).toBe(true);
    expect(await allocations()).toBe(before + names.length);

    await Promise.all(
      ids.map(async (id) => {
        await cri.stopPodSandbox(id);
        await cri.removePodSandbox(id);
      }),
    );
    expect(await allocations()).toBe(before);
    expect(await cri.listPodSandbox()).toEqual([]);
  });

  it('surfaces a failed ADD (agent down, CNI code 11) in RunPodSandbox and leaves nothing behind', async () => {
    const cri = containerd.cri;
    const before = await allocations();
    const portsBefore = await bridgePorts();
    const callsBefore = recorder.calls().length;
    const delQueue = delQueueDirOf(cluster.node(NODE).stateDir);
    await cluster.stopAgent(NODE);
    try {
      const failed = await cri.runPodSandbox(containerd.sandboxConfig('doomed')).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failed).toBeInstanceOf(CriError);
      expect((failed as CriError).details).toMatch(/weft.*not reachable/);
      const [add, ...cleanup] = recorder.calls().slice(callsBefore);
      expect(add?.command).toBe('ADD');
      expect(add?.exitCode).toBe(1);
      expect(JSON.parse(add?.output ?? '{}').code).toBe(11);
      // containerd undoes the failed setup with a DEL, which the plugin queues for the agent.
      expect(cleanup.map((c) => [c.command, c.netns, c.containerId, c.exitCode])).toEqual([
        ['DEL', add?.netns, add?.containerId, 0],
      ]);
      expect(readdirSync(delQueue)).toHaveLength(1);
      expect(await cri.listPodSandbox()).toEqual([]);
      expect(existsSync(add?.netns ?? '')).toBe(false);
      expect(await bridgePorts()).toEqual(portsBefore);
    } finally {
      cluster.startAgent(NODE);
      await cluster.waitUntilReady();
    }
    expect(readdirSync(delQueue)).toEqual([]);
    expect(await allocations()).toBe(before);
    expect(await bridgePorts()).toEqual(portsBefore);
  });
});

/**
 * 1,000 ADD/DEL cycles against a real agent leave nothing behind: no allocation, no veth, no
 * route on the node, nothing in the pods. The cycles go straight to the agent's CNI endpoints
 * with the body the shim forwards (the shim's own process start would make this minutes long;
 * the shim path is covered in cni.test.ts).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { postToAgent } from '../../../src/api/admin-client.js';
import { TestCluster } from '../../helpers/cluster.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';

const CYCLES = 1_000;
const WORKERS = 10;

describeAsRoot('CNI ADD/DEL cycles', () => {
  let group: NetnsGroup;
  let cluster: TestCluster;

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('cnicyc');
    cluster = await TestCluster.create(group, 1);
    cluster.startAgent('n1');
    await cluster.waitUntilReady(['n1']);
  }, 60_000);

  afterAll(async () => {
    await group?.destroy();
  });

  // Names and routes, not link flags: the bridge's carrier follows its last port's removal lazily.
  const nodeState = async () => ({
    routes: (await group.exec('n1', ['ip', '-4', 'route', 'show', 'table', 'all'])).stdout.replaceAll(
      ' linkdown',
      '',
    ),
    links: (await group.exec('n1', ['ip', '-o', 'link', 'show'])).stdout
      .split('\n')
      .map((line) => line.split(':')[1]?.trim())
      .sort(),
    allocations: (await cluster.status('n1')).controlPlane?.ipam.allocations,
  });

  it(`${CYCLES} cycles with ${WORKERS} concurrent pods leak no address, veth or route`, async () => {
    const socket = cluster.node('n1').socket;
    const pods = await Promise.all(
      Array.from({ length: WORKERS }, async (_, i) => `/run/netns/${await group.addNamespace(`p${i}`)}`),
    );
    const config = { cniVersion: '1.0.0', name: 'weftnet', type: 'weft', socket };
    const call = (command: 'ADD' | 'DEL', netns: string, containerId: string) =>
      postToAgent(socket, `/v1/cni/${command.toLowerCase()}`, {
        env: { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_IFNAME: 'eth0', CNI_NETNS: netns },
        config,
      });
    // One ADD first so that the bridge's first port and the gateway exist in the baseline.
    await call('ADD', pods[0] as string, 'warmup');
    await call('DEL', pods[0] as string, 'warmup');
    const before = await nodeState();
    const seen = new Set<string>();

    const started = performance.now();
    await Promise.all(
      pods.map(async (netns, worker) => {
        for (let i = worker; i < CYCLES; i += WORKERS) {
          const result = (await call('ADD', netns, `cycle-${i}`)) as { ips: Array<{ address: string }> };
          seen.add(result.ips[0]?.address as string);
          await call('DEL', netns, `cycle-${i}`);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(`${CYCLES} ADD/DEL cycles in ${seconds.toFixed(1)} s (${WORKERS} concurrent)`);

    expect(seen.size).toBeGreaterThanOrEqual(WORKERS); // concurrent pods held distinct addresses
    expect(await nodeState()).toEqual(before);
    for (const netns of pods) {
      const name = netns.split('/').pop() as string;
      expect((await group.exec('n1', ['ip', '-n', name, '-o', 'link', 'show'])).stdout).not.toContain('eth0');
      expect((await group.exec('n1', ['ip', '-n', name, 'route', 'show'])).stdout.trim()).toBe('');
    }
  }, 300_000);
});

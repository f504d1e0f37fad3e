import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AgentProcess, startAgentOn } from '../../helpers/agent.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import { downloadSha256, iperf3, serveFile } from '../../helpers/services.js';
import { buildTwoNodeTopology, type TwoNodeTopology } from '../../helpers/topology.js';

const POD_MTU = 1464;

describeAsRoot('two nodes running weft agents (real kernel, TUN, namespaces)', () => {
  let group: NetnsGroup;
  let topo: TwoNodeTopology;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('dp2');
    topo = await buildTwoNodeTopology(group, { podMtu: POD_MTU });
    agents.push(await startAgentOn(group, topo, 0), await startAgentOn(group, topo, 1));
  });

  afterAll(async () => {
    await group?.destroy();
  });

  it('sets up the node: TUN with the overlay MTU, cluster route with the gateway as source', async () => {
    const { stdout } = await group.exec('n1', ['ip', '-json', 'route', 'show', 'dev', 'weft0']);
    expect(JSON.parse(stdout)).toContainEqual(
      expect.objectContaining({ dst: '10.32.0.0/12', prefsrc: topo.nodes[0].gatewayIp }),
    );
    const link = JSON.parse((await group.exec('n1', ['ip', '-json', 'link', 'show', 'weft0'])).stdout)[0];
    expect(link.mtu).toBe(1464);
    expect(link.txqlen).toBe(10000);
    const status = await agents[0]?.status();
    expect(status?.dataplane.mtu).toBe(1464);
  });

  it('pings across nodes in both directions', async () => {
    const [p1, p2] = topo.pods;
    await group.exec(p1.shortName, ['ping', '-c', '3', '-i', '0.2', '-W', '2', p2.ip]);
    await group.exec(p2.shortName, ['ping', '-c', '3', '-i', '0.2', '-W', '2', p1.ip]);
    // Full-size packets with DF: the pod MTU fits the overlay exactly.
    await group.exec(p1.shortName, [
      'ping',
      '-c',
      '2',
      '-M',
      'do',
      '-s',
      String(POD_MTU - 28),
      '-W',
      '2',
      p2.ip,
    ]);
    const status = await agents[0]?.status();
    expect(status?.dataplane.counters.encapsulated.packets).toBeGreaterThanOrEqual(5);
    expect(status?.dataplane.peers[0]?.rxPackets).toBeGreaterThanOrEqual(5);
  });

  it('the node itself reaches remote pods through the overlay (gateway as source)', async () => {
    await group.exec('n1', ['ping', '-c', '2', '-W', '2', topo.pods[1].ip]);
  });

  it('carries a TCP transfer intact (busybox httpd + wget, compared by hash)', async () => {
    const [p1, p2] = topo.pods;
    const served = await serveFile(group, p2.shortName, p2.ip, randomBytes(4 * 1024 * 1024));
    try {
      expect(await downloadSha256(group, p1.shortName, served.url)).toBe(served.sha256);
    } finally {
      await served.stop();
    }
  });

  it('runs iperf3 across nodes', async () => {
    const [p1, p2] = topo.pods;
    const end = await iperf3(group, p2.shortName, p1.shortName, p2.ip);
    console.log(`iperf3 through weft: ${(end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`);
    expect(end.sum_received.bits_per_second).toBeGreaterThan(10e6);
  });

  it('survives an agent restart over its own setup and keeps the node usable', async () => {
    const first = agents[0] as AgentProcess;
    await group.stop(first.child);
    expect(first.child.exitCode).toBe(0);
    // Clean shutdown: the TUN and its route are gone, the underlay still works.
    const links = (await group.exec('n1', ['ip', '-json', 'link', 'show'])).stdout;
    expect(JSON.parse(links).map((l: { ifname: string }) => l.ifname)).not.toContain('weft0');
    await group.exec('n1', ['ping', '-c', '1', '-W', '2', topo.nodes[1].underlayIp]);

    agents[0] = await startAgentOn(group, topo, 0);
    await group.exec(topo.pods[0].shortName, ['ping', '-c', '2', '-W', '2', topo.pods[1].ip]);
  });
});

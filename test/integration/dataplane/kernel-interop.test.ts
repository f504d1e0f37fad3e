import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AgentProcess, startAgentOn } from '../../helpers/agent.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import { buildTwoNodeTopology, kernelVxlanGpeNode, type TwoNodeTopology } from '../../helpers/topology.js';
import { expectTcpBothWays } from './tcp-transfer.js';

/**
 * Node 1 runs weft; node 2 runs the Linux kernel's own VXLAN-GPE device (collect_md mode with
 * `encap ip id 1 dst <node 1>` routes). If both directions work, weft's packets are real VXLAN-GPE.
 */
describeAsRoot('interop: weft agent ⇄ Linux kernel VXLAN-GPE', () => {
  let group: NetnsGroup;
  let topo: TwoNodeTopology;
  let agent: AgentProcess;

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('gpe');
    topo = await buildTwoNodeTopology(group, { podMtu: 1464 });
    agent = await startAgentOn(group, topo, 0);
    await kernelVxlanGpeNode(group, topo, 1);
    // A veth underlay passes the kernel tunnel's offload promises through untouched: TCP
    // super-packets arrive unsegmented and inner TCP checksums are never filled in (the skb
    // stays CHECKSUM_PARTIAL into our socket). A NIC would segment and checksum on the wire;
    // turning the veth's transmit offloads off makes the kernel do it in software, as it would
    // in front of a NIC without them. weft's own sends are plain datagrams and need none of this.
    await group.exec('n2', ['ethtool', '-K', 'ul0', 'tx', 'off', 'tso', 'off', 'gso', 'off']);
  });

  afterAll(async () => {
    await group?.destroy();
  });

  it('pings both ways', async () => {
    const [p1, p2] = topo.pods;
    await group.exec(p1.shortName, ['ping', '-c', '3', '-i', '0.2', '-W', '2', p2.ip]);
    await group.exec(p2.shortName, ['ping', '-c', '3', '-i', '0.2', '-W', '2', p1.ip]);
    const status = await agent.status();
    expect(status.dataplane.counters.decapsulated.packets).toBeGreaterThanOrEqual(6);
    expect(status.dataplane.counters.droppedTotal).toBe(0);
  });

  it('carries TCP both ways, byte for byte', async () => {
    await expectTcpBothWays(group, topo, 2 * 1024 * 1024);
  });
});

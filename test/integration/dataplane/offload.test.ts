import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AgentProcess, startAgentOn } from '../../helpers/agent.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import { iperf3 } from '../../helpers/services.js';
import { buildTwoNodeTopology, type TwoNodeTopology } from '../../helpers/topology.js';
import { expectTcpBothWays } from './tcp-transfer.js';
import { udpBurst } from './udp-burst.js';

const POD_MTU = 1464;

/**
 * Node 1 runs with kernel offloads (TUN TSO super-packets segmented in userspace, UDP GSO/GRO,
 * coalesced GSO writes), node 2 with `--offload off` (one packet per datagram). Every kind of
 * traffic must cross both ways intact: what node 1 sends as GSO trains node 2 receives as plain
 * datagrams, and node 2's plain datagrams are coalesced by node 1.
 */
describeAsRoot('offloads: an agent with offloads on talks to one with them off', () => {
  let group: NetnsGroup;
  let topo: TwoNodeTopology;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('offl');
    topo = await buildTwoNodeTopology(group, { podMtu: POD_MTU });
    agents.push(
      await startAgentOn(group, topo, 0),
      await startAgentOn(group, topo, 1, { flags: ['--offload', 'off'] }),
    );
  });

  afterAll(async () => {
    await group?.destroy();
  });

  const tso = async (node: string) =>
    /tcp-segmentation-offload: (\w+)/.exec((await group.exec(node, ['ethtool', '-k', 'weft0'])).stdout)?.[1];

  it('turns TUN segmentation offload on only where asked, and says so in the log', async () => {
    expect(await tso('n1')).toBe('on');
    expect(await tso('n2')).toBe('off');
    expect(agents[0]?.log()).toContain('data-plane offloads on');
    expect(agents[1]?.log()).toContain('offloads turned off');
  });

  it('carries TCP both ways byte for byte (sha256 of 8 MiB)', async () => {
    await expectTcpBothWays(group, topo, 8 * 1024 * 1024);
  });

  it('carries ICMP at the MTU edges both ways, and IP fragments of larger packets', async () => {
    const [p1, p2] = topo.pods;
    for (const [from, to] of [
      [p1, p2],
      [p2, p1],
    ] as const) {
      for (const size of [0, 1, POD_MTU - 29, POD_MTU - 28]) {
        await group.exec(from.shortName, [
          'ping',
          '-c',
          '1',
          '-W',
          '2',
          '-M',
          'do',
          '-s',
          String(size),
          to.ip,
        ]);
      }
      // One byte over the MTU with DF is refused at the sender, as on any link.
      const over = await group.exec(
        from.shortName,
        ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', String(POD_MTU - 27), to.ip],
        { allowFail: true },
      );
      expect(over.code).not.toBe(0);
      // Without DF the pod fragments; every fragment crosses and the reply is reassembled.
      await group.exec(from.shortName, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '-s', '5000', to.ip]);
    }
  });

  it('carries UDP, fragmented and not, both ways', async () => {
    const [p1, p2] = topo.pods;
    for (const [server, client] of [
      [p2, p1],
      [p1, p2],
    ] as const) {
      for (const length of ['1400', '3000']) {
        const end = await iperf3(group, server.shortName, client.shortName, server.ip, [
          '-u',
          '-b',
          '20M',
          '-l',
          length,
          '-t',
          '1',
        ]);
        expect(
          end.sum_received.bits_per_second,
          `UDP ${length} B ${client.shortName} → ${server.shortName}`,
        ).toBeGreaterThan(10e6);
      }
    }
  });

  it('carries bursts of small UDP datagrams intact both ways, node 1 writing runs of them as one USO packet', async () => {
    const [p1, p2] = topo.pods;
    const count = 3000;
    const tunWrites = async () =>
      Number((await group.exec('n1', ['cat', '/sys/class/net/weft0/statistics/rx_packets'])).stdout.trim());
    for (const [from, to] of [
      [p1, p2],
      [p2, p1],
    ] as const) {
      const writesBefore = await tunWrites();
      const { ok, bad } = await udpBurst(group, from, to, count, 64);
      expect(bad, `${from.shortName} → ${to.shortName}`).toBe(0);
      expect(ok, `${from.shortName} → ${to.shortName}`).toBeGreaterThan(count * 0.9);
      // Node 1 receives node 2's plain datagrams in batches and writes each run as one packet.
      if (to === p1) expect(await tunWrites()).toBeLessThan(writesBefore + ok / 2);
    }
  });

  it('dropped nothing as malformed or oversize on either side', async () => {
    for (const agent of agents) {
      const { dropped } = (await agent.status()).dataplane.counters;
      expect(dropped.malformed).toBe(0);
      expect(dropped.oversize).toBe(0);
    }
  });
});

import { afterAll, beforeAll, expect, it } from 'vitest';
import { GPE_PARTIAL_CSUM_BIT, GPE_PARTIAL_CSUM_OFFSET } from '../../../src/wire/index.js';
import { type AgentProcess, startAgentOn } from '../../helpers/agent.js';
import { startCapture, udpPackets } from '../../helpers/capture.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import { buildTwoNodeTopology, GPE_PORT, type TwoNodeTopology } from '../../helpers/topology.js';
import { expectTcpBothWays } from './tcp-transfer.js';
import { udpBurst } from './udp-burst.js';

const POD_MTU = 1464;

/** Neither pod's kernel counted a TCP or UDP checksum error. */
async function expectNoChecksumErrorsInPods(group: NetnsGroup, topo: TwoNodeTopology): Promise<void> {
  for (const pod of topo.pods) {
    const nstat = await group.exec(pod.shortName, ['nstat', '-az', 'TcpInCsumErrors', 'UdpInCsumErrors']);
    for (const line of nstat.stdout.split('\n').filter((l) => /CsumErrors/.test(l)))
      expect(line, pod.shortName).toMatch(/^\w+\s+0\s/);
  }
}

/**
 * Mixed peers: node 1 is listed as completing partial checksums in node 2's peer file, node 2 is
 * listed without that feature in node 1's. Node 2 therefore leaves inner TCP/UDP checksums to
 * node 1 (GPE partial bit), node 1 sends node 2 complete ones; both directions must arrive intact.
 */
describeAsRoot('partial inner checksums: only towards the peer that takes them', () => {
  let group: NetnsGroup;
  let topo: TwoNodeTopology;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('pcsum');
    topo = await buildTwoNodeTopology(group, { podMtu: POD_MTU });
    agents.push(
      await startAgentOn(group, topo, 0, { peerFeatures: [] }),
      await startAgentOn(group, topo, 1, { peerFeatures: ['partial-csum'] }),
    );
  });

  afterAll(async () => {
    await group?.destroy();
  });

  it('marks partial checksums on the wire from node 2 only', async () => {
    const n1 = topo.nodes[0];
    const capture = await startCapture(group, n1.shortName, [
      '-i',
      n1.underlayIf,
      '-c',
      '40',
      'udp',
      'port',
      String(GPE_PORT),
    ]);
    await expectTcpBothWays(group, topo, 256 * 1024);
    const packets = udpPackets(await capture.pcap);
    const partial = (from: string) =>
      packets
        .filter((p) => p.source === from)
        .map((p) => ((p.payload[GPE_PARTIAL_CSUM_OFFSET] as number) & GPE_PARTIAL_CSUM_BIT) !== 0);
    const fromN2 = partial(topo.nodes[1].underlayIp);
    const fromN1 = partial(n1.underlayIp);
    expect(fromN2.length).toBeGreaterThan(0);
    expect(fromN1.length).toBeGreaterThan(0);
    expect(fromN2.every(Boolean)).toBe(true);
    expect(fromN1.some(Boolean)).toBe(false);
  });

  it('carries TCP both ways byte for byte (sha256 of 8 MiB)', async () => {
    await expectTcpBothWays(group, topo, 8 * 1024 * 1024);
  });

  it('carries bursts of small UDP datagrams intact both ways', async () => {
    const [p1, p2] = topo.pods;
    for (const [from, to] of [
      [p1, p2],
      [p2, p1],
    ] as const) {
      const { ok, bad } = await udpBurst(group, from, to, 2000, 64);
      expect(bad, `${from.shortName} → ${to.shortName}`).toBe(0);
      expect(ok, `${from.shortName} → ${to.shortName}`).toBeGreaterThan(2000 * 0.9);
    }
  });

  it('no pod saw a bad checksum, and neither agent dropped anything as malformed', async () => {
    await expectNoChecksumErrorsInPods(group, topo);
    for (const agent of agents) expect((await agent.status()).dataplane.counters.dropped.malformed).toBe(0);
  });
});

/**
 * A stale or wrong announcement: node 2's peer file says node 1 takes partial checksums, but node 1
 * runs with offloads off (no virtio header on its TUN), as after a restart whose new record node 2
 * has not yet seen. Node 1 finishes those checksums itself; nothing is lost.
 */
describeAsRoot('partial inner checksums to a node without offloads', () => {
  let group: NetnsGroup;
  let topo: TwoNodeTopology;
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('pcsoff');
    topo = await buildTwoNodeTopology(group, { podMtu: POD_MTU });
    agents.push(
      await startAgentOn(group, topo, 0, { peerFeatures: [], flags: ['--offload', 'off'] }),
      await startAgentOn(group, topo, 1, { peerFeatures: ['partial-csum'] }),
    );
  });

  afterAll(async () => {
    await group?.destroy();
  });

  it('carries TCP both ways byte for byte, with no bad checksum in the pods and nothing dropped', async () => {
    await expectTcpBothWays(group, topo, 2 * 1024 * 1024);
    const { ok, bad } = await udpBurst(group, topo.pods[1], topo.pods[0], 500, 64);
    expect(bad).toBe(0);
    expect(ok).toBeGreaterThan(500 * 0.9);
    await expectNoChecksumErrorsInPods(group, topo);
    const node1 = await agents[0]?.status();
    expect(node1?.dataplane.counters.dropped.malformed).toBe(0);
    expect(node1?.dataplane.counters.decapsulated.packets).toBeGreaterThan(0);
  });
});

import { afterEach, beforeAll, expect, it } from 'vitest';
import { startCapture, udpPackets } from '../../helpers/capture.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import {
  buildTwoNodeTopology,
  DEFAULT_VNI,
  GPE_PORT,
  kernelVxlanGpe,
  plainRouting,
  type TwoNodeTopology,
} from '../../helpers/topology.js';

describeAsRoot('two-node topology and kernel overlay modes', () => {
  let group: NetnsGroup | undefined;

  const ping = (g: NetnsGroup, topo: TwoNodeTopology, extra: string[] = []) =>
    g.exec(topo.pods[0].shortName, ['ping', '-c', '3', '-i', '0.2', '-W', '1', ...extra, topo.pods[1].ip], {
      allowFail: true,
    });

  beforeAll(async () => {
    await NetnsGroup.sweepStale('wt-topo');
  });

  afterEach(async () => {
    if (group === undefined) return;
    const { prefix } = group;
    await group.destroy();
    group = undefined;
    const left = (await NetnsGroup.listNamespaces()).filter((ns) => ns.startsWith(`${prefix}-`));
    expect(left).toEqual([]);
  });

  it('routes pod to pod over the underlay with plain routing, and stops after undo', async () => {
    group = NetnsGroup.create('topo');
    const topo = await buildTwoNodeTopology(group, { podMtu: 1500 });
    expect((await ping(group, topo)).code).not.toBe(0);

    const undo = await plainRouting(group, topo);
    const reply = await ping(group, topo);
    expect(reply.stdout).toMatch(/3 packets transmitted, 3 received/);

    await undo();
    expect((await ping(group, topo)).code).not.toBe(0);
  });

  it('carries pod traffic in kernel VXLAN-GPE with the GPE header on the underlay', async () => {
    group = NetnsGroup.create('topo');
    const topo = await buildTwoNodeTopology(group, { podMtu: 1464 });
    await kernelVxlanGpe(group, topo);

    const n1 = topo.nodes[0];
    const capture = await startCapture(group, n1.shortName, [
      '-i',
      n1.underlayIf,
      '-c',
      '1',
      'udp',
      'dst',
      'port',
      String(GPE_PORT),
    ]);
    const reply = await ping(group, topo);
    expect(reply.stdout).toMatch(/3 packets transmitted, 3 received/);

    const [packet] = udpPackets(await capture.pcap);
    if (packet === undefined) throw new Error('no UDP packet captured');
    expect(packet.dstPort).toBe(GPE_PORT);
    // Flags I|P (0x0c), reserved, next protocol 1 = IPv4; then the VNI and a reserved byte.
    expect([...packet.payload.subarray(0, 4)]).toEqual([0x0c, 0x00, 0x00, 0x01]);
    expect(packet.payload.readUIntBE(4, 3)).toBe(DEFAULT_VNI);
    // The inner packet is raw IPv4 from pod 1 to pod 2, no Ethernet header.
    const inner = packet.payload.subarray(8);
    expect((inner[0] as number) >> 4).toBe(4);
    expect([...inner.subarray(12, 20)].join('.')).toBe(`${topo.pods[0].ip}.${topo.pods[1].ip}`);

    // A full-size packet with DF set crosses: 1464 inner bytes fit the 1500-byte underlay.
    const fullSize = await ping(group, topo, ['-M', 'do', '-s', String(topo.podMtu - 28)]);
    expect(fullSize.stdout).toMatch(/3 received/);
  });
});

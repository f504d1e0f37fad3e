import { afterAll, describe, expect, it } from 'vitest';
import { type GossipNode, pskFromClusterSecret } from '../../../src/gossip/index.js';
import { freePorts, fullyConverged, TestCluster, waitFor } from './cluster.js';

describe('private network (cluster secret)', () => {
  const cluster = new TestCluster();
  afterAll(() => cluster.stopAll());

  it('lets nodes with the secret converge and keeps wrong-secret and no-secret nodes out', async () => {
    const secret = pskFromClusterSecret('correct horse battery staple, cluster one');
    const wrong = pskFromClusterSecret('correct horse battery staple, cluster two');
    const ports = await freePorts(5);
    const address = (i: number) => `127.0.0.1:${ports[i]}`;
    const members: GossipNode[] = [];
    for (let i = 0; i < 3; i++) {
      members.push(
        await cluster.start({
          nodeName: `member-${i}`,
          listenPort: ports[i],
          stateDir: await cluster.stateDir(),
          clusterSecret: secret,
          // member-2 also dials the outsiders, so the refusal is tested in both directions.
          peers: i === 0 ? [] : i === 1 ? [address(0)] : [address(0), address(3), address(4)],
        }),
      );
    }
    const outsiders = [
      await cluster.start({
        nodeName: 'wrong-secret',
        listenPort: ports[3],
        stateDir: await cluster.stateDir(),
        clusterSecret: wrong,
        peers: [address(0), address(1)],
      }),
      await cluster.start({
        nodeName: 'no-secret',
        listenPort: ports[4],
        stateDir: await cluster.stateDir(),
        peers: [address(0), address(1)],
      }),
    ];

    await waitFor('members to converge', () => fullyConverged(members), 5_000);
    // Give the outsiders several dial rounds in both directions.
    await new Promise((resolve) => setTimeout(resolve, 3_000));

    for (const member of members) {
      expect(member.peers().map((peer) => peer.name)).toEqual(
        members.filter((other) => other !== member).map((other) => other.config.nodeName),
      );
      // An outsider never gets a name, so check by address: no established link to its port.
      const outsiderPorts = [ports[3], ports[4]].map((p) => `/${p}`);
      expect(
        member
          .connections()
          .filter((c) => c.state === 'established' && outsiderPorts.some((p) => c.address.endsWith(p))),
      ).toEqual([]);
    }
    for (const outsider of outsiders) {
      expect(outsider.peers()).toEqual([]);
      const states = outsider.connections().map((c) => c.state);
      expect(states.length).toBeGreaterThan(0);
      expect(states).not.toContain('established');
    }
    const refused = members[2]
      ?.connections()
      .filter((c) => c.address.endsWith(`/${ports[3]}`) || c.address.endsWith(`/${ports[4]}`));
    expect(refused).toHaveLength(2);
    expect(refused?.map((c) => c.state)).not.toContain('established');
  });
});

import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { afterAll, describe, expect, it } from 'vitest';
import { TOPOLOGY_TOPIC } from '../../../src/gossip/index.js';
import { encodeRecord, type TopologyRecord } from '../../../src/gossip/records.js';
import { freePorts, fullyConverged, TestCluster, waitFor } from './cluster.js';

describe('topology record validation on the wire', () => {
  const cluster = new TestCluster();
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    await Promise.all(stops.map((stop) => stop()));
    await cluster.stopAll();
  });

  it('drops spoofed, conflicting, malformed and oversize records from a rogue peer, counting each reason', async () => {
    const ports = await freePorts(3);
    const honest = [
      await cluster.start({ nodeName: 'honest-0', listenPort: ports[0], stateDir: await cluster.stateDir() }),
      await cluster.start({
        nodeName: 'honest-1',
        listenPort: ports[1],
        stateDir: await cluster.stateDir(),
        peers: [`127.0.0.1:${ports[0]}`],
      }),
    ];
    await waitFor('honest nodes to converge', () => fullyConverged(honest), 5_000);

    const rogue = await createLibp2p({
      addresses: { listen: [`/ip4/127.0.0.1/tcp/${ports[2]}`] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: {
        identify: identify(),
        pubsub: gossipsub({
          allowPublishToZeroTopicPeers: true,
          scoreParams: { IPColocationFactorWeight: 0 },
        }),
      },
    });
    stops.push(async () => {
      await rogue.stop();
    });
    rogue.services.pubsub.subscribe(TOPOLOGY_TOPIC);
    await rogue.dial(multiaddr(`/ip4/127.0.0.1/tcp/${ports[0]}`));
    await waitFor(
      'the rogue to see a subscriber',
      () => rogue.services.pubsub.getSubscribers(TOPOLOGY_TOPIC).length > 0,
      5_000,
    );

    const base: TopologyRecord = {
      v: 1,
      name: 'rogue',
      peerId: rogue.peerId.toString(),
      underlay: '127.0.0.1',
      gossipPort: ports[2] ?? 1,
      dataPort: 4790,
      version: 'evil',
      incarnation: Date.now(),
      seq: 1,
      sentAtMs: Date.now(),
    };
    const publish = (data: Uint8Array) => rogue.services.pubsub.publish(TOPOLOGY_TOPIC, data);
    await publish(encodeRecord({ ...base, peerId: honest[1]?.peerId ?? '', name: 'impostor' }));
    await publish(encodeRecord({ ...base, name: 'honest-1' }));
    await publish(new TextEncoder().encode('{"not": "a record"'));
    await publish(new TextEncoder().encode(JSON.stringify({ ...base, underlay: 'fd00::1' })));
    await publish(new Uint8Array(4_096));

    const target = honest[0];
    await waitFor(
      'all five drops to be counted',
      () => {
        const dropped = target?.droppedRecords();
        return (
          dropped !== undefined &&
          dropped['peer-id-mismatch'] >= 1 &&
          dropped['name-conflict'] >= 1 &&
          dropped.malformed >= 1 &&
          dropped.schema >= 1 &&
          dropped.oversize >= 1
        );
      },
      5_000,
    );
    // Relayed to honest-1 as well (gossipsub forwards before our application check), and dropped there too.
    expect(target?.peers().map((peer) => `${peer.name}=${peer.peerId}`)).toEqual([
      `honest-1=${honest[1]?.peerId}`,
    ]);

    // A valid record from the same peer is accepted: the drops were about content, not the sender.
    await publish(encodeRecord({ ...base, seq: 2 }));
    await waitFor(
      'the rogue record to be accepted',
      () => target?.peers().some((p) => p.name === 'rogue') ?? false,
      5_000,
    );
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { freePorts, TestCluster, waitFor } from './cluster.js';

const count = (resources: string[], kind: string) => resources.filter((resource) => resource === kind).length;

describe('gossip node lifecycle', () => {
  const cluster = new TestCluster();
  afterAll(() => cluster.stopAll());

  it('stop() releases its timers and sockets, even with dials retrying and a channel open', async () => {
    const [port, deadPort, peerPort] = await freePorts(3);
    const before = process.getActiveResourcesInfo();
    const peer = await cluster.start({
      nodeName: 'peer',
      listenPort: peerPort,
      stateDir: await cluster.stateDir(),
    });
    const node = await cluster.start({
      nodeName: 'node',
      listenPort: port,
      stateDir: await cluster.stateDir(),
      peers: [`127.0.0.1:${deadPort}`, `127.0.0.1:${peerPort}`],
    });
    node.channel('ipam').onRequest(async () => undefined);
    await waitFor('a retrying dial', () => node.connections().some((c) => c.state === 'retrying'), 3_000);
    await waitFor('the peer', () => node.peers().length === 1, 3_000);

    await Promise.all([node.stop(), peer.stop()]);
    // libp2p's own stop leaves a few one-shot timers (gossipsub heartbeat, address-manager debounce) that
    // fire once within about a second; nothing may keep running after that.
    const kinds = ['Timeout', 'TCPServerWrap', 'TCPSocketWrap'];
    const settledMs = await waitFor(
      'timers and sockets to be released',
      () => {
        const after = process.getActiveResourcesInfo();
        return kinds.every((kind) => count(after, kind) <= count(before, kind));
      },
      3_000,
    );
    console.log(`resources released ${settledMs.toFixed(0)} ms after stop()`);
  });

  it('is single use and refuses work once stopped', async () => {
    const [port] = await freePorts(1);
    const node = await cluster.start({
      nodeName: 'once',
      listenPort: port,
      stateDir: await cluster.stateDir(),
    });
    const channel = node.channel('ipam');
    await expect(node.start()).rejects.toThrow(/cannot start/);
    await node.stop();
    await node.stop();
    expect(node.connections()).toEqual([]);
    expect(() => node.channel('other')).toThrow(/stopped/);
    await expect(channel.broadcast(new Uint8Array(1))).rejects.toMatchObject({ code: 'stopped' });
    await expect(channel.send('anyone', new Uint8Array(1))).rejects.toMatchObject({ code: 'stopped' });
  });
});

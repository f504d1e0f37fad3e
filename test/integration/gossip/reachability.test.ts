import { afterAll, describe, expect, it } from 'vitest';
import type { PeerView } from '../../../src/gossip/index.js';
import { fastTimings, freePorts, fullyConverged, TestCluster, waitFor } from './cluster.js';

const stateOf = (peers: PeerView[], name: string) => peers.find((peer) => peer.name === name)?.state;

describe('reachability when a node dies and restarts', () => {
  const cluster = new TestCluster();
  afterAll(() => cluster.stopAll());

  it('marks a stopped node unreachable within the timeout and reachable again, with the same peer ID, after restart', async () => {
    const ports = await freePorts(3);
    const seedDir = await cluster.stateDir();
    const seedConfig = { nodeName: 'seed', listenPort: ports[0], stateDir: seedDir };
    const seed = await cluster.start(seedConfig);
    const others = [
      await cluster.start({
        nodeName: 'a',
        listenPort: ports[1],
        stateDir: await cluster.stateDir(),
        peers: [`127.0.0.1:${ports[0]}`],
      }),
      await cluster.start({
        nodeName: 'b',
        listenPort: ports[2],
        stateDir: await cluster.stateDir(),
        peers: [`127.0.0.1:${ports[0]}`],
      }),
    ];
    await waitFor('convergence', () => fullyConverged(cluster.nodes), 5_000);
    for (const node of others) {
      await waitFor('rtt', () => node.peers().every((peer) => peer.rttMs !== undefined), 3_000);
    }
    const seedPeerId = seed.peerId;

    const events: string[][] = [];
    others[0]?.on('topology-changed', (peers) => events.push(peers.map((p) => `${p.name}:${p.state}`)));

    await seed.stop();
    const stoppedAt = performance.now();
    for (const node of others) {
      await waitFor('seed unreachable', () => stateOf(node.peers(), 'seed') === 'unreachable', 3_000);
    }
    const detectedMs = performance.now() - stoppedAt;
    console.log(
      `seed marked unreachable after ${detectedMs.toFixed(0)} ms (timeout ${fastTimings.peerTimeoutMs} ms)`,
    );
    expect(detectedMs).toBeGreaterThan(fastTimings.peerTimeoutMs - fastTimings.heartbeatIntervalMs - 100);
    expect(events.at(-1)).toContain('seed:unreachable');
    // The surviving pair keeps its own connection and stays reachable.
    expect(stateOf(others[0]?.peers() ?? [], 'b')).toBe('reachable');

    const toSeed = others[0]?.connections().find((c) => c.address === `/ip4/127.0.0.1/tcp/${ports[0]}`);
    expect(toSeed?.state).toMatch(/retrying|connecting/);
    if (toSeed?.state === 'retrying') {
      expect(toSeed.lastError).toBeTruthy();
      expect(toSeed.nextRetryAtMs).toBeGreaterThan(Date.now() - 1_000);
    }

    const restarted = await cluster.start(seedConfig);
    expect(restarted.peerId).toBe(seedPeerId);
    const backMs = await waitFor(
      'restarted seed reachable',
      () =>
        others.every((node) => stateOf(node.peers(), 'seed') === 'reachable') &&
        fullyConverged([restarted, ...others]),
      5_000,
    );
    console.log(`restarted seed reachable again after ${backMs.toFixed(0)} ms`);
    expect(events.at(-1)).toContain('seed:reachable');
    const seedView = others[0]?.peers().find((peer) => peer.name === 'seed');
    expect(seedView?.peerId).toBe(seedPeerId);
    await waitFor(
      'connection to the restarted seed',
      () => others[0]?.connections().some((c) => c.peerName === 'seed' && c.state === 'established') ?? false,
      3_000,
    );
  });
});

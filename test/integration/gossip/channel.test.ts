import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GossipNode, TopicChannel } from '../../../src/gossip/index.js';
import { ChannelRequestError } from '../../../src/gossip/index.js';
import { fastTimings, freePorts, fullyConverged, TestCluster, waitFor } from './cluster.js';

const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes);
const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);

describe('gossip channel over a 5-node cluster', () => {
  const cluster = new TestCluster();
  let nodes: GossipNode[];
  let channels: TopicChannel[];

  beforeAll(async () => {
    const ports = await freePorts(5);
    for (let i = 0; i < 5; i++) {
      const node = await cluster.start({
        nodeName: `node-${i}`,
        listenPort: ports[i],
        stateDir: await cluster.stateDir(),
        peers: i === 0 ? [] : [`127.0.0.1:${ports[0]}`],
      });
      // A channel asked for twice is the same channel (created here on some nodes, below on all).
      if (i % 2 === 0) node.channel('ipam');
    }
    nodes = cluster.nodes;
    channels = nodes.map((node) => node.channel('ipam'));
    await waitFor('convergence', () => fullyConverged(nodes), 5_000);
  });
  afterAll(() => cluster.stopAll());

  it('delivers a broadcast to every other node with the sender name', async () => {
    const received = nodes.map(() => [] as string[]);
    channels.forEach((channel, i) => {
      channel.onBroadcast((from, payload) => received[i]?.push(`${from}:${text(payload)}`));
    });
    // Subscriptions to the channel topic travel separately from topology records; let them settle.
    await waitFor(
      'every node to see broadcasts',
      () => {
        void channels[3]?.broadcast(bytes('probe'));
        return received.every((messages, i) => i === 3 || messages.includes('node-3:probe'));
      },
      5_000,
    );
    await channels[0]?.broadcast(bytes('hello'));
    await waitFor(
      'broadcast delivery',
      () => received.every((m, i) => i === 0 || m.includes('node-0:hello')),
      3_000,
    );
    expect(received[0]).not.toContain('node-0:hello');
  });

  it('answers requests, including no answer and handler errors', async () => {
    channels[4]?.onRequest(async (from, payload) => {
      const request = text(payload);
      if (request === 'silent') return undefined;
      if (request === 'boom') throw new Error('handler exploded');
      return bytes(`${from} asked ${request}`);
    });
    expect(text(await channels[1]?.send('node-4', bytes('range?')))).toBe('node-1 asked range?');
    expect(await channels[2]?.send('node-4', bytes('silent'))).toBeUndefined();
    await expect(channels[2]?.send('node-4', bytes('boom'))).rejects.toMatchObject({
      code: 'handler-failed',
    });
    await expect(channels[4]?.send('node-1', bytes('x'))).rejects.toMatchObject({ code: 'no-handler' });
    await expect(channels[1]?.send('nobody', bytes('x'))).rejects.toBeInstanceOf(ChannelRequestError);
    const empty = await channels[3]?.send('node-4', new Uint8Array(0));
    expect(text(empty)).toBe('node-3 asked ');
  });

  it('enforces payload limits and the request timeout', async () => {
    const tooBig = new Uint8Array((nodes[0]?.config.channel.maxPayloadBytes ?? 0) + 1);
    await expect(channels[0]?.broadcast(tooBig)).rejects.toMatchObject({ code: 'too-large' });
    await expect(channels[0]?.send('node-4', tooBig)).rejects.toMatchObject({ code: 'too-large' });

    channels[2]?.onRequest(() => new Promise(() => {}));
    const started = performance.now();
    await expect(channels[0]?.send('node-2', bytes('wait'))).rejects.toMatchObject({ code: 'timeout' });
    const elapsedMs = performance.now() - started;
    expect(elapsedMs).toBeGreaterThanOrEqual(fastTimings.channel.requestTimeoutMs - 50);
    expect(elapsedMs).toBeLessThan(fastTimings.channel.requestTimeoutMs + 2_000);
  });

  it('carries a large (512 KiB) request and answer intact', async () => {
    const big = new Uint8Array(512 * 1024).map((_, i) => i % 251);
    channels[3]?.onRequest(async (_from, payload) => payload.slice().reverse());
    const answer = await channels[0]?.send('node-3', big);
    expect(answer?.byteLength).toBe(big.byteLength);
    expect(answer?.[0]).toBe(big[big.length - 1]);
  });

  it('tells a subsystem when a neighbour joins the channel', async () => {
    const joined: string[] = [];
    channels[0]?.onPeerJoined((name) => joined.push(name));
    const [port] = await freePorts(1);
    const late = await cluster.start({
      nodeName: 'late',
      listenPort: port,
      stateDir: await cluster.stateDir(),
      peers: [`127.0.0.1:${nodes[0]?.config.listenPort}`],
    });
    late.channel('ipam');
    await waitFor('node-0 to see late join ipam', () => joined.includes('late'), 5_000);
  });
});

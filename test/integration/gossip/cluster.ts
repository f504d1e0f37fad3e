import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { GossipConfigInput } from '../../../src/gossip/config.js';
import { GossipNode } from '../../../src/gossip/index.js';

export const testLogger: Logger = pino({ level: process.env.WEFT_TEST_LOG ?? 'silent' });

/** Fast timings so that a test waits hundreds of milliseconds, not the production seconds. */
export const fastTimings = {
  heartbeatIntervalMs: 200,
  peerTimeoutMs: 1_200,
  pingIntervalMs: 1_000,
  dialTimeoutMs: 2_000,
  tieBreakGraceMs: 500,
  backoff: { initialMs: 100, maxMs: 500 },
  channel: { requestTimeoutMs: 4_000 },
  // All test nodes share 127.0.0.1: exempt it from libp2p's per-host inbound connection rate limit.
  connectionAllowList: ['/ip4/127.0.0.0/ipcidr/8'],
} satisfies Partial<GossipConfigInput>;

export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export class TestCluster {
  readonly nodes: GossipNode[] = [];
  private readonly dirs: string[] = [];

  async stateDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'weft-gossip-'));
    this.dirs.push(dir);
    return dir;
  }

  async start(config: GossipConfigInput): Promise<GossipNode> {
    const node = new GossipNode({ listenAddress: '127.0.0.1', ...fastTimings, ...config }, testLogger);
    this.nodes.push(node);
    await node.start();
    return node;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    await Promise.all(this.dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

export async function waitFor(what: string, predicate: () => boolean, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (!predicate()) {
    if (performance.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return performance.now() - started;
}

/** Every node knows every other by name, peer ID and address, and sees it reachable. */
export function fullyConverged(nodes: readonly GossipNode[]): boolean {
  return nodes.every((node) => {
    const peers = node.peers();
    return nodes.every(
      (other) =>
        other === node ||
        peers.some(
          (peer) =>
            peer.name === other.config.nodeName &&
            peer.peerId === other.peerId &&
            peer.underlayAddress === other.config.underlayAddress &&
            peer.gossipPort === other.config.listenPort &&
            peer.state === 'reachable',
        ),
    );
  });
}

// One weft agent reduced to its gossip node, for bench/gossip-convergence.ts. Started with fork(),
// configured by a JSON argument, and reporting to the parent over the IPC channel.
import '../src/util/polyfill.js';
import pino from 'pino';
import type { GossipConfigInput } from '../src/gossip/config.js';
import { GossipNode } from '../src/gossip/index.js';

export type AgentReport =
  | { type: 'started'; peerId: string; atMs: number }
  | { type: 'peers'; reachable: number; known: number; atMs: number }
  | { type: 'stats'; connections: number; droppedRecords: Record<string, number>; heapUsedMb: number };

const config = JSON.parse(process.argv[2] ?? '{}') as GossipConfigInput;
const logger = pino({ level: process.env.WEFT_BENCH_LOG ?? 'warn' });
const node = new GossipNode(config, logger);
const report = (message: AgentReport) => process.send?.(message);

node.on('topology-changed', (peers) => {
  report({
    type: 'peers',
    reachable: peers.filter((peer) => peer.state === 'reachable').length,
    known: peers.length,
    atMs: Date.now(),
  });
});

process.on('message', (message: { type: string }) => {
  if (message.type === 'stats') {
    report({
      type: 'stats',
      connections: node.connections().filter((c) => c.state === 'established').length,
      droppedRecords: node.droppedRecords(),
      heapUsedMb: process.memoryUsage().heapUsed / 2 ** 20,
    });
  }
});

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  await node.stop();
  process.disconnect?.();
};
process.on('SIGTERM', () => void shutdown());
process.on('disconnect', () => void shutdown());

await node.start();
report({ type: 'started', peerId: node.peerId, atMs: Date.now() });

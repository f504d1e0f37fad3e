import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RmpeerResult } from '../../../src/ipam/index.js';
import { ipamStatePath } from '../../../src/ipam/persistence.js';
import { joinRegistry } from '../../../src/k8s/kube-startup.js';
import { NodeWatcher } from '../../../src/k8s/node-watcher.js';
import {
  emptyRegistry,
  parseRegistry,
  type Registry,
  RegistryFormatError,
  registryData,
  withPeer,
} from '../../../src/k8s/peer-registry.js';
import { Reclaimer, type ReclaimTarget } from '../../../src/k8s/reclaimer.js';
import { DEFAULT_REGISTRY_NAME, RegistryStore } from '../../../src/k8s/registry-store.js';
import { waitFor } from '../../helpers/agent.js';
import { quietLog, startStandin } from './standin-fixture.js';

// Reclaim against the Kubernetes API stand-in (test/helpers/kube-api-standin.ts says why no real API
// server can run here). Each "agent" below has its own API client, Node watcher and registry store, as
// separate processes would; only the IPAM rmpeer is replaced by a recorder.
const NS = 'kube-system';
let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

type Standin = Awaited<ReturnType<typeof startStandin>>;

interface FakeAgent {
  name: string;
  reclaimer: Reclaimer;
  rmpeerCalls: string[];
  /** rmpeer calls that never return (the agent "crashed" inside rmpeer). */
  hang: boolean;
}

async function fakeAgent(standin: Standin, name: string, leaseMs: number, hang = false): Promise<FakeAgent> {
  const { core } = await standin.connect();
  const watcher = new NodeWatcher(core, quietLog);
  await watcher.start();
  const agent: FakeAgent = { name, rmpeerCalls: [], hang, reclaimer: undefined as never };
  const target: ReclaimTarget = {
    rmpeer: (peer) => {
      agent.rmpeerCalls.push(peer);
      if (agent.hang) return new Promise<RmpeerResult>(() => {});
      return Promise.resolve({
        ok: true,
        peer,
        cidrs: [`10.40.${agent.name.slice(1)}.0/24`],
        addresses: 256,
      });
    },
    isReachable: () => false,
  };
  agent.reclaimer = new Reclaimer({
    self: name,
    store: new RegistryStore(core, NS, DEFAULT_REGISTRY_NAME, quietLog),
    nodes: watcher,
    target,
    log: quietLog,
    leaseMs,
    jitterMs: 200,
  });
  cleanup.push(async () => {
    if (!agent.hang) await agent.reclaimer.stop();
    await watcher.stop();
  });
  return agent;
}

function members(names: string[]): Record<string, string> {
  let registry: Registry = { ...emptyRegistry, seeds: names };
  for (const name of names)
    registry = withPeer(registry, name, { state: 'member', since: '2026-01-01T00:00:00Z' });
  return registryData(registry);
}

function registryOf(standin: Standin) {
  return parseRegistry(standin.api.configMap(NS, DEFAULT_REGISTRY_NAME)?.data as Record<string, string>);
}

async function cluster(names: string[]): Promise<Standin> {
  const standin = await startStandin();
  cleanup.push(standin.close);
  names.forEach((name, i) => {
    standin.api.addNode(name, `10.0.0.${i + 1}`);
  });
  standin.api.putConfigMapData(NS, DEFAULT_REGISTRY_NAME, members(names));
  return standin;
}

describe('reclaim of a deleted node’s ranges', () => {
  it('three agents see the deletion at once: their claims collide and exactly one runs rmpeer', async () => {
    const standin = await cluster(['n1', 'n2', 'n3', 'n4']);
    const agents = await Promise.all(['n1', 'n2', 'n3'].map((n) => fakeAgent(standin, n, 10_000)));
    for (const agent of agents) agent.reclaimer.start();
    await waitFor(
      () => standin.api.log.filter((l) => l.includes('/configmaps/')).length >= 3,
      5_000,
      'no start pass',
    );
    // Line the three up: their registry reads are held until all three arrived, so all three decide
    // on the same resourceVersion and all three try to write a claim.
    const barrier = standin.api.gate(
      (r) => r.method === 'GET' && r.path.endsWith(`/configmaps/${DEFAULT_REGISTRY_NAME}`),
      3,
    );
    const conflictsBefore = standin.api.counters.conflicts;
    standin.api.deleteNode('n4');
    await waitFor(
      () => registryOf(standin).peers.get('n4')?.state === 'reclaimed',
      10_000,
      'n4 never reclaimed',
    );
    barrier.release();

    const calls = agents.flatMap((a) => a.rmpeerCalls.map((peer) => `${a.name}:${peer}`));
    expect(calls).toHaveLength(1);
    const winner = (calls[0] as string).split(':')[0];
    expect(registryOf(standin).peers.get('n4')).toMatchObject({ state: 'reclaimed', by: winner });
    // The race really happened: the losers' writes were refused with 409.
    expect(standin.api.counters.conflicts - conflictsBefore).toBeGreaterThanOrEqual(2);
    // A later pass (e.g. the periodic one) does not reclaim again.
    await Promise.all(agents.map((a) => a.reclaimer.pass()));
    expect(agents.flatMap((a) => a.rmpeerCalls)).toHaveLength(1);
  });

  it('a holder that crashes inside rmpeer leaves a claim that another agent takes over after a lease', async () => {
    const standin = await cluster(['n1', 'n2', 'n3']);
    const crashing = await fakeAgent(standin, 'n1', 1_500, true);
    crashing.reclaimer.start();
    standin.api.deleteNode('n3');
    await waitFor(() => crashing.rmpeerCalls.length === 1, 5_000, 'n1 never claimed');
    expect(registryOf(standin).peers.get('n3')).toMatchObject({
      state: 'reclaiming',
      holder: 'n1',
      attempt: 1,
    });

    // n2 starts now; n1 is frozen for good (its rmpeer never returns, it renews nothing).
    const survivor = await fakeAgent(standin, 'n2', 1_500);
    const startedAt = Date.now();
    survivor.reclaimer.start();
    await waitFor(
      () => registryOf(standin).peers.get('n3')?.state === 'reclaimed',
      10_000,
      'nobody finished',
    );
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_500);
    expect(survivor.rmpeerCalls).toEqual(['n3']);
    expect(registryOf(standin).peers.get('n3')).toMatchObject({ state: 'reclaimed', by: 'n2' });
  });

  it('a live holder that is slow is not overtaken: renewals keep its claim fresh', async () => {
    const standin = await cluster(['n1', 'n2', 'n3']);
    const holder = await fakeAgent(standin, 'n1', 1_500);
    // The dead node still answers gossip for a while (peer timeout not reached): the holder waits.
    let reachable = true;
    (holder.reclaimer as unknown as { options: { target: ReclaimTarget } }).options.target.isReachable = () =>
      reachable;
    holder.reclaimer.start();
    standin.api.deleteNode('n3');
    await waitFor(() => registryOf(standin).peers.get('n3')?.state === 'reclaiming', 5_000, 'no claim');
    const other = await fakeAgent(standin, 'n2', 1_500);
    other.reclaimer.start();
    await new Promise((r) => setTimeout(r, 4_000));
    expect(registryOf(standin).peers.get('n3')).toMatchObject({
      state: 'reclaiming',
      holder: 'n1',
      attempt: 1,
    });
    reachable = false;
    await waitFor(() => registryOf(standin).peers.get('n3')?.state === 'reclaimed', 5_000, 'never finished');
    expect(holder.rmpeerCalls).toEqual(['n3']);
    expect(other.rmpeerCalls).toEqual([]);
  });

  it('a restarted holder finishes its own claim at once', async () => {
    const standin = await cluster(['n1', 'n2', 'n3']);
    standin.api.deleteNode('n3');
    const data = registryData(
      withPeer(registryOf(standin), 'n3', {
        state: 'reclaiming',
        holder: 'n1',
        attempt: 1,
        renewedAt: new Date().toISOString(),
      }),
    );
    standin.api.putConfigMapData(NS, DEFAULT_REGISTRY_NAME, data);
    const restarted = await fakeAgent(standin, 'n1', 60_000);
    const other = await fakeAgent(standin, 'n2', 60_000);
    other.reclaimer.start();
    restarted.reclaimer.start();
    await waitFor(() => registryOf(standin).peers.get('n3')?.state === 'reclaimed', 5_000, 'not finished');
    expect(restarted.rmpeerCalls).toEqual(['n3']);
    expect(other.rmpeerCalls).toEqual([]);
  });
});

describe('joining the registry', () => {
  it('a reclaimed node moves its old IPAM state aside and registers again; the seed list is written once', async () => {
    const standin = await cluster(['n1', 'n2']);
    const { core } = await standin.connect();
    const store = new RegistryStore(core, NS, DEFAULT_REGISTRY_NAME, quietLog);
    standin.api.putConfigMapData(
      NS,
      DEFAULT_REGISTRY_NAME,
      registryData(
        withPeer(registryOf(standin), 'n2', {
          state: 'reclaimed',
          by: 'n1',
          at: 'x',
          cidrs: ['10.32.0.0/13'],
        }),
      ),
    );
    const stateDir = join(standin.dir, 'n2');
    mkdirSync(stateDir);
    writeFileSync(ipamStatePath(stateDir), '{"old":"state"}');
    const { seeds } = await joinRegistry({
      self: 'n2',
      store,
      nodeNames: () => ['n1', 'n2', 'n9'],
      stateDir,
      leaseMs: 1_000,
      log: quietLog,
    });
    expect(seeds).toEqual(['n1', 'n2']); // written before, not replaced by this node's view
    expect(existsSync(ipamStatePath(stateDir))).toBe(false);
    expect(readdirSync(stateDir).some((f) => f.startsWith('ipam-state.json.reclaimed-'))).toBe(true);
    expect(registryOf(standin).peers.get('n2')).toMatchObject({ state: 'member' });
  });

  it('concurrent first agents agree on one seed list, whatever Node list each saw', async () => {
    const standin = await startStandin();
    cleanup.push(standin.close);
    const views = [['a'], ['a', 'b'], ['a', 'b', 'c']];
    const results = await Promise.all(
      ['a', 'b', 'c'].map(async (self, i) =>
        joinRegistry({
          self,
          store: new RegistryStore((await standin.connect()).core, NS, DEFAULT_REGISTRY_NAME, quietLog),
          nodeNames: () => views[i] as string[],
          stateDir: join(standin.dir, self),
          leaseMs: 1_000,
          log: quietLog,
        }),
      ),
    );
    const lists = results.map((r) => r.seeds.join(','));
    expect(new Set(lists).size).toBe(1);
    expect([...registryOf(standin).peers.keys()].sort()).toEqual(['a', 'b', 'c']);
  });

  it('waits while a live agent is reclaiming this node, then starts afresh', async () => {
    const standin = await cluster(['n1', 'n2']);
    const claim = () =>
      registryData(
        withPeer(registryOf(standin), 'n2', {
          state: 'reclaiming',
          holder: 'n1',
          attempt: 1,
          renewedAt: new Date().toISOString(),
        }),
      );
    standin.api.putConfigMapData(NS, DEFAULT_REGISTRY_NAME, claim());
    let done = false;
    const joining = joinRegistry({
      self: 'n2',
      store: new RegistryStore((await standin.connect()).core, NS, DEFAULT_REGISTRY_NAME, quietLog),
      nodeNames: () => ['n1', 'n2'],
      stateDir: join(standin.dir, 'n2'),
      leaseMs: 2_000,
      pollMs: 100,
      log: quietLog,
    }).then(() => {
      done = true;
    });
    // The holder renews: the joiner keeps waiting past a lease.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 500));
      standin.api.putConfigMapData(NS, DEFAULT_REGISTRY_NAME, claim());
    }
    expect(done).toBe(false);
    standin.api.putConfigMapData(
      NS,
      DEFAULT_REGISTRY_NAME,
      registryData(withPeer(registryOf(standin), 'n2', { state: 'reclaimed', by: 'n1', at: 'x', cidrs: [] })),
    );
    await joining;
    expect(registryOf(standin).peers.get('n2')).toMatchObject({ state: 'member' });
  });

  it('a malformed registry is an error naming the key, never guessed at', () => {
    expect(() => parseRegistry({ 'peer.n1': '{"state":"gone"}' })).toThrow(RegistryFormatError);
    expect(() => parseRegistry({ seeds: 'n1,n2' })).toThrow(/key seeds/);
    expect(() => parseRegistry({ 'peer.N_1': '{"state":"member","since":"x"}' })).toThrow(/not a node name/);
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { IpamDriver } from '../../../src/control/ipam-driver.js';
import { bridgeLayout, deriveRoutes } from '../../../src/control/routes.js';
import { RouteTable } from '../../../src/dataplane/route-table.js';
import type { GossipChannel } from '../../../src/gossip/channel.js';
import { MemoryChannelHub } from '../../../src/gossip/fake/memory-channel.js';
import { IpamNode, type IpamSnapshot, loadIpamState, saveIpamState } from '../../../src/ipam/index.js';
import { waitFor } from '../../helpers/agent.js';

const log = pino({ level: 'silent' });
const CLUSTER = '10.32.0.0/12';

interface Harness {
  drivers: Map<string, IpamDriver>;
  events: string[];
  /** Request/response exchanges: who asked whom, with which IPAM message type. */
  requests: Array<{ from: string; to: string; type: unknown }>;
  /** Broadcasts: who sent which IPAM message type (and to whom, when addressed). */
  broadcasts: Array<{ from: string; type: unknown; to: unknown }>;
  saved: Map<string, IpamSnapshot>;
  failSaves: Set<string>;
  /** Whether the channels report direct connections between the nodes. */
  connected: boolean;
}

/** Records the order of saves and sends, so the test can check that no send precedes its save. */
function recordingChannel(name: string, channel: GossipChannel, harness: Harness): GossipChannel {
  return {
    broadcast: async (payload) => {
      harness.events.push(`${name}:send`);
      const { type, to } = JSON.parse(new TextDecoder().decode(payload));
      harness.broadcasts.push({ from: name, type, to });
      await channel.broadcast(payload);
    },
    send: async (to, payload) => {
      harness.events.push(`${name}:send`);
      harness.requests.push({ from: name, to, type: JSON.parse(new TextDecoder().decode(payload)).type });
      return channel.send(to, payload);
    },
    onBroadcast: (handler) => channel.onBroadcast(handler),
    onRequest: (handler) => channel.onRequest(handler),
    isConnected: (peer) => harness.connected && channel.isConnected(peer),
  };
}

function cluster(names: string[], seeds: string[] = names): Harness {
  const hub = new MemoryChannelHub();
  const harness: Harness = {
    drivers: new Map(),
    events: [],
    requests: [],
    broadcasts: [],
    saved: new Map(),
    failSaves: new Set(),
    connected: true,
  };
  for (const name of names) {
    const ipam = IpamNode.create({
      peer: name,
      clusterRange: CLUSTER,
      seeding: { kind: 'seeds', seeds },
    });
    const driver = new IpamDriver({
      ipam,
      channel: recordingChannel(name, hub.join(name), harness),
      stateDir: `/nonexistent/${name}`,
      log,
      tickIntervalMs: 20,
      save: async (_dir, snapshot) => {
        await new Promise((r) => setTimeout(r, 1));
        if (harness.failSaves.has(name)) throw new Error('disk full');
        harness.saved.set(name, snapshot);
        harness.events.push(`${name}:saved`);
      },
    });
    harness.drivers.set(name, driver);
  }
  return harness;
}

const until = (condition: () => boolean) => waitFor(condition, 5_000, 'condition not reached', 10);

let running: IpamDriver[] = [];
afterEach(async () => {
  for (const driver of running) await driver.stop();
  running = [];
});

function start(harness: Harness): IpamDriver[] {
  const drivers = [...harness.drivers.values()];
  for (const d of drivers) d.start();
  running.push(...drivers);
  return drivers;
}

describe('IpamDriver', () => {
  it('seeds a three-node ring over the channel and allocates distinct addresses', async () => {
    const harness = cluster(['a', 'b', 'c']);
    const drivers = start(harness);
    await Promise.all(drivers.map((d) => d.setKnownPeers(['a', 'b', 'c'])));
    await until(() => drivers.every((d) => d.node.ring !== null));
    const results = await Promise.all(drivers.map((d) => d.allocate('pod-1')));
    const addresses = results.map((r) => (r.ok ? r.address : r.message));
    expect(new Set(addresses).size).toBe(3);
    expect(addresses.every((a) => a.startsWith('10.'))).toBe(true);
  });

  it('asks a donor for space by request/response; without direct connections, all else travels by gossip', async () => {
    const harness = cluster(['a', 'b'], ['a']);
    harness.connected = false;
    const [a, b] = start(harness) as [IpamDriver, IpamDriver];
    await Promise.all([a, b].map((d) => d.setKnownPeers(['a', 'b'])));
    await until(() => b.node.ring !== null);
    let allocated = await b.allocate('pod-b');
    const deadline = Date.now() + 5000;
    while (!allocated.ok && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      allocated = await b.allocate('pod-b');
    }
    expect(allocated.ok).toBe(true);
    expect(harness.requests).toContainEqual({ from: 'b', to: 'a', type: 'space-request' });
    expect(harness.requests.filter((r) => r.type !== 'space-request')).toEqual([]);
  });

  it('sends a message for one directly connected peer over a request, and broadcasts announcements', async () => {
    const harness = cluster(['a', 'b'], ['a']);
    const [a, b] = start(harness) as [IpamDriver, IpamDriver];
    await Promise.all([a, b].map((d) => d.setKnownPeers(['a', 'b'])));
    await until(() => b.node.ring !== null);
    // b asked a for the ring (a message for a alone) and a answered b alone: both direct.
    expect(harness.requests).toContainEqual({ from: 'b', to: 'a', type: 'ring-request' });
    expect(harness.requests).toContainEqual({ from: 'a', to: 'b', type: 'ring' });
    expect(harness.broadcasts.filter((m) => m.to !== undefined)).toEqual([]);
    // The seeded ring itself is announced to everyone.
    expect(harness.broadcasts).toContainEqual({ from: 'a', type: 'ring', to: undefined });
    // Counted once the request settles, which may be just after b has the ring.
    await until(() => a.counters.sentDirect > 0);
  });

  it('saves state before any message derived from it is sent', async () => {
    const harness = cluster(['a', 'b']);
    const drivers = start(harness);
    await Promise.all(drivers.map((d) => d.setKnownPeers(['a', 'b'])));
    await until(() => drivers.every((d) => d.node.ring !== null));
    for (const name of ['a', 'b']) {
      const own = harness.events.filter((e) => e.startsWith(`${name}:`));
      expect(own.length).toBeGreaterThan(1);
      // The first thing a node does that others can see is preceded by a save.
      expect(own[0]).toBe(`${name}:saved`);
    }
  });

  it('resolves an allocation only once it is saved, and holds back messages when saving fails', async () => {
    const harness = cluster(['a', 'b']);
    const [a] = start(harness) as [IpamDriver, IpamDriver];
    await Promise.all([...harness.drivers.values()].map((d) => d.setKnownPeers(['a', 'b'])));
    await until(() => [...harness.drivers.values()].every((d) => d.node.ring !== null));

    const result = await a.allocate('pod-x');
    expect(result.ok).toBe(true);
    const saved = harness.saved.get('a');
    expect(saved && JSON.stringify(saved)).toContain('pod-x');

    // rmpeer changes the ring (a save) and broadcasts it (a message): with saving broken, the
    // change must stay on the node; once saving works, the held-back message goes out.
    harness.failSaves.add('a');
    const sendsBefore = harness.events.filter((e) => e === 'a:send').length;
    await expect(a.rmpeer('b', { allowReachable: true })).rejects.toThrow(/disk full/);
    expect(harness.events.filter((e) => e === 'a:send').length).toBe(sendsBefore);

    harness.failSaves.delete('a');
    await a.apply(() => undefined);
    const after = harness.events.slice(harness.events.lastIndexOf('a:saved'));
    expect(after).toContain('a:send');
    expect(harness.saved.get('a') && JSON.stringify(harness.saved.get('a'))).not.toContain('"peer":"b"');
  });

  it('saves a burst of concurrent allocations once (group commit), each durable when it resolves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-ipam-driver-'));
    try {
      const config = { peer: 'a', clusterRange: CLUSTER, seeding: { kind: 'seeds', seeds: ['a'] } } as const;
      let saves = 0;
      const driver = new IpamDriver({
        ipam: IpamNode.create(config),
        channel: new MemoryChannelHub().join('a'),
        stateDir: dir,
        log,
        save: (d, snapshot) => {
          saves++;
          return saveIpamState(d, snapshot);
        },
      });
      await driver.apply(() => undefined);
      const before = saves;
      const ids = Array.from({ length: 50 }, (_, i) => `pod-${i}`);
      const results = await Promise.all(ids.map((id) => driver.allocate(id)));
      expect(results.every((r) => r.ok)).toBe(true);
      expect(saves - before).toBe(1);
      // A crash now (no stop, no further save) loses nothing that was reported allocated.
      const restored = IpamNode.restore(config, (await loadIpamState(dir, config)) as IpamSnapshot);
      for (const [i, id] of ids.entries()) {
        const result = results[i];
        expect(restored.addressOf(id)).toBe(result?.ok ? result.address : 'not allocated');
      }

      // Allocations arriving while a save runs share the next one.
      const first = driver.allocate('late-0');
      await new Promise((r) => setImmediate(r));
      const rest = Array.from({ length: 10 }, (_, i) => driver.allocate(`late-${i + 1}`));
      const savesBefore = saves;
      await Promise.all([first, ...rest]);
      expect(saves - savesBefore).toBe(1);
      const reloaded = IpamNode.restore(config, (await loadIpamState(dir, config)) as IpamSnapshot);
      expect(reloaded.addressOf('late-10')).toBeDefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails exactly the allocations a failed save carried; later ones are saved by the next', async () => {
    let failNext = false;
    const saved: IpamSnapshot[] = [];
    const driver = new IpamDriver({
      ipam: IpamNode.create({ peer: 'a', clusterRange: CLUSTER, seeding: { kind: 'seeds', seeds: ['a'] } }),
      channel: new MemoryChannelHub().join('a'),
      stateDir: '/nonexistent',
      log,
      save: async (_dir, snapshot) => {
        await new Promise((r) => setTimeout(r, 5));
        if (failNext) {
          failNext = false;
          throw new Error('disk full');
        }
        saved.push(snapshot);
      },
    });
    await driver.apply(() => undefined);
    failNext = true;
    const carried = [driver.allocate('pod-1'), driver.allocate('pod-2')];
    await new Promise((r) => setImmediate(r));
    // Arrives while the failing save runs: carried by the next save, which succeeds.
    const next = driver.allocate('pod-3');
    for (const p of carried) await expect(p).rejects.toThrow('disk full');
    const result = await next;
    expect(result.ok).toBe(true);
    const last = JSON.stringify(saved.at(-1)?.allocations);
    expect(last).toContain('pod-3');
    // The failed batch's changes stay in memory and reach the disk with that next save.
    expect(last).toContain('pod-1');
  });

  it('drops invalid messages, counting them', async () => {
    const hub = new MemoryChannelHub();
    const ipam = IpamNode.create({ peer: 'a', clusterRange: CLUSTER, seeding: { kind: 'observer' } });
    const driver = new IpamDriver({
      ipam,
      channel: hub.join('a'),
      stateDir: '/x',
      log,
      save: async () => {},
    });
    driver.start();
    running.push(driver);
    const stranger = hub.join('z');
    await stranger.broadcast(new TextEncoder().encode('{"type":"ring","v":99}'));
    await stranger.broadcast(new TextEncoder().encode('not json'));
    await until(() => driver.counters.rejected === 2);
    expect(driver.counters.received).toBe(0);
  });
});

describe('route derivation', () => {
  it('maps ring owners to underlay addresses, local ranges apart, unknown owners listed', async () => {
    const harness = cluster(['a', 'b', 'c']);
    const drivers = start(harness);
    await Promise.all(drivers.map((d) => d.setKnownPeers(['a', 'b', 'c'])));
    await until(() => drivers.every((d) => d.node.ring !== null));
    const ring = (drivers[0] as IpamDriver).node.ring;
    const derived = deriveRoutes('a', ring, [
      { name: 'b', underlayAddress: '192.168.0.2', dataPort: 4790, features: ['partial-csum'] },
    ]);
    expect(derived.unroutable).toEqual(['c']);
    expect(derived.spec.peers.map((p) => p.name)).toEqual(['b']);
    // b announced partial checksums: the data plane may leave inner checksums to it.
    expect(derived.spec.peers.map((p) => p.partialChecksums)).toEqual([true]);
    const older = deriveRoutes('a', ring, [{ name: 'b', underlayAddress: '192.168.0.2', dataPort: 4790 }]);
    expect(older.spec.peers.map((p) => p.partialChecksums)).toEqual([false]);
    expect(derived.spec.localCidrs.length).toBeGreaterThan(0);
    // The result is a valid, non-overlapping table.
    const table = RouteTable.build(derived.spec);
    expect(table.peerCount).toBe(1);
  });

  it('puts the gateway on the bridge with its block prefix and routes the other blocks', () => {
    expect(bridgeLayout(['10.32.0.0/14', '10.40.0.0/16'], '10.32.0.1')).toEqual({
      gatewayCidr: '10.32.0.1/14',
      extraCidrs: ['10.40.0.0/16'],
    });
    expect(bridgeLayout(['10.32.0.0/14'], undefined)).toBeUndefined();
    expect(bridgeLayout(['10.32.0.0/14'], '10.99.0.1')).toBeUndefined();
  });
});

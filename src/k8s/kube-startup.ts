import { rename } from 'node:fs/promises';
import { ipamStatePath } from '../ipam/persistence.js';
import type { Logger } from '../util/log.js';
import { ClaimObserver } from './claim-observer.js';
import { type PeerRecord, recordKey, withPeer } from './peer-registry.js';
import type { RegistryStore } from './registry-store.js';

export interface JoinOptions {
  self: string;
  store: RegistryStore;
  /** Node names now (the watcher's synced list). */
  nodeNames: () => string[];
  stateDir: string;
  leaseMs: number;
  log: Logger;
  pollMs?: number;
  now?: () => number;
}

/**
 * Registers this node in the peer registry before its IPAM state is loaded, and returns the seed list.
 * - If the node was reclaimed (its tombstone is there) or a reclaim of it is in progress, its IPAM state
 *   is moved aside first: the ranges it remembers now belong to another node (Weave's launch.sh did the
 *   same with its DB). A claim held by a live agent is waited for; a stale one is not.
 * - The seed list is written once, by the first agent, from the Node list it sees (this node always
 *   included). The API server orders the writes, so every agent gets the same list however the nodes
 *   join, and every seed builds the same first ring (IPAM seeds mode).
 */
export async function joinRegistry(options: JoinOptions): Promise<{ seeds: string[] }> {
  const { self, store, log } = options;
  const observer = new ClaimObserver(options.leaseMs, options.now);
  let discarded = false;
  for (;;) {
    const { registry } = await store.read();
    const seen = registry.peers.get(self);
    if (seen?.state === 'reclaiming' && !observer.isStale(self, seen)) {
      log.info({ holder: seen.holder }, 'this node is being reclaimed; waiting for that to finish');
      await sleep(options.pollMs ?? 1_000);
      continue;
    }
    if (!discarded && (seen?.state === 'reclaiming' || seen?.state === 'reclaimed')) {
      await discardIpamState(options.stateDir, seen, log);
      discarded = true;
    }
    let raced = false;
    const { registry: written } = await store.update((current) => {
      const record = current.peers.get(self);
      if (recordKey(record) !== recordKey(seen)) {
        raced = true;
        return null;
      }
      const seeds = current.seeds ?? [...new Set([...options.nodeNames(), self])].sort();
      if (record?.state === 'member' && current.seeds !== null) return null;
      const next = record?.state === 'member' ? current : withPeer(current, self, memberSince());
      return { ...next, seeds };
    });
    if (raced) continue;
    return { seeds: [...(written.seeds ?? [])] };
  }
}

function memberSince(): PeerRecord {
  return { state: 'member', since: new Date().toISOString() };
}

async function discardIpamState(stateDir: string, record: PeerRecord, log: Logger): Promise<void> {
  const path = ipamStatePath(stateDir);
  const aside = `${path}.reclaimed-${Date.now()}`;
  try {
    await rename(path, aside);
    log.warn(
      { record, movedTo: aside },
      'this node was removed and its IP ranges reclaimed: starting with fresh IPAM state',
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelayMs } from '../gossip/backoff.js';
import type { Logger } from '../util/log.js';
import type { KubeCore } from './kube-core.js';
import { apiStatusOf } from './kube-errors.js';
import type { KubeNode } from './kube-objects.js';
import { type NodeInfo, nodeInfo } from './node-addresses.js';

type NodeWatcherEvents = {
  /** The node set or an address changed; the full current list. */
  changed: [nodes: NodeInfo[]];
  /** A Node object was deleted. */
  deleted: [name: string];
};

const RESTART_MIN_MS = 1_000;
const RESTART_MAX_MS = 30_000;
/** A watch that lasted this long (or delivered anything) was healthy: resume at once, reset the backoff. */
const HEALTHY_WATCH_MS = 1_000;

export interface NodeWatcherTiming {
  /** The watch's server-side timeout (default: 5–10 min at random). */
  watchTimeoutSeconds?: number;
  restartMinMs?: number;
  restartMaxMs?: number;
}

/**
 * The cluster's Node objects, kept current by list + watch: list, then watch from the list's
 * resourceVersion (BOOKMARKs move it on); a watch the server ends is resumed from there, one that
 * expired (410 Gone) lists again and reports what changed meanwhile, deletions included. Failures are
 * retried with capped backoff; the last known set stays in use meanwhile.
 */
export class NodeWatcher extends EventEmitter<NodeWatcherEvents> {
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private stopped = false;
  private synced = false;
  private readonly firstSync: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void };

  constructor(
    private readonly core: KubeCore,
    private readonly log: Logger,
    private readonly timing: NodeWatcherTiming = {},
  ) {
    super();
    let resolve = () => {};
    let reject = (_error: Error) => {};
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.firstSync = { promise, resolve, reject };
  }

  /** Starts list + watch; resolves once the first list is in (failures are retried meanwhile). */
  async start(): Promise<void> {
    this.running ??= this.run();
    await this.firstSync.promise;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.firstSync.promise.catch(() => undefined);
    this.firstSync.reject(new Error('Node watcher stopped'));
    this.abort.abort();
    await this.running;
  }

  /** True once a full list has been seen: before that, absence from the set means nothing. */
  get isSynced(): boolean {
    return this.synced;
  }

  has(name: string): boolean {
    return this.nodes.has(name);
  }

  list(): NodeInfo[] {
    return [...this.nodes.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  private async run(): Promise<void> {
    const minMs = this.timing.restartMinMs ?? RESTART_MIN_MS;
    const maxMs = this.timing.restartMaxMs ?? RESTART_MAX_MS;
    // Jittered, so that agents that lost the API server together do not retry in lockstep.
    const policy = { initialMs: minMs, maxMs, multiplier: 2, jitter: 0.5 };
    let failures = 0;
    let resourceVersion: string | undefined;
    while (!this.stopped) {
      let healthy = false;
      try {
        if (resourceVersion === undefined) {
          const list = await this.core.listNodes();
          this.replaceAll(list.items);
          resourceVersion = list.metadata.resourceVersion;
        }
        const watchedAt = performance.now();
        await this.core.watchNodes(
          resourceVersion,
          (event) => {
            healthy = true;
            if (event.type === 'BOOKMARK') {
              resourceVersion = event.resourceVersion;
              return;
            }
            resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
            if (event.type === 'DELETED') this.remove(event.object.metadata.name);
            else this.upsert(event.object);
          },
          { signal: this.abort.signal, timeoutSeconds: this.timing.watchTimeoutSeconds },
        );
        // The server ended the watch (its timeout): resume from where it got to.
        healthy ||= performance.now() - watchedAt >= HEALTHY_WATCH_MS;
      } catch (error) {
        if (this.stopped) return;
        if (apiStatusOf(error) === 410) {
          this.log.info({ resourceVersion }, 'Node watch expired (410 Gone); listing again');
          resourceVersion = undefined;
        } else {
          this.log.warn(
            { err: (error as Error).message, retryAfterFailures: healthy ? 0 : failures + 1 },
            'Node list/watch failed; retrying',
          );
        }
      }
      if (healthy) {
        failures = 0;
        continue;
      }
      await sleep(backoffDelayMs(failures++, policy), undefined, { signal: this.abort.signal }).catch(
        () => undefined,
      );
    }
  }

  /** A full list: reports nodes that went while nobody watched as deleted. */
  private replaceAll(items: readonly KubeNode[]): void {
    const fresh = new Map(items.map((node) => [node.metadata.name, nodeInfo(node)]));
    let changed = false;
    for (const name of [...this.nodes.keys()]) {
      if (fresh.has(name)) continue;
      this.nodes.delete(name);
      this.log.info({ node: name }, 'Node object deleted');
      this.emit('deleted', name);
      changed = true;
    }
    for (const [name, info] of fresh) {
      if (this.nodes.get(name)?.internalIPv4 !== info.internalIPv4 || !this.nodes.has(name)) changed = true;
      this.nodes.set(name, info);
    }
    if (!this.synced) {
      this.synced = true;
      this.firstSync.resolve();
    }
    if (changed) this.emit('changed', this.list());
  }

  private upsert(node: KubeNode): void {
    const info = nodeInfo(node);
    const before = this.nodes.get(info.name);
    this.nodes.set(info.name, info);
    if (before === undefined || before.internalIPv4 !== info.internalIPv4) this.emit('changed', this.list());
  }

  private remove(name: string): void {
    if (!this.nodes.delete(name)) return;
    this.log.info({ node: name }, 'Node object deleted');
    this.emit('deleted', name);
    this.emit('changed', this.list());
  }
}

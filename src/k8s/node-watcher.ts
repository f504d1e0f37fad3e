import { EventEmitter } from 'node:events';
import {
  type CoreV1Api,
  type Informer,
  type KubeConfig,
  makeInformer,
  type V1Node,
} from '@kubernetes/client-node';
import type { Logger } from '../util/log.js';
import { type NodeInfo, nodeInfo } from './node-addresses.js';

type NodeWatcherEvents = {
  /** The node set or an address changed; the full current list. */
  changed: [nodes: NodeInfo[]];
  /** A Node object was deleted. */
  deleted: [name: string];
};

const RESTART_MIN_MS = 1_000;
const RESTART_MAX_MS = 30_000;

/**
 * The cluster's Node objects, kept current by list + watch (an informer: it lists, then watches from
 * the list's resourceVersion, and lists again when the watch expires with 410 Gone). A failed list or
 * watch is retried with capped backoff; the last known set stays in use meanwhile.
 */
export class NodeWatcher extends EventEmitter<NodeWatcherEvents> {
  private readonly informer: Informer<V1Node>;
  private readonly nodes = new Map<string, NodeInfo>();
  private restartDelayMs = RESTART_MIN_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private synced = false;
  private readonly firstSync: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void };

  constructor(
    kubeConfig: KubeConfig,
    core: CoreV1Api,
    private readonly log: Logger,
  ) {
    super();
    let resolve = () => {};
    let reject = (_error: Error) => {};
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.firstSync = { promise, resolve, reject };
    this.informer = makeInformer(kubeConfig, '/api/v1/nodes', async () => {
      const list = await core.listNode();
      // The informer applies the list right after this resolves, in the same tick.
      setImmediate(() => {
        this.synced = true;
        this.firstSync.resolve();
      });
      return list;
    });
    this.informer.on('add', (node) => this.upsert(node));
    this.informer.on('update', (node) => this.upsert(node));
    this.informer.on('delete', (node) => this.remove(node));
    this.informer.on('connect', () => {
      this.restartDelayMs = RESTART_MIN_MS;
    });
    this.informer.on('error', (error) => this.onError(error));
  }

  /** Starts list + watch; resolves once the first list is in (failures are retried meanwhile). */
  async start(): Promise<void> {
    await this.informer.start();
    await this.firstSync.promise;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.firstSync.promise.catch(() => undefined);
    this.firstSync.reject(new Error('Node watcher stopped'));
    clearTimeout(this.restartTimer);
    await this.informer.stop();
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

  private upsert(node: V1Node): void {
    const info = nodeInfo(node);
    if (info === undefined) return;
    const before = this.nodes.get(info.name);
    this.nodes.set(info.name, info);
    if (before?.internalIPv4 !== info.internalIPv4 || before === undefined) this.emit('changed', this.list());
  }

  private remove(node: V1Node): void {
    const name = node.metadata?.name;
    if (name === undefined || !this.nodes.delete(name)) return;
    this.log.info({ node: name }, 'Node object deleted');
    this.emit('deleted', name);
    this.emit('changed', this.list());
  }

  private onError(error: unknown): void {
    if (this.stopped) return;
    this.log.warn(
      { err: (error as Error)?.message ?? String(error), retryInMs: this.restartDelayMs },
      'Node list/watch failed; retrying',
    );
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.informer.start().catch(() => undefined);
    }, this.restartDelayMs);
    this.restartDelayMs = Math.min(RESTART_MAX_MS, this.restartDelayMs * 2);
  }
}

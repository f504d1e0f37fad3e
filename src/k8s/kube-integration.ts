import type { PeerSource } from '../gossip/peer-source.js';
import type { SeedingMode } from '../ipam/index.js';
import type { Logger } from '../util/log.js';
import { connectToKube } from './kube-client.js';
import type { KubeCore } from './kube-core.js';
import { KubePeerSource } from './kube-peer-source.js';
import { joinRegistry } from './kube-startup.js';
import { NodeWatcher } from './node-watcher.js';
import { Reclaimer, type ReclaimTarget } from './reclaimer.js';
import { DEFAULT_REGISTRY_NAME, RegistryStore } from './registry-store.js';

export interface KubeOptions {
  nodeName: string;
  stateDir: string;
  gossipPort: number;
  /** A kubeconfig file; in-cluster configuration (service account) when absent. */
  kubeconfig: string | undefined;
  reclaimLeaseMs: number;
  /** An explicit --ipam-init; by default the seed list comes from the peer registry. */
  seeding: SeedingMode | undefined;
}

/**
 * `agent run --kube-peers`: Node objects are the peer list, the peer registry (a ConfigMap) decides the
 * seed list and who reclaims a deleted node. Must start before IPAM loads its state (see joinRegistry).
 */
export class KubeIntegration {
  private reclaimer: Reclaimer | undefined;

  private constructor(
    private readonly options: KubeOptions,
    private readonly core: KubeCore,
    private readonly watcher: NodeWatcher,
    private readonly store: RegistryStore,
    /** Plain consensus expects the Node count at start (Weave's way). */
    readonly seeding: SeedingMode,
    readonly peerSource: PeerSource,
    private readonly log: Logger,
  ) {}

  static async start(options: KubeOptions, parentLog: Logger): Promise<KubeIntegration> {
    const log = parentLog.child({ component: 'kube' });
    const connection = await connectToKube({ kubeconfig: options.kubeconfig });
    const watcher = new NodeWatcher(connection.core, log);
    const store = new RegistryStore(connection.core, connection.namespace, DEFAULT_REGISTRY_NAME, log);
    try {
      await watcher.start();
      const nodeNames = () => watcher.list().map((node) => node.name);
      const { seeds } = await joinRegistry({
        self: options.nodeName,
        store,
        nodeNames,
        stateDir: options.stateDir,
        leaseMs: options.reclaimLeaseMs,
        log,
      });
      let seeding: SeedingMode = options.seeding ?? { kind: 'seeds', seeds };
      if (seeding.kind === 'consensus' && seeding.expectedPeers === undefined) {
        seeding = { kind: 'consensus', expectedPeers: Math.max(1, nodeNames().length) };
      }
      log.info(
        { nodes: nodeNames().length, seeding, registry: `${connection.namespace}/${store.name}` },
        'Kubernetes peer discovery ready',
      );
      const peerSource = new KubePeerSource(watcher, {
        selfName: options.nodeName,
        gossipPort: options.gossipPort,
      });
      return new KubeIntegration(options, connection.core, watcher, store, seeding, peerSource, log);
    } catch (error) {
      await watcher.stop();
      connection.core.close();
      throw error;
    }
  }

  /** Starts reclaiming deleted nodes' ranges through the agent's IPAM. */
  startReclaim(target: ReclaimTarget): void {
    this.reclaimer = new Reclaimer({
      self: this.options.nodeName,
      store: this.store,
      nodes: this.watcher,
      target,
      log: this.log,
      leaseMs: this.options.reclaimLeaseMs,
    });
    this.reclaimer.start();
  }

  async stop(): Promise<void> {
    await this.reclaimer?.stop();
    await this.watcher.stop();
    this.core.close();
  }
}

import type { Logger } from '../util/log.js';
import type { KubeCore } from './kube-core.js';
import { apiStatusOf, KubeConflictError } from './kube-errors.js';
import type { KubeConfigMap } from './kube-objects.js';
import { emptyRegistry, parseRegistry, type Registry, registryData } from './peer-registry.js';

export const DEFAULT_REGISTRY_NAME = 'weft-peers';
const MAX_ATTEMPTS = 20;

export interface RegistryRead {
  readonly registry: Registry;
  readonly resourceVersion: string;
}

/**
 * The peer registry in a ConfigMap, changed by compare-and-swap: every write is a replace carrying the
 * resourceVersion it was computed from, so the API server refuses it (409 Conflict) if anyone wrote in
 * between. The change function then runs again on the fresh state, so a decision (e.g. "nobody holds
 * this claim, take it") is always made on the state it is written over.
 */
export class RegistryStore {
  constructor(
    private readonly core: KubeCore,
    readonly namespace: string,
    readonly name: string,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  async read(): Promise<RegistryRead> {
    let map: KubeConfigMap;
    try {
      map = await this.core.readConfigMap(this.namespace, this.name);
    } catch (error) {
      if (apiStatusOf(error) !== 404) throw error;
      map = await this.create();
    }
    return { registry: parseRegistry(map.data), resourceVersion: map.metadata.resourceVersion ?? '' };
  }

  /**
   * Applies `change` (return null to write nothing) until the write lands without a conflict.
   * Returns the registry as written or as read, and whether this call wrote it.
   */
  async update(
    change: (current: Registry) => Registry | null,
  ): Promise<{ registry: Registry; wrote: boolean }> {
    for (let attempt = 1; ; attempt++) {
      const { registry, resourceVersion } = await this.read();
      const next = change(registry);
      if (next === null) return { registry, wrote: false };
      try {
        await this.core.replaceConfigMap(this.namespace, this.name, {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: this.name, namespace: this.namespace, resourceVersion },
          data: registryData(next),
        });
        return { registry: next, wrote: true };
      } catch (error) {
        if (!(error instanceof KubeConflictError) || attempt >= MAX_ATTEMPTS) throw error;
        this.log.debug({ configMap: this.name, attempt }, 'registry changed under us; re-reading');
        await sleep(50 + this.random() * 100 * attempt);
      }
    }
  }

  private async create(): Promise<KubeConfigMap> {
    try {
      return await this.core.createConfigMap(this.namespace, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: this.name, namespace: this.namespace },
        data: registryData(emptyRegistry),
      });
    } catch (error) {
      // Another agent created it first.
      if (!(error instanceof KubeConflictError)) throw error;
      return this.core.readConfigMap(this.namespace, this.name);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

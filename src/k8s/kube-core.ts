import type { KubeHttp } from './kube-http.js';
import {
  configMapSchema,
  type KubeConfigMap,
  type KubeNode,
  type KubeNodeList,
  nodeListSchema,
  nodeSchema,
  type WatchEvent,
} from './kube-objects.js';

/** The server ends a watch after this long; client-go picks 5–10 min at random, so reconnects spread out. */
const WATCH_TIMEOUT_S = { min: 300, max: 600 };
/** A watch silent this long past its timeout is a dead connection. */
const WATCH_GRACE_S = 30;

/**
 * The calls weft makes to the core/v1 API, and nothing else (deploy/weft.yaml grants exactly these):
 * Nodes list + watch (cluster-wide), one ConfigMap get / create / replace in the agent's namespace.
 */
export class KubeCore {
  constructor(private readonly http: KubeHttp) {}

  listNodes(): Promise<KubeNodeList> {
    return this.http.json(
      { method: 'GET', path: '/api/v1/nodes', rbac: { verb: 'list', resource: 'nodes' } },
      nodeListSchema,
    );
  }

  /** Streams Node events after `resourceVersion` (with BOOKMARKs) until the server ends the watch. */
  watchNodes(
    resourceVersion: string,
    onEvent: (event: WatchEvent<KubeNode>) => void,
    options: { signal: AbortSignal; timeoutSeconds?: number },
  ): Promise<void> {
    const timeoutSeconds =
      options.timeoutSeconds ??
      Math.round(WATCH_TIMEOUT_S.min + Math.random() * (WATCH_TIMEOUT_S.max - WATCH_TIMEOUT_S.min));
    return this.http.watch(
      {
        method: 'GET',
        path: '/api/v1/nodes',
        query: {
          watch: 'true',
          resourceVersion,
          allowWatchBookmarks: 'true',
          timeoutSeconds: String(timeoutSeconds),
        },
        rbac: { verb: 'watch', resource: 'nodes' },
      },
      nodeSchema,
      onEvent,
      { idleMs: (timeoutSeconds + WATCH_GRACE_S) * 1000, signal: options.signal },
    );
  }

  readConfigMap(namespace: string, name: string): Promise<KubeConfigMap> {
    return this.http.json(
      {
        method: 'GET',
        path: configMapPath(namespace, name),
        rbac: { verb: 'get', resource: 'configmaps', namespace, name },
      },
      configMapSchema,
    );
  }

  /** Fails with KubeConflictError (409 AlreadyExists) if it exists. */
  createConfigMap(namespace: string, body: KubeConfigMap): Promise<KubeConfigMap> {
    return this.http.json(
      {
        method: 'POST',
        path: configMapPath(namespace),
        body,
        rbac: { verb: 'create', resource: 'configmaps', namespace },
      },
      configMapSchema,
    );
  }

  /**
   * Compare-and-swap when body.metadata.resourceVersion is set: fails with KubeConflictError (409
   * Conflict) if the ConfigMap changed since that version.
   */
  replaceConfigMap(namespace: string, name: string, body: KubeConfigMap): Promise<KubeConfigMap> {
    return this.http.json(
      {
        method: 'PUT',
        path: configMapPath(namespace, name),
        body,
        rbac: { verb: 'update', resource: 'configmaps', namespace, name },
      },
      configMapSchema,
    );
  }

  close(): void {
    this.http.close();
  }
}

function configMapPath(namespace: string, name?: string): string {
  const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`;
  return name === undefined ? collection : `${collection}/${encodeURIComponent(name)}`;
}

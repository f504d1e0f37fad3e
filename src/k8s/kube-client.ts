import { readFileSync } from 'node:fs';
import { KubeCore } from './kube-core.js';
import { loadKubeEndpoint } from './kube-endpoint.js';
import { KubeHttp } from './kube-http.js';

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
export const DEFAULT_KUBE_NAMESPACE = 'kube-system';

export interface KubeConnection {
  readonly core: KubeCore;
  /** Where the agent keeps its peer registry: the namespace it runs in. */
  readonly namespace: string;
}

/**
 * A kubeconfig file if given (tests, running an agent outside the cluster), else in-cluster
 * configuration (the pod's service account). The namespace is the pod's own, else kube-system.
 */
export async function connectToKube(options: { kubeconfig?: string | undefined }): Promise<KubeConnection> {
  const endpoint = await loadKubeEndpoint({ kubeconfig: options.kubeconfig });
  return {
    core: new KubeCore(new KubeHttp(endpoint)),
    namespace: podNamespace() ?? DEFAULT_KUBE_NAMESPACE,
  };
}

function podNamespace(): string | undefined {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

import { readFileSync } from 'node:fs';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
export const DEFAULT_KUBE_NAMESPACE = 'kube-system';

export interface KubeConnection {
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  /** Where the agent keeps its peer registry: the namespace it runs in. */
  readonly namespace: string;
}

/**
 * In-cluster configuration (the pod's service account) unless a kubeconfig file is given (tests,
 * running an agent outside the cluster). The namespace is the pod's own, else kube-system.
 */
export function connectToKube(options: { kubeconfig?: string | undefined }): KubeConnection {
  const kubeConfig = new KubeConfig();
  if (options.kubeconfig !== undefined) kubeConfig.loadFromFile(options.kubeconfig);
  else kubeConfig.loadFromCluster();
  return {
    kubeConfig,
    core: kubeConfig.makeApiClient(CoreV1Api),
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

/** The HTTP status of a failed API call, if it got that far. */
export function apiStatusOf(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const code = (error as { statusCode?: unknown; code?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

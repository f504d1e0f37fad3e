/** One RBAC permission an API call needs: what a 403 names so that the Role can be fixed. */
export interface RbacNeed {
  readonly verb: 'get' | 'list' | 'watch' | 'create' | 'update';
  readonly resource: 'nodes' | 'configmaps';
  readonly namespace?: string;
  readonly name?: string;
}

/** A request the API server answered with an error status (its Status reason and message kept). */
export class KubeApiError extends Error {
  override name = 'KubeApiError';

  constructor(
    readonly status: number,
    readonly reason: string,
    readonly apiMessage: string,
    readonly request: string,
    readonly rbac: RbacNeed,
  ) {
    super(`${request}: ${status} ${reason}: ${apiMessage}${hint(status, rbac)}`);
  }
}

/** 409: someone wrote in between (a replace over a stale resourceVersion, or a create of an existing object). */
export class KubeConflictError extends KubeApiError {
  override name = 'KubeConflictError';
}

export function kubeApiError(
  status: number,
  reason: string | undefined,
  apiMessage: string | undefined,
  request: string,
  rbac: RbacNeed,
): KubeApiError {
  const ErrorClass = status === 409 ? KubeConflictError : KubeApiError;
  return new ErrorClass(status, reason ?? 'Unknown', apiMessage ?? '(no message)', request, rbac);
}

/** The HTTP status of a failed API call, if it got that far. */
export function apiStatusOf(error: unknown): number | undefined {
  return error instanceof KubeApiError ? error.status : undefined;
}

function hint(status: number, rbac: RbacNeed): string {
  if (status === 401) {
    return ' (the API server rejected the credentials: an expired or revoked service-account token, or the kubeconfig user is wrong)';
  }
  if (status !== 403) return '';
  const scope = [
    rbac.name === undefined ? '' : ` named ${rbac.name}`,
    rbac.namespace === undefined
      ? ' (cluster-wide: a ClusterRole)'
      : ` in namespace ${rbac.namespace} (a Role)`,
  ].join('');
  return ` (weft needs the RBAC rule apiGroups [""], resources [${rbac.resource}], verbs [${rbac.verb}]${scope}; see deploy/weft.yaml)`;
}

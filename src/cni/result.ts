/** The ADD result in the configuration's CNI version, chained onto a previous plugin's result. */

export interface PodInterfaceInfo {
  hostIf: string;
  hostMac: string;
  ifname: string;
  podMac: string;
  netns: string;
  /** The pod's address without prefix; it is a /32, the gateway is on-link. */
  address: string;
  gateway: string;
}

interface ResultInterface {
  name: string;
  mac?: string;
  sandbox?: string;
}

interface ResultIp {
  version?: '4';
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniResult {
  cniVersion: string;
  interfaces: ResultInterface[];
  ips: ResultIp[];
  routes: Array<{ dst: string; gw?: string }>;
  dns: Record<string, unknown>;
}

function listOf<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

/**
 * Our interfaces and address appended to `prevResult` (if a plugin before us produced one), with
 * interface indexes shifted accordingly. 0.4.0 results carry `"version": "4"` on each IP.
 */
export function buildAddResult(
  cniVersion: string,
  pod: PodInterfaceInfo,
  prevResult?: Record<string, unknown>,
  dns?: Record<string, unknown>,
): CniResult {
  const interfaces = listOf<ResultInterface>(prevResult?.interfaces);
  const base = interfaces.length;
  const ip: ResultIp = { address: `${pod.address}/32`, gateway: pod.gateway, interface: base + 1 };
  return {
    cniVersion,
    interfaces: [
      ...interfaces,
      { name: pod.hostIf, mac: pod.hostMac },
      { name: pod.ifname, mac: pod.podMac, sandbox: pod.netns },
    ],
    ips: [...listOf<ResultIp>(prevResult?.ips), cniVersion === '0.4.0' ? { version: '4', ...ip } : ip],
    routes: [
      ...listOf<{ dst: string; gw?: string }>(prevResult?.routes),
      { dst: '0.0.0.0/0', gw: pod.gateway },
    ],
    dns: dns ?? (prevResult?.dns as Record<string, unknown> | undefined) ?? {},
  };
}

/** The pod address prevResult reports for an interface in the sandbox, for CHECK to compare. */
export function prevResultAddress(prevResult: Record<string, unknown>, ifname: string): string | undefined {
  const interfaces = listOf<ResultInterface>(prevResult.interfaces);
  for (const ip of listOf<ResultIp>(prevResult.ips)) {
    const iface = ip.interface === undefined ? undefined : interfaces[ip.interface];
    if (iface?.name === ifname && iface.sandbox !== undefined) return ip.address.split('/')[0];
  }
  return undefined;
}

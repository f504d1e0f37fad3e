import { type AdminPostHandler, AdminServer } from '../src/api/admin-server.js';
import {
  type NodeReport,
  peerTraffic,
  probeTargets,
  readinessOf,
  type StatusReport,
} from '../src/api/status-report.js';
import { STATUS_SCHEMA_VERSION } from '../src/api/status-schema.js';
import { AgentMetrics } from '../src/observability/metrics.js';
import type { Logger } from '../src/util/log.js';
import { weftVersion } from '../src/util/version.js';
import type { Dataplane } from './dataplane.js';
import { type ObservabilitySettings, startHttpEndpoints, startPathMonitor } from './observability.js';

export interface ModeEndpoints {
  /** The mode-specific part of `/v1/status`. */
  status(): NodeReport;
  /** Underlay addresses of peers known to the control plane (beyond the route table's). */
  peerAddresses?(): string[];
  post?: Record<string, AdminPostHandler>;
}

export interface AdminSettings extends ObservabilitySettings {
  adminSocket: string;
}

/**
 * Starts the admin API (`/v1/status` joins the mode's report with the data plane's), the health
 * and metrics endpoints, and the ICMP path probes the report shows.
 */
export async function startAdmin(
  settings: AdminSettings,
  dataplane: Dataplane,
  bridgeName: string,
  mode: ModeEndpoints,
  log: Logger,
): Promise<{ stop(): Promise<void> }> {
  const nodeAndTraffic = () => {
    const node = mode.status();
    return { node, traffic: peerTraffic(dataplane.routeTable) };
  };
  const paths = startPathMonitor(
    () =>
      probeTargets(dataplane.settings.underlayAddress, [
        ...dataplane.routeTable.spec.peers.map((p) => p.underlayAddress),
        ...(mode.peerAddresses?.() ?? []),
      ]),
    dataplane.settings.mtu,
    log,
  );
  const status = (): StatusReport => {
    const s = dataplane.settings;
    const { node, traffic } = nodeAndTraffic();
    return {
      schemaVersion: STATUS_SCHEMA_VERSION,
      version: weftVersion,
      generatedAtMs: Date.now(),
      ...node,
      readiness: readinessOf(node, dataplane.running),
      dataplane: {
        mode: dataplane.description,
        running: dataplane.running,
        tun: s.tunName,
        bridge: bridgeName,
        mtu: s.mtu,
        vni: s.vni,
        listen: `${s.underlayAddress}:${s.dataPort}`,
        counters: dataplane.counters.snapshot(),
        peers: traffic,
      },
      paths: paths?.results() ?? [],
    };
  };
  const metrics = new AgentMetrics(status);
  const admin = new AdminServer(
    settings.adminSocket,
    { get: { '/v1/status': status }, post: mode.post ?? {} },
    log.child({ component: 'admin' }),
    metrics.observeAdminRequest,
  );
  const stopAll = async (endpoints: Array<{ stop(): Promise<void> }>) => {
    await Promise.all(endpoints.map((e) => e.stop()));
    await paths?.stop();
  };
  let endpoints: Array<{ stop(): Promise<void> }> = [];
  try {
    endpoints = await startHttpEndpoints(settings, status, metrics, log);
    await admin.start();
  } catch (error) {
    await stopAll(endpoints);
    throw error;
  }
  return { stop: () => stopAll([admin, ...endpoints]) };
}

import type { StatusReport } from '../src/api/status-report.js';
import type { ListenAddress } from '../src/config/listen-address.js';
import { healthRoutes } from '../src/observability/health.js';
import { type EndpointHandler, HttpEndpoint } from '../src/observability/http-endpoint.js';
import type { AgentMetrics } from '../src/observability/metrics.js';
import { VXLAN_GPE_OVERHEAD } from '../src/plumbing/mtu.js';
import { PathMonitor } from '../src/probe/path-monitor.js';
import { RawEchoTransport } from '../src/probe/raw-echo.js';
import type { Logger } from '../src/util/log.js';

const PROBE_INTERVAL_MS = 10_000;
const PROBE_TIMEOUT_MS = 1_000;

export interface ObservabilitySettings {
  healthListen: ListenAddress | null;
  metricsListen: ListenAddress | null;
}

/** ICMP probes of the peers' underlay paths; none (and a warning) without CAP_NET_RAW. */
export function startPathMonitor(
  targets: () => string[],
  overlayMtu: number,
  log: Logger,
): PathMonitor | undefined {
  let transport: RawEchoTransport;
  try {
    transport = new RawEchoTransport();
  } catch (error) {
    log.warn({ err: error }, 'no raw ICMP socket (needs CAP_NET_RAW): peer paths are not probed');
    return undefined;
  }
  const monitor = new PathMonitor({
    transport,
    targets,
    // What the data plane needs the path to carry: a full overlay packet plus encapsulation.
    maxSize: overlayMtu + VXLAN_GPE_OVERHEAD,
    intervalMs: PROBE_INTERVAL_MS,
    timeoutMs: PROBE_TIMEOUT_MS,
    log: log.child({ component: 'path-probe' }),
  });
  monitor.start();
  return monitor;
}

/** Health probes and Prometheus metrics over HTTP; one server when both share an address. */
export async function startHttpEndpoints(
  settings: ObservabilitySettings,
  report: () => StatusReport,
  metrics: AgentMetrics,
  log: Logger,
): Promise<HttpEndpoint[]> {
  const byAddress = new Map<string, { listen: ListenAddress; routes: Record<string, EndpointHandler> }>();
  const add = (listen: ListenAddress | null, routes: Record<string, EndpointHandler>) => {
    if (!listen) return;
    const key = `${listen.host}:${listen.port}`;
    const entry = byAddress.get(key) ?? { listen, routes: {} };
    Object.assign(entry.routes, routes);
    byAddress.set(key, entry);
  };
  add(settings.healthListen, healthRoutes(report));
  add(settings.metricsListen, {
    '/metrics': async () => ({
      status: 200,
      contentType: metrics.contentType,
      body: await metrics.metrics(),
    }),
  });
  const started: HttpEndpoint[] = [];
  try {
    for (const { listen, routes } of byAddress.values()) {
      const endpoint = new HttpEndpoint(listen, routes, log.child({ component: 'http' }));
      await endpoint.start();
      started.push(endpoint);
    }
  } catch (error) {
    await Promise.all(started.map((e) => e.stop()));
    throw error;
  }
  return started;
}

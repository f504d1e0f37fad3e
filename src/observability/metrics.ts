import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AdminRequestObserver } from '../api/admin-server.js';
import type { StatusReport } from '../api/status-report.js';
import { CONNECTION_STATES } from '../api/status-schema.js';
import { dropReasonNames } from '../dataplane/counters.js';

const CNI_PATH_PREFIX = '/v1/cni/';
/** Requests that hand out an address: while one runs, an allocation is pending. */
const ALLOCATING_PATHS: ReadonlySet<string> = new Set(['/v1/ipam/allocate', '/v1/cni/add']);
/** CNI ADD can wait for IPAM and plumbing: buckets from 1 ms to 30 s. */
const CNI_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** A scrape reads the report once: every collector within this window shares it. */
const REPORT_REUSE_MS = 250;

/**
 * The agent's Prometheus metrics. Gauges and counters are read from the status report at scrape
 * time (one model for status and metrics); CNI request counts and latencies are observed as the
 * admin server answers, for every path under /v1/cni/.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  private cached: { atMs: number; report: StatusReport } | undefined;
  private pendingAllocations = 0;
  private readonly cniRequests: Counter<'command' | 'result'>;
  private readonly cniDuration: Histogram<'command' | 'result'>;

  constructor(
    private readonly report: () => StatusReport,
    private readonly now: () => number = Date.now,
  ) {
    // prom-client samples event-loop lag every 10 ms by default: 100 wakeups a second in an idle agent.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    const registers = [this.registry];
    const metrics = this;
    const gauge = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (g: Gauge<L>, r: StatusReport) => void,
    ) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          fill(this, metrics.current());
        },
      });
    const counter = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (c: Counter<L>, r: StatusReport) => void,
    ) =>
      new Counter<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          // The data plane's own counters are the source; they only grow while the agent runs.
          this.reset();
          fill(this, metrics.current());
        },
      });

    gauge('weft_ready', '1 when the data plane runs and IPAM is ready', [], (g, r) =>
      g.set(r.readiness.ready ? 1 : 0),
    );
    gauge('weft_peers', 'Known peers by state (static: from the peer file)', ['state'], (g, r) => {
      const cp = r.controlPlane;
      if (!cp) {
        g.set({ state: 'static' }, r.dataplane.peers.length);
        return;
      }
      for (const state of ['reachable', 'unreachable'] as const)
        g.set({ state }, cp.peers.filter((p) => p.state === state).length);
    });
    gauge('weft_connections', 'Control-plane connections and dial targets by state', ['state'], (g, r) => {
      for (const state of CONNECTION_STATES)
        g.set({ state }, r.controlPlane?.connections.filter((c) => c.state === state).length ?? 0);
    });
    gauge(
      'weft_peer_rtt_seconds',
      'Round trip to each peer: libp2p ping on the gossip connection (whole milliseconds, so 0 below one), ICMP echo on the underlay',
      ['peer', 'method'],
      (g, r) => {
        for (const p of r.controlPlane?.peers ?? [])
          if (p.rttMs !== null) g.set({ peer: p.name, method: 'libp2p' }, p.rttMs / 1000);
        for (const peer of peerAddresses(r)) {
          const path = r.paths.find((x) => x.address === peer.address);
          if (path?.rttMs != null) g.set({ peer: peer.name, method: 'icmp' }, path.rttMs / 1000);
        }
      },
    );
    gauge(
      'weft_peer_path_mtu_bytes',
      'Largest DF-set ICMP probe that reached each peer',
      ['peer'],
      (g, r) => {
        for (const peer of peerAddresses(r)) {
          const pmtu = r.paths.find((x) => x.address === peer.address)?.pmtu;
          if (pmtu != null) g.set({ peer: peer.name }, pmtu);
        }
      },
    );
    gauge('weft_ipam_ready', '1 when IPAM can hand out addresses', [], (g, r) =>
      g.set(r.readiness.ipam ? 1 : 0),
    );
    gauge(
      'weft_ipam_addresses',
      "This node's addresses: owned (its ranges), in_use (pods), free",
      ['state'],
      (g, r) => {
        const ipam = r.controlPlane?.ipam;
        if (!ipam) return;
        const own = ipam.owners.find((o) => o.peer === r.node.name);
        g.set({ state: 'owned' }, own?.addresses ?? 0);
        g.set({ state: 'in_use' }, ipam.allocations);
        g.set({ state: 'free' }, ipam.freeAddresses);
      },
    );
    gauge('weft_ipam_cluster_addresses', 'Size of the cluster range', [], (g, r) => {
      if (r.controlPlane) g.set(r.controlPlane.ipam.totalAddresses);
    });
    gauge(
      'weft_ipam_unreachable_addresses',
      'Addresses owned by unreachable peers (rmpeer them if they are dead)',
      [],
      (g, r) => {
        if (r.controlPlane) g.set(unreachableShare(r).addresses);
      },
    );
    gauge(
      'weft_ipam_unreachable_ratio',
      'Share of the cluster range owned by unreachable peers (0..1)',
      [],
      (g, r) => {
        if (r.controlPlane) g.set(unreachableShare(r).ratio);
      },
    );
    gauge('weft_ipam_pending_allocations', 'Address requests being answered right now', [], (g) =>
      g.set(metrics.pendingAllocations),
    );
    counter(
      'weft_dataplane_packets_total',
      'Packets forwarded: tx encapsulated, rx decapsulated',
      ['direction'],
      (c, r) => {
        c.inc({ direction: 'tx' }, r.dataplane.counters.encapsulated.packets);
        c.inc({ direction: 'rx' }, r.dataplane.counters.decapsulated.packets);
      },
    );
    counter(
      'weft_dataplane_bytes_total',
      'Inner bytes forwarded: tx encapsulated, rx decapsulated',
      ['direction'],
      (c, r) => {
        c.inc({ direction: 'tx' }, r.dataplane.counters.encapsulated.bytes);
        c.inc({ direction: 'rx' }, r.dataplane.counters.decapsulated.bytes);
      },
    );
    counter(
      'weft_dataplane_peer_packets_total',
      'Packets per peer and direction',
      ['peer', 'direction'],
      (c, r) => {
        for (const p of r.dataplane.peers) {
          c.inc({ peer: p.name, direction: 'tx' }, p.txPackets);
          c.inc({ peer: p.name, direction: 'rx' }, p.rxPackets);
        }
      },
    );
    counter(
      'weft_dataplane_peer_bytes_total',
      'Inner bytes per peer and direction',
      ['peer', 'direction'],
      (c, r) => {
        for (const p of r.dataplane.peers) {
          c.inc({ peer: p.name, direction: 'tx' }, p.txBytes);
          c.inc({ peer: p.name, direction: 'rx' }, p.rxBytes);
        }
      },
    );
    counter(
      'weft_dataplane_drops_total',
      'Packets dropped, by reason (see the README)',
      ['reason'],
      (c, r) => {
        for (const reason of Object.values(dropReasonNames))
          c.inc({ reason }, r.dataplane.counters.dropped[reason]);
      },
    );

    this.cniRequests = new Counter({
      name: 'weft_cni_requests_total',
      help: 'CNI requests by command and result (ok, a CNI error code, or http_<status>)',
      labelNames: ['command', 'result'],
      registers,
    });
    this.cniDuration = new Histogram({
      name: 'weft_cni_request_duration_seconds',
      help: 'CNI request latency by command and result',
      labelNames: ['command', 'result'],
      buckets: CNI_BUCKETS_S,
      registers,
    });
  }

  /** Hook for the admin server: counts CNI requests and in-flight allocations. */
  readonly observeAdminRequest: AdminRequestObserver = (method, path) => {
    const startedAt = process.hrtime.bigint();
    const allocating = method === 'POST' && ALLOCATING_PATHS.has(path);
    if (allocating) this.pendingAllocations++;
    return (status, body) => {
      if (allocating) this.pendingAllocations--;
      if (!path.startsWith(CNI_PATH_PREFIX)) return;
      const labels = { command: path.slice(path.lastIndexOf('/') + 1), result: resultOf(status, body) };
      this.cniRequests.inc(labels);
      this.cniDuration.observe(labels, Number(process.hrtime.bigint() - startedAt) / 1e9);
    };
  };

  metrics(): Promise<string> {
    this.cached = undefined;
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private current(): StatusReport {
    const now = this.now();
    if (!this.cached || now - this.cached.atMs > REPORT_REUSE_MS)
      this.cached = { atMs: now, report: this.report() };
    return this.cached.report;
  }
}

/** `ok`, the CNI error code of an error answer (`{"cniCode": 7, "error": …}`), or the HTTP status. */
function resultOf(status: number, body: unknown): string {
  const code = (body as { cniCode?: unknown } | null | undefined)?.cniCode;
  if (typeof code === 'number' && code !== 0) return String(code);
  return status >= 200 && status < 300 ? 'ok' : `http_${status}`;
}

function peerAddresses(r: StatusReport): Array<{ name: string; address: string }> {
  const byName = new Map<string, string>();
  for (const p of r.dataplane.peers) byName.set(p.name, p.underlayAddress);
  for (const p of r.controlPlane?.peers ?? []) byName.set(p.name, p.underlayAddress);
  return [...byName].map(([name, address]) => ({ name, address }));
}

export function unreachableShare(r: StatusReport): { addresses: number; ratio: number } {
  const ipam = r.controlPlane?.ipam;
  if (!ipam || ipam.totalAddresses === 0) return { addresses: 0, ratio: 0 };
  const addresses = ipam.owners
    .filter((o) => o.peer !== r.node.name && !o.reachable)
    .reduce((sum, o) => sum + o.addresses, 0);
  return { addresses, ratio: addresses / ipam.totalAddresses };
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { postToAgent } from '../../../src/api/admin-client.js';
import { AdminServer } from '../../../src/api/admin-server.js';
import type { StatusReport } from '../../../src/api/status-report.js';
import { cniEndpoints } from '../../../src/cni/endpoints.js';
import { type CniIpam, CniService } from '../../../src/cni/service.js';
import { AgentMetrics } from '../../../src/observability/metrics.js';
import type { PodLinks } from '../../../src/plumbing/pod-links.js';
import { createLogger } from '../../../src/util/log.js';
import { clusterReport, staticReport } from '../api/fixtures.js';

/** The value of one sample line, e.g. sample(text, 'weft_peers{state="reachable"}'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('AgentMetrics', () => {
  test('gauges from the status model: peers, connections, IPAM, readiness, RTT and PMTU', async () => {
    const text = await new AgentMetrics(clusterReport).metrics();
    expect(sample(text, 'weft_ready')).toBe(1);
    expect(sample(text, 'weft_peers{state="reachable"}')).toBe(1);
    expect(sample(text, 'weft_peers{state="unreachable"}')).toBe(1);
    expect(sample(text, 'weft_connections{state="established"}')).toBe(1);
    expect(sample(text, 'weft_connections{state="retrying"}')).toBe(1);
    expect(sample(text, 'weft_connections{state="failed"}')).toBe(0);
    expect(sample(text, 'weft_ipam_addresses{state="owned"}')).toBe(327_680);
    expect(sample(text, 'weft_ipam_addresses{state="in_use"}')).toBe(12);
    expect(sample(text, 'weft_ipam_unreachable_addresses')).toBe(393_216);
    expect(sample(text, 'weft_ipam_unreachable_ratio')).toBe(0.375);
    expect(sample(text, 'weft_ipam_pending_allocations')).toBe(0);
    expect(sample(text, 'weft_peer_rtt_seconds{peer="n2",method="libp2p"}')).toBeCloseTo(0.002, 9);
    expect(sample(text, 'weft_peer_rtt_seconds{peer="n2",method="icmp"}')).toBeCloseTo(0.000087, 9);
    expect(sample(text, 'weft_peer_path_mtu_bytes{peer="n3"}')).toBe(1400);
    expect(text).toContain('process_cpu_seconds_total');
  });

  test('data-plane counters per direction, per peer and per drop reason follow the agent and grow', async () => {
    let report: StatusReport = clusterReport();
    const metrics = new AgentMetrics(() => report);
    const first = await metrics.metrics();
    expect(sample(first, 'weft_dataplane_packets_total{direction="tx"}')).toBe(123_456);
    expect(sample(first, 'weft_dataplane_bytes_total{direction="rx"}')).toBe(87_654_321);
    expect(sample(first, 'weft_dataplane_peer_packets_total{peer="n3",direction="rx"}')).toBe(21_001);
    expect(sample(first, 'weft_dataplane_drops_total{reason="no_route"}')).toBe(3);
    expect(sample(first, 'weft_dataplane_drops_total{reason="oversize"}')).toBe(0);
    report = clusterReport();
    report.dataplane.counters.encapsulated.packets += 10;
    (report.dataplane.peers[0] as { txPackets: number }).txPackets += 10;
    const second = await metrics.metrics();
    expect(sample(second, 'weft_dataplane_packets_total{direction="tx"}')).toBe(123_466);
    expect(sample(second, 'weft_dataplane_peer_packets_total{peer="n2",direction="tx"}')).toBe(100_010);
  });

  test('static mode: peers counted as static, no IPAM series', async () => {
    const text = await new AgentMetrics(staticReport).metrics();
    expect(sample(text, 'weft_peers{state="static"}')).toBe(1);
    expect(sample(text, 'weft_ipam_addresses{state="owned"}')).toBeUndefined();
  });

  test('CNI requests by command and result with latency; pending allocations while an ADD runs', async () => {
    const metrics = new AgentMetrics(clusterReport);
    const add = metrics.observeAdminRequest('POST', '/v1/cni/add');
    expect(sample(await metrics.metrics(), 'weft_ipam_pending_allocations')).toBe(1);
    add(200, { cniVersion: '1.0.0', ips: [] });
    metrics.observeAdminRequest('GET', '/v1/status')(200, {});
    const text = await metrics.metrics();
    expect(sample(text, 'weft_ipam_pending_allocations')).toBe(0);
    expect(sample(text, 'weft_cni_requests_total{command="add",result="ok"}')).toBe(1);
    expect(text).not.toContain('command="status"');
    expect(sample(text, 'weft_cni_request_duration_seconds_count{command="add",result="ok"}')).toBe(1);
    expect(sample(text, 'weft_cni_request_duration_seconds_bucket{le="30",command="add",result="ok"}')).toBe(
      1,
    );
  });

  test('CNI failures are counted by the CNI code in the admin server answer, not its HTTP status', async () => {
    const metrics = new AgentMetrics(clusterReport);
    const dir = mkdtempSync(join(tmpdir(), 'weft-metrics-'));
    const socket = join(dir, 'a.sock');
    const service = new CniService({
      ipam: {} as CniIpam,
      links: {} as PodLinks,
      bridge: 'weave',
      node: async () => ({ ready: false, reason: 'no bridge yet' }),
      log: createLogger('fatal'),
    });
    const server = new AdminServer(
      socket,
      { get: {}, post: cniEndpoints(service) },
      createLogger('fatal'),
      metrics.observeAdminRequest,
    );
    const env = { CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_NETNS: '/proc/self/ns/net' };
    const config = { cniVersion: '1.1.0', name: 'weft', type: 'weft' };
    await server.start();
    try {
      // The node is not ready: ADD fails with code 11 (try again later), STATUS with 50.
      await expect(
        postToAgent(socket, '/v1/cni/add', { env: { ...env, CNI_COMMAND: 'ADD' }, config }),
      ).rejects.toThrow('cannot add pods yet');
      await expect(
        postToAgent(socket, '/v1/cni/status', { env: { CNI_COMMAND: 'STATUS' }, config }),
      ).rejects.toThrow();
      await expect(postToAgent(socket, '/v1/cni/check', undefined)).rejects.toThrow();
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    const text = await metrics.metrics();
    expect(sample(text, 'weft_ipam_pending_allocations')).toBe(0);
    expect(sample(text, 'weft_cni_requests_total{command="add",result="11"}')).toBe(1);
    expect(sample(text, 'weft_cni_requests_total{command="status",result="50"}')).toBe(1);
    expect(sample(text, 'weft_cni_requests_total{command="check",result="4"}')).toBe(1);
    expect(text).not.toMatch(/weft_cni_requests_total\{[^}]*result="http_/);
  });
});

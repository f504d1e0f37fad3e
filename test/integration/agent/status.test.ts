import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { statusReportSchema } from '../../../src/api/status-schema.js';
import { type StatusViewName, statusViews } from '../../../src/api/views/index.js';
import { AGENT_ENTRY, waitFor } from '../../helpers/agent.js';
import { TestCluster } from '../../helpers/cluster.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';

const execFileAsync = promisify(execFile);
const PEER_TIMEOUT_MS = 3_000; // TestCluster's fast heartbeat

describeAsRoot('agent status, health and metrics on a three-agent cluster', () => {
  let group: NetnsGroup;
  let cluster: TestCluster;

  /** `agent <args>` against a node's admin socket: exit code, stdout, stderr. */
  async function cli(
    node: string,
    args: string[],
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const argv = [AGENT_ENTRY, ...args, '--admin-socket', cluster.node(node).socket];
    try {
      const { stdout, stderr } = await execFileAsync(process.execPath, argv);
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  /** A view's JSON, checked against its schema. */
  async function view<N extends StatusViewName>(node: string, name: N) {
    const { stdout } = await cli(node, ['status', name, '--json']);
    return statusViews[name].schema.parse(JSON.parse(stdout)) as ReturnType<(typeof statusViews)[N]['model']>;
  }

  /** GET inside the node's namespace (health listens on the namespace's loopback). */
  async function httpGet(node: string, url: string): Promise<{ status: number; body: string }> {
    const result = await group.exec(node, ['curl', '-s', '-m', '5', '-w', '\n%{http_code}', url], {
      allowFail: true,
    });
    const cut = result.stdout.lastIndexOf('\n');
    return { status: Number(result.stdout.slice(cut + 1)), body: result.stdout.slice(0, cut).trimEnd() };
  }

  const metric = (text: string, series: string) =>
    Number(
      text
        .split('\n')
        .find((l) => l.startsWith(`${series} `))
        ?.slice(series.length + 1),
    );

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('st');
    cluster = await TestCluster.create(group, 3);
  });

  afterAll(async () => {
    await group?.destroy();
  });

  it('/readyz is 503 and `agent status` exits 5 while IPAM awaits consensus; 200 once it is ready', async () => {
    cluster.startAgent('n1');
    await waitFor(
      async () => (await httpGet('n1', 'http://127.0.0.1:6784/healthz')).status === 200,
      15_000,
      'n1 up',
    );
    const notReady = await httpGet('n1', 'http://127.0.0.1:6784/readyz');
    expect(notReady).toEqual({ status: 503, body: 'not ready: IPAM awaiting consensus: quorum 2, known 1' });
    const status = await cli('n1', ['status']);
    expect(status.code).toBe(5);
    expect(status.stdout).toMatch(/Status: NOT READY: IPAM awaiting consensus: quorum 2, known 1/);
    expect(status.stderr).toContain('agent: not ready: IPAM awaiting consensus');

    cluster.startAgent('n2');
    cluster.startAgent('n3');
    await cluster.waitUntilReady();
    for (const node of cluster.nodes) {
      expect(await httpGet(node.name, 'http://127.0.0.1:6784/readyz')).toEqual({
        status: 200,
        body: 'ready',
      });
    }
    expect((await cli('n1', ['status'])).code).toBe(0);
    const report = statusReportSchema.parse(JSON.parse((await cli('n1', ['report'])).stdout));
    expect(report.readiness.ready).toBe(true);
  });

  it('`status peers` lists this node first, then every peer established with a libp2p RTT and an ICMP path', async () => {
    let peers: Awaited<ReturnType<typeof view<'peers'>>>['peers'] = [];
    // libp2p pings every 10 s, the ICMP probe runs within a second of a new peer.
    await waitFor(
      async () => {
        peers = (await view('n1', 'peers')).peers;
        return peers.length === 3 && peers.slice(1).every((p) => p.rttMs !== null && p.icmp?.pmtu != null);
      },
      25_000,
      'peers with RTTs',
      500,
    ).catch(() => undefined);
    expect(peers.map((p) => [p.name, p.state])).toEqual([
      ['n1', 'self'],
      ['n2', 'reachable'],
      ['n3', 'reachable'],
    ]);
    for (const peer of peers.slice(1)) {
      // libp2p times its pings in whole milliseconds: 0 on this sub-millisecond link is a reading.
      expect(peer.rttMs, `${peer.name} libp2p RTT`).not.toBeNull();
      expect(peer.rttMs).toBeGreaterThanOrEqual(0);
      expect(peer.rttMs).toBeLessThan(1_000);
      expect(peer.icmp, `${peer.name} ICMP`).toMatchObject({ reachable: true, pmtu: 1500 });
      expect(peer.icmp?.rttMs).toBeGreaterThan(0);
      expect(peer.cidrs.length).toBeGreaterThan(0);
      expect(peer.underlayAddress).toBe(cluster.node(peer.name).underlayIp);
    }
    const text = (await cli('n1', ['status', 'peers'])).stdout;
    expect(text.split('\n')[0]).toMatch(
      /^NODE +PEER ID +UNDERLAY +STATE +LAST SEEN +RTT +ICMP RTT +PMTU +RANGES/,
    );
    expect(text).toMatch(
      /^n2 +…\S+ +192\.168\.198\.2 +reachable +[\d.]+ s ago +(<1|\d+) ms +[\d.]+ ms +1500 B /m,
    );
  });

  it('`status ipam` shares add up to 100 % and every view conforms to its schema', async () => {
    const ipam = await view('n2', 'ipam');
    expect(ipam.shares.map((s) => s.peer)).toEqual(['n2', 'n1', 'n3']);
    expect(ipam.shares.reduce((sum, s) => sum + s.percent, 0)).toBeCloseTo(100, 6);
    expect((await cli('n2', ['status', 'ipam'])).stdout).toMatch(/^n2 \(this node\) .* 0 active$/m);
    await view('n2', 'connections');
    await view('n2', 'dataplane');
    statusReportSchema.parse(JSON.parse((await cli('n2', ['status', '--json'])).stdout));
  });

  it('/metrics scraped during traffic shows data-plane counters growing, per direction and per peer', async () => {
    const p1 = await cluster.addPod('n1', 'p1');
    const p2 = await cluster.addPod('n2', 'p2');
    const ping = group.spawn('p1', ['ping', '-i', '0.1', '-c', '40', p2.ip]);
    const scrape = async () => (await httpGet('n1', 'http://127.0.0.1:6782/metrics')).body;
    try {
      await waitFor(
        async () => metric(await scrape(), 'weft_dataplane_packets_total{direction="tx"}') > 0,
        10_000,
        'traffic',
      );
      const first = await scrape();
      await new Promise((r) => setTimeout(r, 1_000));
      const second = await scrape();
      for (const series of [
        'weft_dataplane_packets_total{direction="tx"}',
        'weft_dataplane_packets_total{direction="rx"}',
        'weft_dataplane_bytes_total{direction="tx"}',
        'weft_dataplane_peer_packets_total{peer="n2",direction="tx"}',
        'weft_dataplane_peer_bytes_total{peer="n2",direction="rx"}',
      ]) {
        expect(metric(second, series), series).toBeGreaterThan(metric(first, series));
      }
      expect(metric(second, 'weft_peers{state="reachable"}')).toBe(2);
      expect(metric(second, 'weft_connections{state="established"}')).toBeGreaterThanOrEqual(2);
      expect(metric(second, 'weft_ipam_addresses{state="in_use"}')).toBe(1);
      expect(metric(second, 'weft_ready')).toBe(1);
      expect(second).toContain('process_resident_memory_bytes');
      // n2's pod reaches n1's view with n2's next heartbeat.
      await waitFor(
        async () => (await view('n1', 'peers')).peers.find((p) => p.name === 'n2')?.inUse === 1,
        5_000,
        'n2 reports 1 pod',
      );
    } finally {
      await group.stop(ping);
    }
    expect(p1.ip).not.toBe(p2.ip);
  });

  it('a killed agent shows as unreachable within the peer timeout, its share flagged with the rmpeer hint', async () => {
    await cluster.stopAgent('n3', 'SIGKILL');
    const killedAt = Date.now();
    let state = '';
    await waitFor(
      async () => {
        state = (await view('n1', 'peers')).peers.find((p) => p.name === 'n3')?.state ?? '';
        return state === 'unreachable';
      },
      PEER_TIMEOUT_MS + 5_000,
      'n3 unreachable',
      200,
    ).catch(() => undefined);
    expect(state).toBe('unreachable');
    expect(Date.now() - killedAt).toBeLessThan(PEER_TIMEOUT_MS + 5_000);
    const ipam = await view('n1', 'ipam');
    expect(ipam.shares.find((s) => s.peer === 'n3')?.reachable).toBe(false);
    expect(ipam.hint).toContain('agent rmpeer n3');
    const text = (await cli('n1', ['status', 'ipam'])).stdout;
    expect(text).toMatch(/^n3 .*unreachable!$/m);
    expect(
      metric((await httpGet('n1', 'http://127.0.0.1:6782/metrics')).body, 'weft_peers{state="unreachable"}'),
    ).toBe(1);
  });
});

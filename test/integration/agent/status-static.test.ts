import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { statusReportSchema } from '../../../src/api/status-schema.js';
import { type StatusViewName, statusViews } from '../../../src/api/views/index.js';
import { AGENT_ENTRY, type AgentProcess, startAgentOn, waitFor } from '../../helpers/agent.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import { buildTwoNodeTopology, type TwoNodeTopology } from '../../helpers/topology.js';

const execFileAsync = promisify(execFile);

describeAsRoot('agent status in static mode (--peers-file), with ICMP path MTU probes', () => {
  let group: NetnsGroup;
  let topo: TwoNodeTopology;
  const agents: AgentProcess[] = [];

  async function view<N extends StatusViewName>(agent: AgentProcess, name: N) {
    const { stdout } = await execFileAsync(process.execPath, [
      AGENT_ENTRY,
      'status',
      name,
      '--json',
      '--admin-socket',
      agent.socket,
    ]);
    return statusViews[name].schema.parse(JSON.parse(stdout)) as ReturnType<(typeof statusViews)[N]['model']>;
  }

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('sts');
    topo = await buildTwoNodeTopology(group, { podMtu: 1464 });
    agents.push(await startAgentOn(group, topo, 0), await startAgentOn(group, topo, 1));
  });

  afterAll(async () => {
    await group?.destroy();
  });

  it('is ready without a control plane: report, /readyz, and views that say static', async () => {
    const [n1] = agents as [AgentProcess];
    const report = statusReportSchema.parse(await n1.status());
    expect(report.controlPlane).toBeNull();
    expect(report.readiness).toEqual({ ready: true, dataplane: true, ipam: true, reasons: [] });
    const readyz = await group.exec('n1', [
      'curl',
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      'http://127.0.0.1:6784/readyz',
    ]);
    expect(readyz.stdout).toBe('200');
    const ipam = await view(n1, 'ipam');
    expect(ipam.state).toBe('static');
    expect(ipam.shares.reduce((sum, s) => sum + s.percent, 0)).toBeCloseTo(100, 9);
    expect((await view(n1, 'connections')).controlPlane).toBe(false);
    const peers = await view(n1, 'peers');
    expect(peers.peers.map((p) => [p.name, p.state])).toEqual([
      ['n1', 'self'],
      ['n2', 'static'],
    ]);
  });

  it('measures the path MTU with DF probes: 1500 on a clean path, 1400 after the peer link shrinks', async () => {
    const [n1, n2] = agents as [AgentProcess, AgentProcess];
    const pathTo = async () => (await view(n1, 'peers')).peers[1]?.icmp ?? null;
    await waitFor(async () => (await pathTo())?.pmtu != null, 5_000, 'first probe').catch(() => undefined);
    expect(await pathTo()).toMatchObject({ reachable: true, pmtu: 1500, error: null });

    // n2's underlay now takes at most 1400 bytes: n1's big probes are dropped silently on the way in,
    // n2's own are refused locally (EMSGSIZE); both sides step down to 1400.
    await group.exec('n2', ['ip', 'link', 'set', topo.nodes[1].underlayIf, 'mtu', '1400']);
    await waitFor(async () => (await pathTo())?.pmtu === 1400, 25_000, 'n1 sees PMTU 1400', 500).catch(
      () => undefined,
    );
    expect(await pathTo()).toMatchObject({ reachable: true, pmtu: 1400 });
    await waitFor(
      async () => (await view(n2, 'peers')).peers[1]?.icmp?.pmtu === 1400,
      25_000,
      'n2 sees PMTU 1400',
      500,
    ).catch(() => undefined);
    expect((await view(n2, 'peers')).peers[1]?.icmp).toMatchObject({ reachable: true, pmtu: 1400 });
    const dataplane = await view(n1, 'dataplane');
    expect(dataplane.pmtuWarnings).toEqual([
      'path MTU to n2 is 1400 B but full overlay packets need 1500 B: lower --mtu to 1364',
    ]);
  });
});

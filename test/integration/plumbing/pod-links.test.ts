import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseAddresses, parseIpv4Routes, parseLinks } from '../../../src/plumbing/ipjson.js';
import type { PodLinkSpec } from '../../../src/plumbing/pod-network.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import type { DriverOp, DriverReport } from './pod-links-driver.js';
import { nodeTsArgv, repoFile } from './run-ts.js';

const DRIVER = repoFile('./pod-links-driver.ts');

describeAsRoot('pod links over rtnetlink (attach, detach, undo, threads)', () => {
  let group: NetnsGroup;
  let podNs: string[];
  let workDir: string;

  /** Runs the batches in one driver process inside the node namespace; fails on a thread left elsewhere. */
  const drive = async (...batches: DriverOp[][]) => {
    const result = await group.exec('node', nodeTsArgv(DRIVER, [JSON.stringify(batches)]));
    const report = JSON.parse(result.stdout) as DriverReport;
    expect(report.threadsElsewhere).toEqual([]);
    return report;
  };
  const only = async (op: DriverOp) => (await drive([op])).outcomes[0]?.[0];
  const spec = (i: number): PodLinkSpec => ({
    bridge: 'weave',
    hostIf: `vwf0123456789${i.toString(16).padStart(2, '0')}`,
    hostMac: `0e:01:02:03:04:${i.toString(16).padStart(2, '0')}`,
    netns: `/run/netns/${podNs[i]}`,
    ifname: 'eth0',
    podMac: `0a:58:0a:20:01:${(i + 5).toString(16).padStart(2, '0')}`,
    address: `10.32.1.${i + 5}`,
    gateway: '10.32.1.1',
    mtu: 1400,
  });
  const ipJson = async (ns: string, args: string[]) =>
    (await group.exec(ns, ['ip', '-json', ...args])).stdout;
  const hostState = async () => ({
    links: parseLinks(await ipJson('node', ['link', 'show'])).map((l) => l.name),
    routes: parseIpv4Routes(await ipJson('node', ['-4', 'route', 'show'])).map((r) => r.dst),
  });

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'weft-podlinks-'));
    group = await NetnsGroup.createAfterSweep('podlinks');
    await group.addNamespace('node');
    podNs = [];
    for (let i = 0; i < 8; i++) podNs.push(await group.addNamespace(`p${i}`));
    await group.exec('node', ['ip', 'link', 'add', 'weave', 'type', 'bridge']);
    await group.exec('node', ['ip', 'addr', 'add', '10.32.1.1/24', 'dev', 'weave']);
    await group.exec('node', ['ip', 'link', 'set', 'weave', 'up']);
  });

  afterAll(async () => {
    await group?.destroy();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('attaches as specified: links, MACs, MTU, master, address and routes as `ip` sees them', async () => {
    const s = spec(0);
    const report = await drive([{ attach: s }], [{ inspect: s }]);
    expect(report.outcomes).toEqual([[{ ok: true }], [{ ok: true, problems: [] }]]);
    const host = parseLinks(await ipJson('node', ['link', 'show', 'dev', s.hostIf]))[0];
    expect(host).toMatchObject({ master: 'weave', mtu: 1400, up: true });
    expect(JSON.parse(await ipJson('node', ['link', 'show', 'dev', s.hostIf]))[0].address).toBe(s.hostMac);
    const pod = JSON.parse(await ipJson(`p0`, ['link', 'show', 'dev', 'eth0']))[0];
    expect(pod).toMatchObject({ address: s.podMac, mtu: 1400, link_type: 'ether' });
    const addrs = parseAddresses(await ipJson('p0', ['addr', 'show', 'dev', 'eth0']));
    expect(addrs.filter((a) => a.family === 'inet')).toMatchObject([{ local: s.address, prefixLength: 32 }]);
    const hostRoute = JSON.parse(await ipJson('node', ['-4', 'route', 'show', `${s.address}/32`]))[0];
    expect(hostRoute).toMatchObject({ dev: 'weave', protocol: 'static', scope: 'link' });
  });

  it('attaches over a left-over veth of the same attachment (EEXIST), and detaches idempotently', async () => {
    const s = spec(0);
    const report = await drive(
      [{ attach: s }],
      [{ inspect: s }],
      [{ detach: s.hostIf, route: { address: s.address, bridge: 'weave' } }],
      [{ detach: s.hostIf, route: { address: s.address, bridge: 'weave' } }],
      [{ detach: s.hostIf }],
    );
    expect(report.outcomes).toEqual([
      [{ ok: true }],
      [{ ok: true, problems: [] }],
      [{ ok: true, existed: true }],
      [{ ok: true, existed: false }],
      [{ ok: true, existed: false }],
    ]);
    const after = await hostState();
    expect(after.links).not.toContain(s.hostIf);
    expect(after.routes).not.toContain(`${s.address}/32`);
    expect(parseLinks(await ipJson('p0', ['link', 'show'])).map((l) => l.name)).toEqual(['lo']);
  });

  it('fails cleanly for a netns path that does not exist or is not a netns, leaving nothing behind', async () => {
    const before = await hostState();
    const notNetns = join(workDir, 'not-a-netns');
    writeFileSync(notNetns, '');
    const report = await drive([
      { attach: { ...spec(1), netns: '/run/netns/wt-podlinks-none' } },
      { attach: { ...spec(2), netns: notNetns } },
    ]);
    expect(report.outcomes[0]).toMatchObject([
      { ok: false, code: 'ENOENT', step: 'open-netns' },
      { ok: false, code: 'EINVAL', step: 'enter-netns' },
    ]);
    expect(report.outcomes[0]?.[0]).toMatchObject({
      message: expect.stringContaining('/run/netns/wt-podlinks-none: No such file or directory'),
    });
    expect(await hostState()).toEqual(before);
  });

  it('undoes the veth and the host route when a step inside the pod fails', async () => {
    const s = spec(3);
    await group.exec('p3', ['ip', 'route', 'add', '10.32.1.1', 'dev', 'lo']);
    const before = await hostState();
    const outcome = await only({ attach: s });
    expect(outcome).toMatchObject({ ok: false, code: 'EEXIST', step: 'pod-gateway-route' });
    expect(outcome).toMatchObject({
      message: expect.stringContaining(`add route 10.32.1.1 dev eth0 scope link in ${s.netns}`),
    });
    expect(await hostState()).toEqual(before);
    expect(parseLinks(await ipJson('p3', ['link', 'show'])).map((l) => l.name)).toEqual(['lo']);
  });

  it('names the pod interface when it exists already in the pod, and leaves nothing behind', async () => {
    const s = spec(4);
    await group.exec('p4', ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1']);
    const before = await hostState();
    const outcome = await only({ attach: s });
    expect(outcome).toMatchObject({ ok: false, code: 'EEXIST', step: 'create-veth' });
    expect(outcome).toMatchObject({
      message: expect.stringContaining(`create veth ${s.hostIf} peer eth0 in ${s.netns}: File exists`),
    });
    expect(await hostState()).toEqual(before);
  });

  it('rejects malformed specs before touching anything', async () => {
    const before = await hostState();
    const outcomes = (
      await drive([
        { attach: { ...spec(5), address: '10.32.1.256' } },
        { attach: { ...spec(5), hostMac: 'not-a-mac' } },
        { attach: { ...spec(5), hostIf: 'a-name-longer-than-15' } },
      ])
    ).outcomes[0];
    expect(outcomes?.map((o) => (o.ok ? 'ok' : o.message))).toEqual([
      'address is not an IPv4 address: 10.32.1.256',
      'hostMac is not a MAC address: not-a-mac',
      'hostIf must have 1 to 15 bytes',
    ]);
    expect(await hostState()).toEqual(before);
  });

  it('runs concurrent attaches, detaches and failures, and leaves no thread in a pod namespace', async () => {
    const pods = [5, 6, 7].map(spec);
    const rounds: DriverOp[][] = [];
    for (let round = 0; round < 5; round++) {
      rounds.push([...pods.map((s) => ({ attach: s })), { attach: { ...spec(3) } }]);
      rounds.push(pods.map((s) => ({ detach: s.hostIf, route: { address: s.address, bridge: 'weave' } })));
    }
    const report = await drive(...rounds);
    for (const [i, batch] of report.outcomes.entries()) {
      if (i % 2 === 0) expect(batch.map((o) => o.ok)).toEqual([true, true, true, false]);
      else expect(batch).toEqual(pods.map(() => ({ ok: true, existed: true })));
    }
  });
});

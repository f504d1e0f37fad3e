import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseIpv4Routes, parseLinks } from '../../../src/plumbing/ipjson.js';
import type { PodLinkSpec } from '../../../src/plumbing/pod-network.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import { nodeTsArgv, repoFile } from './run-ts.js';

const DRIVER = repoFile('./pod-network-driver.ts');

describeAsRoot('attachPod leaves nothing behind when a step fails', () => {
  let group: NetnsGroup;
  let spec: PodLinkSpec;

  const attach = (s: PodLinkSpec) =>
    group.exec('node', nodeTsArgv(DRIVER, [JSON.stringify(s)]), { allowFail: true });
  const hostState = async () => ({
    links: parseLinks((await group.exec('node', ['ip', '-json', 'link', 'show'])).stdout).map((l) => l.name),
    routes: parseIpv4Routes((await group.exec('node', ['ip', '-4', '-json', 'route', 'show'])).stdout).map(
      (r) => r.dst,
    ),
  });

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('podnet');
    await group.addNamespace('node');
    const pod = await group.addNamespace('pod');
    await group.exec('node', ['ip', 'link', 'add', 'weave', 'type', 'bridge']);
    await group.exec('node', ['ip', 'addr', 'add', '10.32.1.1/24', 'dev', 'weave']);
    await group.exec('node', ['ip', 'link', 'set', 'weave', 'up']);
    spec = {
      bridge: 'weave',
      hostIf: 'vwf0123456789ab',
      hostMac: '0e:01:02:03:04:05',
      netns: `/run/netns/${pod}`,
      ifname: 'eth0',
      podMac: '0a:58:0a:20:01:05',
      address: '10.32.1.5',
      gateway: '10.32.1.1',
      mtu: 1400,
    };
  });

  afterAll(async () => {
    await group?.destroy();
  });

  it('undoes the veth when the host route cannot be added', async () => {
    const before = await hostState();
    const result = await attach({ ...spec, address: '10.32.1.256' });
    expect(result.code).not.toBe(0);
    expect(await hostState()).toEqual(before);
  });

  it('undoes the veth and the host route when the pod side fails', async () => {
    const before = await hostState();
    const result = await attach({ ...spec, gateway: 'not-an-address' });
    expect(result.code).not.toBe(0);
    expect(await hostState()).toEqual(before);
  });

  it('attaches when every step succeeds (the failures above were the steps, not the setup)', async () => {
    const result = await attach(spec);
    expect(result.stderr).toBe('');
    const after = await hostState();
    expect(after.links).toContain(spec.hostIf);
    expect(after.routes).toContain(`${spec.address}/32`);
  });
});

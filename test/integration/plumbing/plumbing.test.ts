import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { NodePlumbingConfig } from '../../../src/plumbing/index.js';
import { parseAddresses, parseIpv4Routes, parseLinks } from '../../../src/plumbing/ipjson.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import { nodeTsArgv, repoFile } from './run-ts.js';

const DRIVER = repoFile('./plumbing-driver.ts');
const NODE = 'node';
const CONFIG: NodePlumbingConfig = {
  bridge: 'weave',
  gatewayCidr: '10.32.1.1/24',
  tunName: 'wtun0',
  clusterCidr: '10.32.0.0/12',
  mtu: 1464,
  txqueuelen: 10000,
};

describeAsRoot('NodePlumbing in a network namespace', () => {
  let group: NetnsGroup;

  const inNode = (argv: string[]) => group.exec(NODE, argv);
  const plumbing = (command: string, arg: string) => inNode(nodeTsArgv(DRIVER, [command, arg]));
  const sysctl = async (path: string) => (await inNode(['cat', `/proc/sys/${path}`])).stdout.trim();

  async function snapshot() {
    return {
      links: parseLinks((await inNode(['ip', '-d', '-json', 'link', 'show'])).stdout),
      addresses: parseAddresses((await inNode(['ip', '-json', 'addr', 'show'])).stdout),
      routes: parseIpv4Routes((await inNode(['ip', '-4', '-json', 'route', 'show', 'table', 'main'])).stdout),
      ipForward: await sysctl('net/ipv4/ip_forward'),
      tunRpFilter: await sysctl(`net/ipv4/conf/${CONFIG.tunName}/rp_filter`),
    };
  }

  /** Everything `ip monitor` reports while `action` runs: link, address and route changes. */
  async function changesDuring(action: () => Promise<unknown>): Promise<string> {
    const monitor: ChildProcess = group.spawn(NODE, ['ip', 'monitor', 'link', 'address', 'route']);
    let events = '';
    monitor.stdout?.on('data', (chunk: Buffer) => {
      events += chunk.toString();
    });
    monitor.stderr?.resume();
    await sleep(300);
    await action();
    await sleep(300);
    await group.stop(monitor);
    return events;
  }

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('plumb');
    await group.addNamespace(NODE);
    // Without IPv6 no link-local address finishes DAD seconds later, which `ip monitor` would report.
    await inNode([
      'sysctl',
      '-q',
      '-w',
      'net.ipv6.conf.all.disable_ipv6=1',
      'net.ipv6.conf.default.disable_ipv6=1',
    ]);
    // The agent creates its TUN itself; a persistent one stands in for it here.
    await inNode(['ip', 'tuntap', 'add', 'dev', CONFIG.tunName, 'mode', 'tun']);
    await inNode(['ip', 'link', 'add', 'ul0', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'ul0peer']);
    await inNode(['ip', 'addr', 'add', '192.168.199.1/24', 'dev', 'ul0']);
    // A leftover route of an earlier configuration, and a strict conf.all.rp_filter.
    await inNode(['ip', 'link', 'set', 'dev', CONFIG.tunName, 'up']);
    await inNode(['ip', 'route', 'add', '10.99.0.0/16', 'dev', CONFIG.tunName]);
    await inNode(['sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=1', 'net.ipv4.ip_forward=0']);
  });

  afterAll(async () => {
    await group?.destroy();
    const left = (await NetnsGroup.listNamespaces()).filter((ns) => ns.startsWith(`${group.prefix}-`));
    expect(left).toEqual([]);
  });

  it('finds the underlay MTU of the interface holding an address', async () => {
    const { stdout } = await plumbing('underlayMtu', '192.168.199.1');
    expect(JSON.parse(stdout)).toEqual({ ifname: 'ul0', mtu: 1400 });
  });

  it('sets up bridge, gateway, TUN, routes and sysctls', async () => {
    await plumbing('setUp', JSON.stringify(CONFIG));
    const state = await snapshot();

    const bridge = state.links.find((l) => l.name === 'weave');
    expect(bridge).toMatchObject({ kind: 'bridge', up: true, mtu: 1464 });
    expect(state.addresses.filter((a) => a.ifname === 'weave' && a.family === 'inet')).toEqual([
      expect.objectContaining({ local: '10.32.1.1', prefixLength: 24 }),
    ]);
    expect(state.links.find((l) => l.name === CONFIG.tunName)).toMatchObject({
      up: true,
      mtu: 1464,
      txqueuelen: 10000,
    });
    const tunRoutes = state.routes.filter((r) => r.dev === CONFIG.tunName);
    expect(tunRoutes).toEqual([expect.objectContaining({ dst: '10.32.0.0/12', prefsrc: '10.32.1.1' })]);
    expect(state.routes).toContainEqual(
      expect.objectContaining({ dst: '10.32.1.0/24', dev: 'weave', protocol: 'kernel' }),
    );
    expect(state.ipForward).toBe('1');
    expect(state.tunRpFilter).toBe('2');
  });

  it('changes nothing when set up again', async () => {
    const before = await snapshot();
    const events = await changesDuring(() => plumbing('setUp', JSON.stringify(CONFIG)));
    expect(events).toBe('');
    expect(await snapshot()).toEqual(before);
    // The monitor does see a change when there is one.
    const control = await changesDuring(() =>
      inNode(['ip', 'link', 'set', 'dev', 'weave', 'txqueuelen', '999']),
    );
    expect(control).toContain('weave');
  });

  it('moves the gateway and cluster route when the configuration changes', async () => {
    const moved = { ...CONFIG, gatewayCidr: '10.32.4.1/24', mtu: 1400 };
    await plumbing('setUp', JSON.stringify(moved));
    const state = await snapshot();
    expect(
      state.addresses.filter((a) => a.ifname === 'weave' && a.family === 'inet').map((a) => a.local),
    ).toEqual(['10.32.4.1']);
    expect(state.routes.filter((r) => r.dev === CONFIG.tunName)).toEqual([
      expect.objectContaining({ dst: '10.32.0.0/12', prefsrc: '10.32.4.1' }),
    ]);
    expect(state.links.find((l) => l.name === 'weave')?.mtu).toBe(1400);
    await plumbing('setUp', JSON.stringify(CONFIG));
  });

  it('rejects a configuration that cannot work, before touching anything', async () => {
    const before = await snapshot();
    const bad = { ...CONFIG, gatewayCidr: '10.64.1.1/24' };
    await expect(plumbing('setUp', JSON.stringify(bad))).rejects.toThrow(/not inside the cluster range/);
    expect(await snapshot()).toEqual(before);
  });

  it('tears down what it set up and leaves TUN and forwarding in place, twice', async () => {
    await plumbing('tearDown', JSON.stringify(CONFIG));
    await plumbing('tearDown', JSON.stringify(CONFIG));
    const state = await snapshot();
    expect(state.links.map((l) => l.name)).not.toContain('weave');
    expect(state.links.map((l) => l.name)).toContain(CONFIG.tunName);
    expect(state.routes.filter((r) => r.dev === CONFIG.tunName || r.dev === 'weave')).toEqual([]);
    expect(state.ipForward).toBe('1');
  });
});

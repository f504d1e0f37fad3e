import { describe, expect, it } from 'vitest';
import { attachmentKey, isAttachmentKey, parseCniRequest } from '../../../src/cni/request.js';
import { buildAddResult, prevResultAddress } from '../../../src/cni/result.js';
import { hostVethMac, hostVethName, podMacFor } from '../../../src/plumbing/pod-network.js';

const pod = {
  hostIf: 'vwf0123456789ab',
  hostMac: '0e:01:02:03:04:05',
  ifname: 'eth0',
  podMac: '0a:58:0a:20:01:05',
  netns: '/var/run/netns/cni-1',
  address: '10.32.1.5',
  gateway: '10.32.1.1',
};

describe('CNI ADD result', () => {
  it('is a 1.x result with the pod interface in its sandbox and a default route via the gateway', () => {
    expect(buildAddResult('1.1.0', pod)).toEqual({
      cniVersion: '1.1.0',
      interfaces: [
        { name: pod.hostIf, mac: pod.hostMac },
        { name: 'eth0', mac: pod.podMac, sandbox: pod.netns },
      ],
      ips: [{ address: '10.32.1.5/32', gateway: '10.32.1.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.32.1.1' }],
      dns: {},
    });
  });

  it('marks IPs with version 4 for 0.4.0', () => {
    expect(buildAddResult('0.4.0', pod).ips[0]).toMatchObject({ version: '4', address: '10.32.1.5/32' });
  });

  it('appends to a previous plugin result, shifting interface indexes', () => {
    const prevResult = {
      interfaces: [{ name: 'lo', sandbox: pod.netns }],
      ips: [{ address: '127.0.0.1/8', interface: 0 }],
      routes: [],
      dns: { nameservers: ['10.96.0.10'] },
    };
    const result = buildAddResult('1.0.0', pod, prevResult);
    expect(result.interfaces.map((i) => i.name)).toEqual(['lo', pod.hostIf, 'eth0']);
    expect(result.ips[1]).toMatchObject({ address: '10.32.1.5/32', interface: 2 });
    expect(result.dns).toEqual({ nameservers: ['10.96.0.10'] });
    expect(prevResultAddress(result as unknown as Record<string, unknown>, 'eth0')).toBe('10.32.1.5');
  });
});

describe('attachment identity', () => {
  it('keys IPAM by container ID and interface, and names host veths stably within 15 bytes', () => {
    const key = attachmentKey({ containerId: 'a'.repeat(64), ifname: 'eth0' });
    expect(key).toBe(`${'a'.repeat(64)}:eth0`);
    expect(isAttachmentKey(key)).toBe(true);
    expect(isAttachmentKey('weft:gateway')).toBe(false);
    expect(isAttachmentKey('pod-made-by-hand')).toBe(false);
    expect(hostVethName(key)).toMatch(/^vwf[0-9a-f]{12}$/);
    expect(hostVethName(key)).toBe(hostVethName(key));
    expect(hostVethName(key)).not.toBe(
      hostVethName(attachmentKey({ containerId: 'a'.repeat(64), ifname: 'net1' })),
    );
    expect(hostVethMac(key)).toMatch(/^0e(:[0-9a-f]{2}){5}$/);
    expect(podMacFor('10.32.1.5')).toBe('0a:58:0a:20:01:05');
  });

  it('DEL needs no netns; ADD does', () => {
    const config = { cniVersion: '1.0.0', name: 'n', type: 'weft' };
    const env = { CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_NETNS: '' };
    expect(parseCniRequest(env, config)).toMatchObject({ command: 'DEL', netns: '', containerId: 'c1' });
    expect(() => parseCniRequest({ ...env, CNI_COMMAND: 'ADD' }, config)).toThrow('CNI_NETNS');
  });

  it('parses CNI_ARGS as runtimes send them', () => {
    const env = {
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'c1',
      CNI_IFNAME: 'eth0',
      CNI_NETNS: '/run/netns/x',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web',
    };
    expect(parseCniRequest(env, { cniVersion: '1.1.0', name: 'n', type: 'weft' }).args).toEqual({
      IgnoreUnknown: '1',
      K8S_POD_NAMESPACE: 'default',
      K8S_POD_NAME: 'web',
    });
  });
});

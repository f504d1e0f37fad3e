import { describe, expect, it } from 'vitest';
import { type NodePlumbingConfig, validateNodePlumbingConfig } from '../../../src/plumbing/index.js';
import { sysctlPath } from '../../../src/plumbing/sysctl.js';

const valid: NodePlumbingConfig = {
  bridge: 'weave',
  gatewayCidr: '10.32.1.1/24',
  tunName: 'weft0',
  clusterCidr: '10.32.0.0/12',
  mtu: 1464,
  txqueuelen: 10000,
};

describe('validateNodePlumbingConfig', () => {
  it('accepts a gateway inside the cluster range', () => {
    expect(() => validateNodePlumbingConfig(valid)).not.toThrow();
  });

  it.each([
    [{ gatewayCidr: '10.64.1.1/24' }, /not inside the cluster range/],
    [{ gatewayCidr: '10.32.1.1/8' }, /not inside the cluster range/],
    [{ clusterCidr: '10.32.1.0/12' }, /host bits set; did you mean 10\.32\.0\.0\/12/],
    [{ gatewayCidr: '10.32.1.1' }, /needs the pod prefix length/],
    [{ gatewayCidr: '10.32.1.1/31' }, /needs the pod prefix length/],
    [{ gatewayCidr: '10.32.1.0/24' }, /network address/],
    [{ mtu: 500 }, /MTU 500 is outside 576/],
    [{ txqueuelen: 0 }, /txqueuelen 0/],
    [{ clusterCidr: 'cluster' }, /not an IPv4 CIDR/],
  ] as const)('rejects %o', (change, message) => {
    expect(() => validateNodePlumbingConfig({ ...valid, ...change })).toThrow(message);
  });
});

describe('sysctlPath', () => {
  it('joins segments, so interface names may contain dots', () => {
    expect(sysctlPath(['net', 'ipv4', 'conf', 'eth0.100', 'rp_filter'])).toBe(
      '/proc/sys/net/ipv4/conf/eth0.100/rp_filter',
    );
  });

  it('refuses segments that would leave /proc/sys', () => {
    expect(() => sysctlPath(['net', '..', 'x'])).toThrow(/bad sysctl segment/);
    expect(() => sysctlPath(['net', 'ipv4/../../x'])).toThrow(/bad sysctl segment/);
  });
});

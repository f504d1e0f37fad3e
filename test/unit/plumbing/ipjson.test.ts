import { describe, expect, it } from 'vitest';
import { parseAddresses, parseIpv4Routes, parseLinks } from '../../../src/plumbing/ipjson.js';
import { ADDR_JSON, LINKS_DETAILS_JSON, ROUTES_JSON } from './samples.js';

describe('parseLinks', () => {
  const links = parseLinks(LINKS_DETAILS_JSON);

  it('reads name, kind, MTU, queue length and master', () => {
    expect(links.find((l) => l.name === 'weave')).toMatchObject({
      index: 2,
      kind: 'bridge',
      mtu: 1464,
      master: undefined,
    });
    expect(links.find((l) => l.name === 'vp1')).toMatchObject({ kind: 'veth', master: 'weave' });
    expect(links.find((l) => l.name === 'wtun0')).toMatchObject({ kind: 'tun', txqueuelen: 10000 });
    expect(links.find((l) => l.name === 'lo')?.kind).toBeUndefined();
  });

  it('takes "up" from the UP flag, not the operstate', () => {
    // A bridge without carrier and a TUN without a reader are administratively up.
    expect(links.find((l) => l.name === 'weave')?.up).toBe(true);
    expect(links.find((l) => l.name === 'wtun0')?.up).toBe(true);
    expect(links.find((l) => l.name === 'lo')?.up).toBe(false);
  });

  it('treats empty output as no links and rejects what is not ip -json output', () => {
    expect(parseLinks('')).toEqual([]);
    expect(parseLinks('\n')).toEqual([]);
    expect(() => parseLinks('Device "x" does not exist.')).toThrow(/not JSON/);
    expect(() => parseLinks('[{"ifname":"x"}]')).toThrow(/unexpected JSON shape/);
  });
});

describe('parseAddresses', () => {
  const addresses = parseAddresses(ADDR_JSON);

  it('flattens addresses with their link name and MTU', () => {
    expect(addresses.filter((a) => a.family === 'inet')).toEqual([
      { ifname: 'weave', mtu: 1464, family: 'inet', local: '10.32.1.1', prefixLength: 24, scope: 'global' },
      { ifname: 'ul0', mtu: 1500, family: 'inet', local: '192.168.199.1', prefixLength: 24, scope: 'global' },
    ]);
  });

  it('keeps IPv6 addresses apart by family', () => {
    expect(addresses.filter((a) => a.family === 'inet6').map((a) => a.ifname)).toEqual([
      'weave',
      'vg0',
      'ul0',
    ]);
  });
});

describe('parseIpv4Routes', () => {
  const routes = parseIpv4Routes(ROUTES_JSON);

  it('normalises destinations: host routes get /32, default stays', () => {
    expect(routes.map((r) => r.dst)).toEqual([
      'default',
      '10.32.0.0/12',
      '10.32.1.0/24',
      '10.32.2.0/24',
      '10.40.0.5/32',
      '10.50.0.0/16',
      '192.168.199.0/24',
    ]);
  });

  it('fills in the protocol and type ip leaves out', () => {
    expect(routes[1]).toMatchObject({
      dev: 'wtun0',
      protocol: 'boot',
      type: 'unicast',
      prefsrc: '10.32.1.1',
    });
    expect(routes[2]).toMatchObject({ dev: 'weave', protocol: 'kernel' });
    expect(routes[5]).toMatchObject({ dev: undefined, type: 'unreachable' });
  });

  it('keeps the route destination of an encap route apart from its outer destination', () => {
    expect(routes[3]).toMatchObject({ dst: '10.32.2.0/24', dev: 'vg0', encapDst: '192.168.199.2' });
    expect(routes.filter((r) => r.encapDst !== undefined)).toHaveLength(1);
  });
});

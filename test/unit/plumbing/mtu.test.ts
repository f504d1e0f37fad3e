import { describe, expect, it } from 'vitest';
import { parseAddresses } from '../../../src/plumbing/ipjson.js';
import {
  findInterfaceWithAddress,
  MIN_OVERLAY_MTU,
  overlayMtu,
  VXLAN_GPE_OVERHEAD,
} from '../../../src/plumbing/mtu.js';
import { ADDR_JSON } from './samples.js';

describe('overlayMtu', () => {
  it('subtracts outer IPv4, UDP and GPE headers', () => {
    expect(VXLAN_GPE_OVERHEAD).toBe(20 + 8 + 8);
    expect(overlayMtu(1500)).toBe(1464);
    expect(overlayMtu(9001)).toBe(8965);
    expect(overlayMtu(MIN_OVERLAY_MTU + 36)).toBe(MIN_OVERLAY_MTU);
  });

  it('explains an underlay too small for encapsulated pods', () => {
    expect(() => overlayMtu(600)).toThrow(/underlay MTU 600 leaves 564 bytes.*at least 612/);
    expect(() => overlayMtu(0)).toThrow(RangeError);
  });

  it('rejects values that are no MTU', () => {
    expect(() => overlayMtu(1500.5)).toThrow(/not an integer/);
    expect(() => overlayMtu(Number.NaN)).toThrow(/not an integer/);
    expect(() => overlayMtu(70000)).toThrow(/up to 65535/);
  });
});

describe('findInterfaceWithAddress', () => {
  const addresses = parseAddresses(ADDR_JSON);

  it('finds the interface holding an IPv4 address and its MTU', () => {
    expect(findInterfaceWithAddress(addresses, '192.168.199.1')).toEqual({ ifname: 'ul0', mtu: 1500 });
    expect(findInterfaceWithAddress(addresses, '10.32.1.1')).toEqual({ ifname: 'weave', mtu: 1464 });
  });

  it('says so when no interface holds it', () => {
    expect(() => findInterfaceWithAddress(addresses, '192.168.199.2')).toThrow(
      /no interface holds .*192\.168\.199\.2/,
    );
  });
});

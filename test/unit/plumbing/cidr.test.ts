import { describe, expect, it } from 'vitest';
import { canonicalCidr, hostAddress, parseIpv4Cidr } from '../../../src/plumbing/cidr.js';
import { ipv4ToUint32, uint32ToIpv4 } from '../../../src/util/ipv4.js';

describe('IPv4 CIDRs', () => {
  it('converts addresses to integers and back', () => {
    expect(ipv4ToUint32('10.32.1.1')).toBe(0x0a200101);
    expect(ipv4ToUint32('255.255.255.255')).toBe(0xffffffff);
    expect(uint32ToIpv4(0xc0a8c701)).toBe('192.168.199.1');
  });

  it('parses a CIDR into address, prefix length and canonical network', () => {
    expect(parseIpv4Cidr('10.32.1.1/24')).toEqual({
      address: '10.32.1.1',
      prefixLength: 24,
      network: '10.32.1.0/24',
    });
    expect(canonicalCidr('10.47.255.255/12')).toBe('10.32.0.0/12');
    expect(canonicalCidr('10.40.0.5')).toBe('10.40.0.5/32');
    expect(canonicalCidr('1.2.3.4/0')).toBe('0.0.0.0/0');
  });

  it('rejects malformed input', () => {
    for (const bad of [
      '10.32.1/24',
      '10.32.1.256/24',
      '10.32.1.1/33',
      '10.32.1.1/',
      '10.32.1.1/24/1',
      '01.2.3.4/8',
      'default',
    ]) {
      expect(() => parseIpv4Cidr(bad), bad).toThrow(RangeError);
    }
  });

  it('numbers hosts from the network address', () => {
    expect(hostAddress('10.32.2.0/24', 1)).toBe('10.32.2.1');
    expect(hostAddress('10.32.2.77/24', 2)).toBe('10.32.2.2');
    expect(hostAddress('192.168.199.0/30', 3)).toBe('192.168.199.3');
    expect(() => hostAddress('192.168.199.0/30', 4)).toThrow(/outside/);
  });
});

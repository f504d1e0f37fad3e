/** IPv4 addresses and prefixes as the plumbing needs them: parsing, canonical form, host addresses. */
import { ipv4ToUint32, isIpv4, uint32ToIpv4 } from '../util/ipv4.js';

export interface Ipv4Cidr {
  /** The address as written, e.g. 10.32.1.1 in 10.32.1.1/24. */
  address: string;
  prefixLength: number;
  /** Canonical network, e.g. 10.32.1.0/24. */
  network: string;
}

function maskOf(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** Parses `a.b.c.d/n`; a bare address counts as /32 (as `ip route` prints host routes). */
export function parseIpv4Cidr(text: string): Ipv4Cidr {
  const [address = '', length, ...rest] = text.split('/');
  const prefixLength = length === undefined ? 32 : Number(length);
  const addressValue = isIpv4(address) ? ipv4ToUint32(address) : undefined;
  if (
    addressValue === undefined ||
    rest.length > 0 ||
    !/^\d{1,2}$/.test(length ?? '32') ||
    prefixLength > 32
  ) {
    throw new RangeError(`not an IPv4 CIDR: "${text}"`);
  }
  const network = (addressValue & maskOf(prefixLength)) >>> 0;
  return { address, prefixLength, network: `${uint32ToIpv4(network)}/${prefixLength}` };
}

/** The canonical network of a CIDR: 10.32.1.7/24 → 10.32.1.0/24, 10.0.0.1 → 10.0.0.1/32. */
export function canonicalCidr(text: string): string {
  return parseIpv4Cidr(text).network;
}

/** The n-th address of a network: hostAddress('10.32.1.0/24', 1) = 10.32.1.1. */
export function hostAddress(cidr: string, n: number): string {
  const { network, prefixLength } = parseIpv4Cidr(cidr);
  const size = 2 ** (32 - prefixLength);
  if (!Number.isInteger(n) || n < 0 || n >= size) throw new RangeError(`host ${n} is outside ${network}`);
  return uint32ToIpv4(ipv4ToUint32(network.split('/')[0] as string) + n);
}

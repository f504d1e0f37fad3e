/** IPv4 addresses and prefixes as the plumbing needs them: parsing, canonical form, host addresses. */

export interface Ipv4Cidr {
  /** The address as written, e.g. 10.32.1.1 in 10.32.1.1/24. */
  address: string;
  prefixLength: number;
  /** Canonical network, e.g. 10.32.1.0/24. */
  network: string;
}

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4_ADDRESS = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

export function ipv4ToInt(address: string): number {
  if (!IPV4_ADDRESS.test(address)) throw new RangeError(`not an IPv4 address: "${address}"`);
  return address.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIpv4(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new RangeError(`not an IPv4 value: ${value}`);
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff].join('.');
}

function maskOf(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** Parses `a.b.c.d/n`; a bare address counts as /32 (as `ip route` prints host routes). */
export function parseIpv4Cidr(text: string): Ipv4Cidr {
  const [address = '', length, ...rest] = text.split('/');
  const prefixLength = length === undefined ? 32 : Number(length);
  const addressValue = IPV4_ADDRESS.test(address) ? ipv4ToInt(address) : undefined;
  if (
    addressValue === undefined ||
    rest.length > 0 ||
    !/^\d{1,2}$/.test(length ?? '32') ||
    prefixLength > 32
  ) {
    throw new RangeError(`not an IPv4 CIDR: "${text}"`);
  }
  const network = (addressValue & maskOf(prefixLength)) >>> 0;
  return { address, prefixLength, network: `${intToIpv4(network)}/${prefixLength}` };
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
  return intToIpv4(ipv4ToInt(network.split('/')[0] as string) + n);
}

/** IPv4 addresses as unsigned 32-bit integers (10.0.0.1 = 0x0a000001), the form every module computes with. */

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const DOTTED_QUAD = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

export function isIpv4(text: string): boolean {
  return DOTTED_QUAD.test(text);
}

/** Dotted quad to integer; anything else (leading zeros, out-of-range octets) is a RangeError. */
export function ipv4ToUint32(address: string): number {
  if (!DOTTED_QUAD.test(address)) throw new RangeError(`not an IPv4 address: "${address}"`);
  return address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
}

export function uint32ToIpv4(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw new RangeError(`not an IPv4 value: ${value}`);
  return `${value >>> 24}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`;
}

/** An IPv4 network: its first address and prefix length. */
export interface Ipv4Network {
  start: number;
  prefix: number;
}

/** Parses `a.b.c.d/n` where a.b.c.d is the network address itself (no host bits set). */
export function parseIpv4Network(text: string): Ipv4Network {
  const match = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  const prefix = Number(match?.[2]);
  if (!match || !isIpv4(match[1] as string) || prefix > 32) {
    throw new RangeError(`not an IPv4 CIDR block: '${text}'`);
  }
  const address = ipv4ToUint32(match[1] as string);
  const size = 2 ** (32 - prefix);
  const start = address - (address % size);
  if (start !== address) {
    throw new RangeError(`'${text}' has host bits set; did you mean ${uint32ToIpv4(start)}/${prefix}?`);
  }
  return { start, prefix };
}

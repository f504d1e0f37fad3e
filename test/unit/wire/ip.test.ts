import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv4ToUint32 } from '../../../src/dataplane/io.js';
import {
  ipVersion,
  ipv4Destination,
  ipv4HeaderChecksum,
  ipv4HeaderLength,
  ipv4Source,
  ipv4TotalLength,
  ipv4Ttl,
  ipv6HopLimit,
  ipv6PayloadLength,
  verifyIpv4HeaderChecksum,
} from '../../../src/wire/ip.js';
import { hex, ipv4Packet } from './packets.js';

// ping -s 8 10.32.0.2 from 10.32.0.1: IPv4 header (checksum 0x0a51) + ICMP echo request
// (id 0x1234, seq 1, checksum 0x2920, payload "weftping"). Checksums computed independently.
const ICMP_ECHO = hex(`
  45 00 00 24 1c 46 40 00 40 01 0a 51 0a 20 00 01 0a 20 00 02
  08 00 29 20 12 34 00 01 77 65 66 74 70 69 6e 67`);

// The worked example from the Wikipedia "IPv4 header checksum" article: checksum 0xb861.
const WIKIPEDIA_HEADER = hex('45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7');

// fd00::1 -> fd00::2, UDP (17), hop limit 64, traffic class 0xb8, flow label 0x12345, 8-byte payload.
const IPV6_UDP = hex(`
  6b 81 23 45 00 08 11 40
  fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01
  fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02
  c3 50 00 35 00 08 00 00`);

describe('IPv4 peeks', () => {
  it('reads the fields of a real ICMP echo request', () => {
    expect(ipVersion(ICMP_ECHO, 0)).toBe(4);
    expect(ipv4HeaderLength(ICMP_ECHO, 0)).toBe(20);
    expect(ipv4TotalLength(ICMP_ECHO, 0)).toBe(36);
    expect(ipv4Ttl(ICMP_ECHO, 0)).toBe(64);
    expect(ipv4Source(ICMP_ECHO, 0)).toBe(ipv4ToUint32('10.32.0.1'));
    expect(ipv4Destination(ICMP_ECHO, 0)).toBe(ipv4ToUint32('10.32.0.2'));
  });

  it('reads at an offset inside a larger buffer', () => {
    const buf = Buffer.alloc(100, 0xee);
    ICMP_ECHO.copy(buf, 37);
    expect(ipv4Source(buf, 37)).toBe(0x0a200001);
    expect(ipv4Destination(buf, 37)).toBe(0x0a200002);
    expect(ipv4TotalLength(buf, 37)).toBe(36);
  });

  it('returns addresses with the high bit set as unsigned numbers', () => {
    expect(ipv4Source(WIKIPEDIA_HEADER, 0)).toBe(0xc0a80001);
    expect(ipv4Destination(WIKIPEDIA_HEADER, 0)).toBe(ipv4ToUint32('192.168.0.199'));
    expect(ipv4Source(hex('45000014 00000000 4000 0000 ffffffff 00000000'), 0)).toBe(0xffffffff);
  });

  it('reads IHL in bytes, options included', () => {
    expect(ipv4HeaderLength(hex('4f'), 0)).toBe(60);
    expect(ipv4HeaderLength(hex('46'), 0)).toBe(24);
  });
});

describe('IPv6 peeks', () => {
  it('reads version, payload length and hop limit', () => {
    expect(ipVersion(IPV6_UDP, 0)).toBe(6);
    expect(ipv6PayloadLength(IPV6_UDP, 0)).toBe(8);
    expect(ipv6HopLimit(IPV6_UDP, 0)).toBe(64);
  });
});

describe('IPv4 header checksum', () => {
  it('matches the published example', () => {
    expect(ipv4HeaderChecksum(WIKIPEDIA_HEADER, 0)).toBe(0xb861);
    expect(verifyIpv4HeaderChecksum(WIKIPEDIA_HEADER, 0)).toBe(true);
  });

  it('matches the ICMP packet and ignores the current checksum field value', () => {
    expect(ipv4HeaderChecksum(ICMP_ECHO, 0)).toBe(0x0a51);
    const zeroed = Buffer.from(ICMP_ECHO);
    zeroed.writeUInt16BE(0, 10);
    expect(ipv4HeaderChecksum(zeroed, 0)).toBe(0x0a51);
    expect(verifyIpv4HeaderChecksum(zeroed, 0)).toBe(false);
  });

  it('covers options and nothing past IHL', () => {
    const withOptions = hex('46 00 00 18 00 00 00 00 40 01 00 00 0a 00 00 01 0a 00 00 02 01 01 01 00');
    withOptions.writeUInt16BE(ipv4HeaderChecksum(withOptions, 0), 10);
    expect(verifyIpv4HeaderChecksum(withOptions, 0)).toBe(true);
    withOptions[22] = 0x07;
    expect(verifyIpv4HeaderChecksum(withOptions, 0)).toBe(false);

    const withPayload = Buffer.concat([WIKIPEDIA_HEADER, hex('ffff 1234')]);
    expect(verifyIpv4HeaderChecksum(withPayload, 0)).toBe(true);
  });

  it('detects every single-bit error in the header', () => {
    for (let bit = 0; bit < 160; bit++) {
      const header = Buffer.from(ICMP_ECHO);
      header[bit >> 3] = (header[bit >> 3] as number) ^ (0x80 >> (bit & 7));
      // Flipping the IHL can shrink the checked range, which a checksum cannot be expected to catch.
      if (bit >= 4 && bit < 8) continue;
      expect(verifyIpv4HeaderChecksum(header, 0), `bit ${bit}`).toBe(false);
    }
  });

  it('a header with its computed checksum verifies, and any changed header byte is detected', () => {
    fc.assert(
      fc.property(ipv4Packet, fc.nat(), fc.integer({ min: 1, max: 255 }), (packet, at, delta) => {
        expect(verifyIpv4HeaderChecksum(packet, 0)).toBe(true);
        const headerLength = ipv4HeaderLength(packet, 0);
        const index = at % headerLength;
        if (index === 0) return; // the IHL nibble decides which bytes are summed
        packet[index] = ((packet[index] as number) + delta) & 0xff;
        expect(verifyIpv4HeaderChecksum(packet, 0)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

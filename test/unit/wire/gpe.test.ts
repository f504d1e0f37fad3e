import { describe, expect, it } from 'vitest';
import {
  checkGpeDatagram,
  decodeGpe,
  describeVerdict,
  encodeGpe,
  GPE_DEFAULT_PORT,
  GPE_HEADER_LENGTH,
  innerPacketLength,
  type NextProtocol,
  NextProtocol as Np,
  verdictName,
  WireVerdict,
  writeGpeHeader,
} from '../../../src/wire/index.js';
import { verifyIpv4HeaderChecksum } from '../../../src/wire/ip.js';
import { hex } from './packets.js';

// What Linux's `vxlan gpe` device puts in front of an IPv4 packet on VNI 1.
const KERNEL_HEADER_VNI1_IPV4 = hex('0c 00 00 01 00 00 01 00');
const HEADER_VNI_ABCDEF_IPV6 = hex('0c 00 00 02 ab cd ef 00');

// ping -s 8 10.32.0.2 from 10.32.0.1 (see ip.test.ts): 36 bytes, header checksum 0x0a51.
const ICMP_ECHO = hex(`
  45 00 00 24 1c 46 40 00 40 01 0a 51 0a 20 00 01 0a 20 00 02
  08 00 29 20 12 34 00 01 77 65 66 74 70 69 6e 67`);

// fd00::1 -> fd00::2, UDP, 8-byte payload: 48 bytes.
const IPV6_UDP = hex(`
  6b 81 23 45 00 08 11 40
  fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01
  fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02
  c3 50 00 35 00 08 00 00`);

const ICMP_DATAGRAM = Buffer.concat([KERNEL_HEADER_VNI1_IPV4, ICMP_ECHO]);
const IPV6_DATAGRAM = Buffer.concat([HEADER_VNI_ABCDEF_IPV6, IPV6_UDP]);

function check(datagram: Buffer, expectedVni = 1): WireVerdict {
  return checkGpeDatagram(datagram, 0, datagram.length, expectedVni);
}

/** The ICMP datagram with bytes replaced at the given offsets. */
function patched(base: Buffer, patches: Record<number, number>): Buffer {
  const copy = Buffer.from(base);
  for (const [at, value] of Object.entries(patches)) copy[Number(at)] = value;
  return copy;
}

describe('constants', () => {
  it('match the draft', () => {
    expect(GPE_HEADER_LENGTH).toBe(8);
    expect(GPE_DEFAULT_PORT).toBe(4790);
    expect(Np).toEqual({ IPv4: 1, IPv6: 2, Ethernet: 3, Nsh: 4 });
  });

  it('gives every verdict a distinct value, name and description', () => {
    const values = Object.values(WireVerdict);
    expect(WireVerdict.Ok).toBe(0);
    expect(new Set(values).size).toBe(values.length);
    const names = values.map((v) => verdictName[v]);
    const descriptions = values.map((v) => describeVerdict(v));
    expect(new Set(names).size).toBe(values.length);
    expect(new Set(descriptions).size).toBe(values.length);
    for (const name of names) expect(name).toMatch(/^[a-z]+(_[a-z]+)*$/);
    expect(verdictName[WireVerdict.WrongVni]).toBe('wrong_vni');
  });
});

describe('writeGpeHeader', () => {
  it('writes the kernel header for VNI 1 / IPv4', () => {
    const buf = Buffer.alloc(8);
    writeGpeHeader(buf, 0, 1, Np.IPv4);
    expect(buf).toEqual(KERNEL_HEADER_VNI1_IPV4);
  });

  it('writes VNI 0xabcdef / IPv6 big-endian', () => {
    const buf = Buffer.alloc(8);
    writeGpeHeader(buf, 0, 0xabcdef, Np.IPv6);
    expect(buf).toEqual(HEADER_VNI_ABCDEF_IPV6);
  });

  it('clears stale bytes and touches nothing outside its 8 bytes', () => {
    const buf = Buffer.alloc(20, 0xff);
    writeGpeHeader(buf, 6, 0xffffff, Np.Ethernet);
    expect(buf).toEqual(hex('ffffffffffff 0c000003 ffffff00 ffffffffffff'));
  });

  it('rejects out-of-range VNIs and next protocols', () => {
    const buf = Buffer.alloc(8);
    for (const vni of [-1, 0x1000000, 1.5, Number.NaN]) {
      expect(() => writeGpeHeader(buf, 0, vni, Np.IPv4), `vni ${vni}`).toThrow(RangeError);
    }
    for (const np of [0, 5, 0x101]) {
      expect(() => writeGpeHeader(buf, 0, 1, np as NextProtocol), `np ${np}`).toThrow(RangeError);
    }
    expect(buf).toEqual(Buffer.alloc(8));
  });

  it('refuses to write past the end of the buffer', () => {
    expect(() => writeGpeHeader(Buffer.alloc(10), 3, 1, Np.IPv4)).toThrow(RangeError);
    expect(() => writeGpeHeader(Buffer.alloc(10), -1, 1, Np.IPv4)).toThrow(RangeError);
  });
});

describe('accepting datagrams', () => {
  it('accepts an ICMP echo on VNI 1 and locates the inner packet', () => {
    expect(check(ICMP_DATAGRAM)).toBe(WireVerdict.Ok);
    const decoded = decodeGpe(ICMP_DATAGRAM, 0, ICMP_DATAGRAM.length, 1);
    expect(decoded).toEqual({ ok: true, vni: 1, nextProtocol: Np.IPv4, innerOffset: 8, innerLength: 36 });
    expect(verifyIpv4HeaderChecksum(ICMP_DATAGRAM, 8)).toBe(true);
  });

  it('accepts IPv6 on VNI 0xabcdef', () => {
    expect(check(IPV6_DATAGRAM, 0xabcdef)).toBe(WireVerdict.Ok);
    expect(decodeGpe(IPV6_DATAGRAM, 0, IPV6_DATAGRAM.length, 0xabcdef)).toEqual({
      ok: true,
      vni: 0xabcdef,
      nextProtocol: Np.IPv6,
      innerOffset: 8,
      innerLength: 48,
    });
  });

  it('encodeGpe produces the kernel bytes', () => {
    expect(encodeGpe({ vni: 1, nextProtocol: Np.IPv4 }, ICMP_ECHO)).toEqual(ICMP_DATAGRAM);
    expect(encodeGpe({ vni: 0xabcdef, nextProtocol: Np.IPv6 }, IPV6_UDP)).toEqual(IPV6_DATAGRAM);
  });

  it('checks a datagram in the middle of a batch buffer, ignoring bytes around it', () => {
    const slot = Buffer.alloc(256, 0xaa);
    ICMP_DATAGRAM.copy(slot, 100);
    expect(checkGpeDatagram(slot, 100, ICMP_DATAGRAM.length, 1)).toBe(WireVerdict.Ok);
    expect(decodeGpe(slot, 100, ICMP_DATAGRAM.length, 1)).toMatchObject({ ok: true, innerOffset: 108 });
    // One byte short of the stated inner length, though the buffer itself goes on.
    expect(checkGpeDatagram(slot, 100, ICMP_DATAGRAM.length - 1, 1)).toBe(WireVerdict.InnerLengthMismatch);
  });

  it('accepts trailing bytes after the inner packet but reports only the stated length', () => {
    const padded = Buffer.concat([ICMP_DATAGRAM, Buffer.alloc(10)]);
    expect(check(padded)).toBe(WireVerdict.Ok);
    expect(decodeGpe(padded, 0, padded.length, 1)).toMatchObject({ ok: true, innerLength: 36 });
    expect(innerPacketLength(padded, 8, padded.length - 8)).toBe(36);
  });

  it('ignores reserved bits and the B flag on receipt', () => {
    expect(check(patched(ICMP_DATAGRAM, { 0: 0xce, 1: 0xff, 2: 0x01, 7: 0x80 }))).toBe(WireVerdict.Ok);
  });

  it('accepts VNI 0 and the largest VNI', () => {
    expect(check(patched(ICMP_DATAGRAM, { 6: 0 }), 0)).toBe(WireVerdict.Ok);
    expect(check(patched(ICMP_DATAGRAM, { 4: 0xff, 5: 0xff, 6: 0xff }), 0xffffff)).toBe(WireVerdict.Ok);
  });
});

describe('rejecting datagrams', () => {
  const ipv6OnIpv4 = Buffer.concat([KERNEL_HEADER_VNI1_IPV4, IPV6_UDP]);
  const ipv4OnIpv6 = Buffer.concat([HEADER_VNI_ABCDEF_IPV6, ICMP_ECHO]);
  const cases: [string, Buffer, number, WireVerdict][] = [
    ['empty datagram', Buffer.alloc(0), 1, WireVerdict.TooShort],
    ['7-byte datagram', hex('0c 00 00 01 00 00 01'), 1, WireVerdict.TooShort],
    ['plain VXLAN (I only)', patched(ICMP_DATAGRAM, { 0: 0x08 }), 1, WireVerdict.BadFlags],
    ['P without I', patched(ICMP_DATAGRAM, { 0: 0x04 }), 1, WireVerdict.BadFlags],
    ['no flags', patched(ICMP_DATAGRAM, { 0: 0x00 }), 1, WireVerdict.BadFlags],
    ['version 1', patched(ICMP_DATAGRAM, { 0: 0x1c }), 1, WireVerdict.BadVersion],
    ['version 3', patched(ICMP_DATAGRAM, { 0: 0x3c }), 1, WireVerdict.BadVersion],
    ['OAM', patched(ICMP_DATAGRAM, { 0: 0x0d }), 1, WireVerdict.OamPacket],
    ['next protocol 0', patched(ICMP_DATAGRAM, { 3: 0x00 }), 1, WireVerdict.UnsupportedNextProtocol],
    ['next protocol Ethernet', patched(ICMP_DATAGRAM, { 3: 0x03 }), 1, WireVerdict.UnsupportedNextProtocol],
    ['next protocol NSH', patched(ICMP_DATAGRAM, { 3: 0x04 }), 1, WireVerdict.UnsupportedNextProtocol],
    ['next protocol 0xff', patched(ICMP_DATAGRAM, { 3: 0xff }), 1, WireVerdict.UnsupportedNextProtocol],
    ['VNI 2 on network 1', patched(ICMP_DATAGRAM, { 6: 0x02 }), 1, WireVerdict.WrongVni],
    ['VNI 0x010001 on network 1', patched(ICMP_DATAGRAM, { 4: 0x01 }), 1, WireVerdict.WrongVni],
    ['IPv4 next protocol, IPv6 inside', ipv6OnIpv4, 1, WireVerdict.InnerVersionMismatch],
    ['IPv6 next protocol, IPv4 inside', ipv4OnIpv6, 0xabcdef, WireVerdict.InnerVersionMismatch],
    ['inner version 0', patched(ICMP_DATAGRAM, { 8: 0x05 }), 1, WireVerdict.InnerVersionMismatch],
    ['header only', KERNEL_HEADER_VNI1_IPV4, 1, WireVerdict.InnerTooShort],
    ['19-byte IPv4', ICMP_DATAGRAM.subarray(0, 8 + 19), 1, WireVerdict.InnerTooShort],
    ['IPv4 IHL 4', patched(ICMP_DATAGRAM, { 8: 0x44 }), 1, WireVerdict.InnerTooShort],
    ['IPv4 IHL 15 in 36 bytes', patched(ICMP_DATAGRAM, { 8: 0x4f }), 1, WireVerdict.InnerTooShort],
    ['39-byte IPv6', IPV6_DATAGRAM.subarray(0, 8 + 39), 0xabcdef, WireVerdict.InnerTooShort],
    [
      'IPv4 total length past the end',
      patched(ICMP_DATAGRAM, { 11: 0x25 }),
      1,
      WireVerdict.InnerLengthMismatch,
    ],
    ['IPv4 total length below IHL', patched(ICMP_DATAGRAM, { 11: 0x13 }), 1, WireVerdict.InnerLengthMismatch],
    ['truncated ICMP', ICMP_DATAGRAM.subarray(0, 8 + 30), 1, WireVerdict.InnerLengthMismatch],
    [
      'IPv6 payload past the end',
      patched(IPV6_DATAGRAM, { 13: 0x09 }),
      0xabcdef,
      WireVerdict.InnerLengthMismatch,
    ],
  ];

  it.each(cases)('%s', (_name, datagram, expectedVni, verdict) => {
    expect(checkGpeDatagram(datagram, 0, datagram.length, expectedVni)).toBe(verdict);
    expect(decodeGpe(datagram, 0, datagram.length, expectedVni)).toEqual({
      ok: false,
      verdict,
      reason: describeVerdict(verdict),
    });
  });

  it('covers every rejection reason', () => {
    const covered = new Set(cases.map(([, , , verdict]) => verdict));
    const rejections = Object.values(WireVerdict).filter((v) => v !== WireVerdict.Ok);
    expect([...covered].sort()).toEqual(rejections.sort());
  });

  it('reports the first failing check: flags before VNI before inner packet', () => {
    expect(check(patched(ICMP_DATAGRAM, { 0: 0x08, 6: 0x02, 8: 0x60 }))).toBe(WireVerdict.BadFlags);
    expect(check(patched(ICMP_DATAGRAM, { 0: 0x1d }))).toBe(WireVerdict.BadVersion);
    expect(check(patched(ICMP_DATAGRAM, { 3: 0x03, 6: 0x02 }))).toBe(WireVerdict.UnsupportedNextProtocol);
    expect(check(patched(ICMP_DATAGRAM, { 6: 0x02, 8: 0x60 }))).toBe(WireVerdict.WrongVni);
  });

  it('throws RangeError only when the range lies outside the buffer', () => {
    expect(() => checkGpeDatagram(ICMP_DATAGRAM, 0, ICMP_DATAGRAM.length + 1, 1)).toThrow(RangeError);
    expect(() => checkGpeDatagram(ICMP_DATAGRAM, 40, 5, 1)).toThrow(RangeError);
    expect(() => checkGpeDatagram(ICMP_DATAGRAM, -1, 4, 1)).toThrow(RangeError);
    expect(() => decodeGpe(ICMP_DATAGRAM, 0, -1, 1)).toThrow(RangeError);
    expect(checkGpeDatagram(ICMP_DATAGRAM, ICMP_DATAGRAM.length, 0, 1)).toBe(WireVerdict.TooShort);
  });
});

describe('innerPacketLength', () => {
  it('reads IPv4 total length and IPv6 payload length + 40', () => {
    expect(innerPacketLength(ICMP_ECHO, 0, ICMP_ECHO.length)).toBe(36);
    expect(innerPacketLength(IPV6_UDP, 0, IPV6_UDP.length)).toBe(48);
  });

  it('caps at the bytes available and is 0 for anything it cannot read', () => {
    expect(innerPacketLength(ICMP_ECHO, 0, 30)).toBe(30);
    expect(innerPacketLength(ICMP_ECHO, 0, 3)).toBe(0);
    expect(innerPacketLength(IPV6_UDP, 0, 5)).toBe(0);
    expect(innerPacketLength(ICMP_ECHO, 0, 0)).toBe(0);
    expect(innerPacketLength(hex('55 00 00 24'), 0, 4)).toBe(0);
  });
});

import { describe, expect, test } from 'vitest';
import { buildEchoRequest, checksum, parseIcmpAnswer } from '../../../src/probe/icmp.js';
import { ipv4ToUint32 } from '../../../src/util/ipv4.js';

function ipv4(protocol: number, payload: Buffer, source = '10.0.0.1', destination = '10.0.0.2'): Buffer {
  const header = Buffer.alloc(20);
  header[0] = 0x45;
  header.writeUInt16BE(20 + payload.length, 2);
  header[8] = 64;
  header[9] = protocol;
  header.writeUInt32BE(ipv4ToUint32(source), 12);
  header.writeUInt32BE(ipv4ToUint32(destination), 16);
  return Buffer.concat([header, payload]);
}

describe('ICMP echo encoding', () => {
  test('an echo request has type 8, our id and sequence, the asked length and a valid checksum', () => {
    const packet = buildEchoRequest(0xbeef, 7, 100);
    expect(packet.length).toBe(100);
    expect(packet[0]).toBe(8);
    expect(packet.readUInt16BE(4)).toBe(0xbeef);
    expect(packet.readUInt16BE(6)).toBe(7);
    expect(checksum(packet)).toBe(0);
  });

  test('checksum: RFC 1071 example sum, and an odd length is padded with a zero byte', () => {
    // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement), checksum 220d.
    expect(checksum(Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]))).toBe(0x220d);
    const odd = Buffer.from([0x12, 0x34, 0x56]);
    expect(checksum(odd)).toBe(checksum(Buffer.from([0x12, 0x34, 0x56, 0x00])));
  });

  test('parses an echo reply behind the IP header, with the replying peer (its source)', () => {
    const reply = buildEchoRequest(42, 9, 64);
    reply[0] = 0;
    expect(parseIcmpAnswer(ipv4(1, reply, '192.168.7.3', '192.168.7.1'))).toEqual({
      kind: 'echo-reply',
      peer: '192.168.7.3',
      id: 42,
      seq: 9,
    });
  });

  test('parses "fragmentation needed" with the next-hop MTU and the quoted echo id/seq and peer', () => {
    // Sent by a router (10.9.9.9), quoting our echo to the peer 192.168.7.3.
    const quoted = ipv4(1, buildEchoRequest(42, 10, 1472), '192.168.7.1', '192.168.7.3').subarray(0, 28);
    const error = Buffer.alloc(8);
    error[0] = 3;
    error[1] = 4;
    error.writeUInt16BE(1400, 6);
    const fromRouter = (icmp: Buffer) => ipv4(1, icmp, '10.9.9.9', '192.168.7.1');
    expect(parseIcmpAnswer(fromRouter(Buffer.concat([error, quoted])))).toEqual({
      kind: 'frag-needed',
      peer: '192.168.7.3',
      id: 42,
      seq: 10,
      nextHopMtu: 1400,
    });
    error.writeUInt16BE(0, 6);
    expect(parseIcmpAnswer(fromRouter(Buffer.concat([error, quoted])))).toMatchObject({ nextHopMtu: null });
    error[1] = 1;
    expect(parseIcmpAnswer(fromRouter(Buffer.concat([error, quoted])))).toEqual({
      kind: 'unreachable',
      peer: '192.168.7.3',
      id: 42,
      seq: 10,
      code: 1,
    });
  });

  test('ignores what is not an answer to an echo: requests, short or non-IPv4 data, other quoted protocols', () => {
    expect(parseIcmpAnswer(ipv4(1, buildEchoRequest(1, 1, 64)))).toBeUndefined();
    expect(parseIcmpAnswer(Buffer.alloc(10))).toBeUndefined();
    const v6 = ipv4(1, buildEchoRequest(1, 1, 64));
    v6[0] = 0x60;
    expect(parseIcmpAnswer(v6)).toBeUndefined();
    const udpQuoted = ipv4(17, Buffer.alloc(8, 1)).subarray(0, 28);
    const error = Buffer.from([3, 4, 0, 0, 0, 0, 5, 0x78]);
    expect(parseIcmpAnswer(ipv4(1, Buffer.concat([error, udpQuoted])))).toBeUndefined();
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { weftDp } from '../../../src/native/addon.js';
import {
  GPE_PARTIAL_CSUM_BIT,
  GPE_PARTIAL_CSUM_OFFSET,
  gpeHeader,
  NextProtocol,
} from '../../../src/wire/index.js';
import {
  checksumsValid,
  finishPartial,
  onesComplementSum,
  pseudoHeader,
  TCP_ACK,
  TCP_PSH,
  tcpPacket,
  tcpPayload,
  tunRead,
  udpPacket,
  VNET,
} from './offload-packets.js';

const RUNS = { numRuns: 100 };
const GPE = gpeHeader(1, NextProtocol.IPv4);
const MAX_OUT = 8192;
const out = Buffer.alloc(MAX_OUT * 128 + 4 * 65536);
const outOffsets = new Uint32Array(MAX_OUT);
const outLengths = new Uint32Array(MAX_OUT);

function pieces(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const start = outOffsets[i] as number;
    return Buffer.from(out.subarray(start, start + (outLengths[i] as number)));
  });
}

/** The datagrams the addon sends for one TUN read (with `partial`: to a peer that completes checksums). */
function segment(read: Buffer, partial = false): Buffer[] {
  const buf = Buffer.concat([Buffer.alloc(16), read]);
  return pieces(weftDp().gsoSegment(buf, 16, read.length, GPE, out, outOffsets, outLengths, partial));
}

/** What the addon writes to the TUN for these inner packets: [virtio_net_hdr][packet] each. */
function coalesce(packets: Buffer[], coalesceUdp = false, partial?: Uint8Array): Buffer[] {
  const buf = Buffer.concat(packets);
  const offsets = new Uint32Array(packets.length);
  const lengths = new Uint32Array(packets.length);
  let at = 0;
  packets.forEach((p, i) => {
    offsets[i] = at;
    lengths[i] = p.length;
    at += p.length;
  });
  return pieces(
    weftDp().groCoalesce(
      buf,
      offsets,
      lengths,
      packets.length,
      out,
      outOffsets,
      outLengths,
      coalesceUdp,
      partial,
    ),
  );
}

const tcpSuperPacket = fc
  .record({
    mss: fc.integer({ min: 64, max: 1460 }),
    optionWords: fc.integer({ min: 0, max: 10 }),
    payloadLength: fc.integer({ min: 1, max: 65535 - 40 - 40 }),
    seq: fc.nat({ max: 0xffffffff }),
    push: fc.boolean(),
    id: fc.nat({ max: 0xffff }),
    seed: fc.nat({ max: 255 }),
  })
  .map((r) => {
    const payload = Buffer.alloc(r.payloadLength, 0);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + r.seed) & 0xff;
    const options = Buffer.alloc(r.optionWords * 4, 1); // NOPs
    const packet = tcpPacket({
      seq: r.seq,
      flags: TCP_ACK | (r.push ? TCP_PSH : 0),
      options,
      payload,
      id: r.id,
    });
    return { ...r, payload, packet };
  });

/** Random bytes behind a virtio header and IPv4 start that get past the first checks. */
const plausibleTunRead = fc
  .record({
    bytes: fc.uint8Array({ minLength: 30, maxLength: 3000 }),
    needsCsum: fc.boolean(),
    gsoType: fc.constantFrom(VNET.GsoNone, VNET.GsoTcpV4, VNET.GsoUdpL4),
    ihlWords: fc.integer({ min: 0, max: 15 }),
    protocol: fc.constantFrom(6, 17),
    gsoSize: fc.integer({ min: 0, max: 2000 }),
    csumStart: fc.nat(),
    csumOffset: fc.constantFrom(6, 16),
  })
  .map((r) => {
    const read = Buffer.from(r.bytes);
    read[0] = r.needsCsum ? VNET.NeedsCsum : 0;
    read[1] = r.gsoType;
    read.writeUInt16LE(r.gsoSize, 4);
    read.writeUInt16LE(r.csumStart % (read.length - 10), 6);
    read.writeUInt16LE(r.csumOffset, 8);
    read[10] = 0x40 | r.ihlWords;
    read[19] = r.protocol;
    return read;
  });

describe('offload: segmentation (TUN TSO super-packet -> GPE datagrams)', () => {
  it('cuts a TCP super-packet into MSS-sized segments with correct RFC 1071 checksums, and coalescing restores it', () => {
    fc.assert(
      fc.property(tcpSuperPacket, ({ mss, payload, packet, seq, push }) => {
        const datagrams = segment(tunRead(packet, mss));
        expect(datagrams.length).toBe(Math.ceil(payload.length / mss));
        const inners = datagrams.map((d) => {
          expect(Buffer.compare(d.subarray(0, 8), Buffer.from(GPE))).toBe(0);
          return d.subarray(8);
        });
        inners.forEach((ip, j) => {
          expect(checksumsValid(ip)).toEqual({ ip: true, l4: true });
          expect(ip.readUInt16BE(2)).toBe(ip.length);
          expect(ip.readUInt32BE(24)).toBe((seq + j * mss) >>> 0);
          expect(tcpPayload(ip).length).toBe(Math.min(mss, payload.length - j * mss));
          expect(((ip[33] as number) & TCP_PSH) !== 0).toBe(push && j === inners.length - 1);
        });
        expect(Buffer.compare(Buffer.concat(inners.map(tcpPayload)), payload)).toBe(0);

        const written = coalesce(inners);
        expect(written.length).toBe(Math.ceil(inners.length / 64));
        const restored = written.map(finishPartial);
        for (const [k, w] of written.entries()) {
          expect(checksumsValid(restored[k] as Buffer)).toEqual({ ip: true, l4: true });
          if (w[1] === VNET.GsoTcpV4) expect(w.readUInt16LE(4)).toBe(mss);
        }
        expect(Buffer.compare(Buffer.concat(restored.map(tcpPayload)), payload)).toBe(0);
        if (written.length === 1) {
          // One super-packet in, one out: the original packet, PSH and all, byte for byte.
          expect(Buffer.compare(restored[0] as Buffer, packet)).toBe(0);
        }
      }),
      RUNS,
    );
  });

  it('cuts a UDP (USO) super-packet into datagrams with correct checksums', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 8, max: 1400 }),
        fc.uint8Array({ minLength: 1, maxLength: 20000 }),
        (mss, payload) => {
          const datagrams = segment(tunRead(udpPacket(payload), mss));
          expect(datagrams.length).toBe(Math.ceil(payload.length / mss));
          const parts = datagrams.map((d) => {
            const ip = d.subarray(8);
            expect(checksumsValid(ip)).toEqual({ ip: true, l4: true });
            expect(ip.readUInt16BE(24)).toBe(ip.length - 20);
            return ip.subarray(28);
          });
          expect(Buffer.compare(Buffer.concat(parts), Buffer.from(payload))).toBe(0);
        },
      ),
      RUNS,
    );
  });

  it('finishes the checksum of a packet that needs no segmentation, restoring the original bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1400 }), fc.boolean(), (payload, tcp) => {
        const packet = tcp ? tcpPacket({ seq: 7, payload }) : udpPacket(payload);
        const datagrams = segment(tunRead(packet));
        expect(datagrams).toHaveLength(1);
        expect(Buffer.compare(datagrams[0] as Buffer, Buffer.concat([GPE, packet]))).toBe(0);
      }),
      RUNS,
    );
  });

  it('never reads outside a TUN read, whatever its virtio header and bytes say', () => {
    // What lies around the read must not change the result: anything read from there would. (Not
    // 0xff against 0: a one's-complement sum cannot tell 0xffff from 0.)
    const segmentAmid = (read: Buffer, fill: number) => {
      const buf = Buffer.alloc(16 + read.length + 4096, fill);
      read.copy(buf, 16);
      return pieces(weftDp().gsoSegment(buf, 16, read.length, GPE, out, outOffsets, outLengths));
    };
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 3000 }), plausibleTunRead), (bytes) => {
        const read = Buffer.from(bytes);
        expect(segmentAmid(read, 0x5a)).toEqual(segmentAmid(read, 0x00));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('offload: partial inner checksums (to a peer that announced partial-csum)', () => {
  const PARTIAL_GPE = Buffer.from(GPE);
  PARTIAL_GPE[GPE_PARTIAL_CSUM_OFFSET] =
    (PARTIAL_GPE[GPE_PARTIAL_CSUM_OFFSET] as number) | GPE_PARTIAL_CSUM_BIT;

  /** The inner packets of datagrams that must all carry the partial bit and a pseudo-header-only checksum. */
  function partialInners(datagrams: Buffer[]): Buffer[] {
    return datagrams.map((d) => {
      expect(Buffer.compare(d.subarray(0, 8), PARTIAL_GPE)).toBe(0);
      const ip = Buffer.from(d.subarray(8));
      const ihl = ((ip[0] as number) & 15) * 4;
      const at = ihl + (ip[9] === 6 ? 16 : 6);
      expect(ip.readUInt16BE(at)).toBe(
        onesComplementSum([pseudoHeader(ip, ip[9] as number, ip.length - ihl)]),
      );
      expect(checksumsValid(ip).ip).toBe(true);
      return ip;
    });
  }

  it('leaves segment checksums partial and marked; the receiver writes them NEEDS_CSUM and they complete to the original bytes', () => {
    fc.assert(
      fc.property(tcpSuperPacket, fc.boolean(), ({ mss, payload, packet }, tcp) => {
        const original = tcp ? packet : udpPacket(payload.subarray(0, 20000));
        const inners = partialInners(segment(tunRead(original, mss), true));
        // Each packet alone (as ACKs, or segments that do not coalesce), then coalesced.
        const alone = inners.flatMap((ip) => coalesce([ip], false, Uint8Array.of(1)));
        for (const w of alone) {
          expect(w[0]).toBe(VNET.NeedsCsum);
          expect(checksumsValid(finishPartial(w))).toEqual({ ip: true, l4: true });
        }
        const written = coalesce(inners, true, new Uint8Array(inners.length).fill(1));
        const restored = written.map(finishPartial);
        for (const ip of restored) expect(checksumsValid(ip)).toEqual({ ip: true, l4: true });
        if (written.length === 1) expect(Buffer.compare(restored[0] as Buffer, original)).toBe(0);
      }),
      RUNS,
    );
  });

  it('passes a single packet whose kernel checksum is partial through unchanged, and the receiver completes it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1400 }), fc.boolean(), (payload, tcp) => {
        const packet = tcp ? tcpPacket({ seq: 7, payload }) : udpPacket(payload);
        const read = tunRead(packet);
        const [datagram] = segment(read, true);
        expect(Buffer.compare((datagram as Buffer).subarray(8), read.subarray(10))).toBe(0);
        const [written] = coalesce(partialInners([datagram as Buffer]), false, Uint8Array.of(1));
        expect(Buffer.compare(finishPartial(written as Buffer), packet)).toBe(0);
      }),
      RUNS,
    );
  });

  it('writes a marked packet that is not a whole TCP/UDP packet as is, for the kernel to verify', () => {
    const icmp = udpPacket(Buffer.from('ping'));
    icmp[9] = 1;
    const fragment = udpPacket(Buffer.from('first fragment'));
    fragment[6] = 0x20; // more fragments: the L4 checksum covers bytes this packet does not carry
    for (const packet of [icmp, fragment]) {
      const [written] = coalesce([packet], false, Uint8Array.of(1));
      expect((written as Buffer).subarray(0, 10).every((b) => b === 0)).toBe(true);
      expect(Buffer.compare((written as Buffer).subarray(10), packet)).toBe(0);
    }
  });

  it('completes what it cannot leave partial: a checksum at an offset that is not TCP/UDP’s', () => {
    const packet = tcpPacket({ seq: 7, payload: Buffer.from('not at the TCP checksum') });
    const read = tunRead(packet);
    read.writeUInt16LE(6, 8); // csum_offset 6 in a TCP packet: not the TCP checksum field
    const [datagram] = segment(read, true);
    expect(Buffer.compare((datagram as Buffer).subarray(0, 8), Buffer.from(GPE))).toBe(0);
  });
});

interface Segment {
  flow: number;
  seq: number;
  payload: string;
}

/** Offsets and pieces of a GSO packet's payload cut at its gso_size, as the kernel cuts it (whole when not GSO). */
function cutAtGsoSize(written: Buffer, gsoType: number, payload: Buffer): { at: number; piece: Buffer }[] {
  const size = written[1] === gsoType ? written.readUInt16LE(4) : payload.length || 1;
  const pieces: { at: number; piece: Buffer }[] = [];
  for (let at = 0; at < Math.max(payload.length, 1); at += size)
    pieces.push({ at, piece: payload.subarray(at, at + size) });
  return pieces;
}

/** Each packet was written alone, unchanged, behind an empty virtio header. */
function expectWrittenAlone(packets: Buffer[], written: Buffer[]): void {
  expect(written).toHaveLength(packets.length);
  written.forEach((w, i) => {
    expect(w.subarray(0, 10).every((b) => b === 0)).toBe(true);
    expect(Buffer.compare(w.subarray(10), packets[i] as Buffer)).toBe(0);
  });
}

/** The TCP segments a written TUN packet stands for (a GSO super-packet is cut at gso_size again). */
function expand(written: Buffer): Segment[] {
  const ip = finishPartial(written);
  const flow = ip.readUInt16BE(20);
  const seq = ip.readUInt32BE(24);
  return cutAtGsoSize(written, VNET.GsoTcpV4, tcpPayload(ip)).map(({ at, piece }) => ({
    flow,
    seq: (seq + at) >>> 0,
    payload: piece.toString('hex'),
  }));
}

describe('offload: coalescing (received segments -> GSO TUN writes)', () => {
  it('keeps every segment of interleaved flows, in order, with valid checksums', () => {
    const arrivals = fc.array(
      fc.record({ flow: fc.integer({ min: 0, max: 2 }), size: fc.integer({ min: 1, max: 1400 }) }),
      { minLength: 1, maxLength: 200 },
    );
    fc.assert(
      fc.property(arrivals, fc.integer({ min: 100, max: 1400 }), (list, mss) => {
        const nextSeq = [1000, 5000, 9000];
        const inputs = list.map(({ flow, size }, i) => {
          const payload = Buffer.alloc(Math.min(size, mss), i & 0xff);
          const seq = nextSeq[flow] as number;
          nextSeq[flow] = seq + payload.length;
          return tcpPacket({ seq, sourcePort: 40000 + flow, payload });
        });
        const written = coalesce(inputs);
        expect(written.length).toBeLessThanOrEqual(inputs.length);
        for (const w of written) expect(checksumsValid(finishPartial(w))).toEqual({ ip: true, l4: true });
        const expected = inputs.map((p) => ({
          flow: p.readUInt16BE(20),
          seq: p.readUInt32BE(24),
          payload: tcpPayload(p).toString('hex'),
        }));
        expect(written.flatMap(expand)).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('does not merge what the receiver must see separately: non-TCP, SYN/FIN, gaps, changed ack', () => {
    const base = (seq: number, extra: Partial<Parameters<typeof tcpPacket>[0]> = {}) =>
      tcpPacket({ seq, payload: Buffer.alloc(100, 1), ...extra });
    const cases: Buffer[][] = [
      [base(0), udpPacket(Buffer.alloc(100))],
      [base(0, { flags: TCP_ACK | 0x01 }), base(100)],
      [base(0), base(150)],
      [base(0), base(100, { ack: 99 })],
      [base(0, { flags: TCP_ACK | TCP_PSH }), base(100)],
      [tcpPacket({ seq: 0, payload: Buffer.alloc(50) }), base(50)],
    ];
    for (const packets of cases) expectWrittenAlone(packets, coalesce(packets));
  });
});

interface Datagram {
  port: number;
  payload: string;
}

/** The UDP datagrams a written TUN packet stands for: a USO super-packet is cut at gso_size, as the kernel does. */
function expandUdp(written: Buffer): Datagram[] {
  const ip = finishPartial(written);
  const port = ip.readUInt16BE(20);
  return cutAtGsoSize(written, VNET.GsoUdpL4, ip.subarray(28)).map(({ piece }) => ({
    port,
    payload: piece.toString('hex'),
  }));
}

describe('offload: UDP coalescing (received datagrams -> USO TUN writes)', () => {
  const arrivals = fc.array(
    fc.record({
      flow: fc.integer({ min: 0, max: 2 }),
      size: fc.integer({ min: 1, max: 1400 }),
      short: fc.boolean(),
    }),
    { minLength: 1, maxLength: 200 },
  );
  const datagrams = (list: { flow: number; size: number; short: boolean }[], sizes: number[]) =>
    list.map(({ flow, size, short }, i) => {
      const length = short ? Math.min(size, sizes[flow] as number) : (sizes[flow] as number);
      const payload = Buffer.alloc(length, i & 0xff);
      return udpPacket(payload, '10.32.1.2', '10.32.2.2', 40000 + flow);
    });

  it('keeps every datagram of interleaved flows, in order, and merges runs into valid USO packets', () => {
    fc.assert(
      fc.property(
        arrivals,
        fc.array(fc.integer({ min: 1, max: 1400 }), { minLength: 3, maxLength: 3 }),
        (list, sizes) => {
          const inputs = datagrams(list, sizes);
          const written = coalesce(inputs, true);
          expect(written.length).toBeLessThanOrEqual(inputs.length);
          for (const w of written) {
            const ip = finishPartial(w);
            expect(checksumsValid(ip)).toEqual({ ip: true, l4: true });
            expect(ip.readUInt16BE(24)).toBe(ip.length - 20);
            if (w[1] === VNET.GsoUdpL4) {
              expect(w.readUInt16LE(8)).toBe(6);
              expect(ip.length).toBeLessThanOrEqual(65535);
            }
          }
          const expected = inputs.map((p) => ({
            port: p.readUInt16BE(20),
            payload: p.subarray(28).toString('hex'),
          }));
          expect(written.flatMap(expandUdp)).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('merges a run of same-size datagrams into one write, and nothing without coalesceUdp', () => {
    const inputs = [
      ...Array.from({ length: 10 }, (_, i) => udpPacket(Buffer.alloc(64, i))),
      udpPacket(Buffer.alloc(20, 10)),
    ];
    const written = coalesce(inputs, true);
    expect(written).toHaveLength(1);
    expect(written[0]?.[1]).toBe(VNET.GsoUdpL4);
    expect(written[0]?.readUInt16LE(4)).toBe(64);
    expect(coalesce(inputs)).toHaveLength(inputs.length);
  });

  it('does not merge datagrams the receiver must see apart: other flows, a larger one after, fragments', () => {
    const fragment = udpPacket(Buffer.alloc(64));
    fragment[6] = 0x20; // more fragments
    const cases: Buffer[][] = [
      [udpPacket(Buffer.alloc(64)), udpPacket(Buffer.alloc(64), '10.32.1.3')],
      [udpPacket(Buffer.alloc(64)), udpPacket(Buffer.alloc(64), '10.32.1.2', '10.32.2.2', 1)],
      [udpPacket(Buffer.alloc(64)), udpPacket(Buffer.alloc(65))],
      [udpPacket(Buffer.alloc(32)), udpPacket(Buffer.alloc(64))],
      [udpPacket(Buffer.alloc(64)), fragment],
    ];
    for (const packets of cases) expectWrittenAlone(packets, coalesce(packets, true));
  });
});

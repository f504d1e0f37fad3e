import { describe, expect, it } from 'vitest';
import {
  cpuBoundGbps,
  machineCpuBetween,
  median,
  parseIperfTcp,
  parseIperfUdp,
  parsePidStatTicks,
  parsePing,
  parseProcStatCpu,
  summarize,
  type TcpSample,
} from '../../../bench/measure.js';

// The `end` objects of `iperf3 -J` 3.12 runs (TCP -b 10M, UDP -l 64 -b 200K, both -t 1), verbatim.
const IPERF_TCP =
  '{"end": {"sum_sent": {"start": 0, "end": 1.00013, "seconds": 1.00013, "bytes": 1310720, "bits_per_second": 10484397.02838631, "retransmits": 0, "sender": true}, "sum_received": {"start": 0, "end": 1.000181, "seconds": 1.000181, "bytes": 1310720, "bits_per_second": 10483862.420901816, "sender": true}}}';
const IPERF_UDP =
  '{"end": {"sum": {"start": 0, "end": 1.000119, "seconds": 1.000119, "bytes": 25024, "bits_per_second": 200189.1973512371, "jitter_ms": 0.007997600595949466, "lost_packets": 0, "packets": 391, "lost_percent": 0, "sender": true}, "sum_sent": {"start": 0, "end": 1.000014, "seconds": 1.000014, "bytes": 25024, "bits_per_second": 200189.1973512371, "jitter_ms": 0, "lost_packets": 0, "packets": 391, "lost_percent": 0, "sender": true}, "sum_received": {"start": 0, "end": 1.000119, "seconds": 1.000119, "bytes": 24960, "bits_per_second": 199656.24090733205, "jitter_ms": 0.007997600595949466, "lost_packets": 0, "packets": 390, "lost_percent": 0, "sender": false}}}';
const IPERF_ERROR =
  '{"start": {}, "intervals": [], "end": {}, "error": "unable to connect to server: Connection refused"}';
const IPUTILS_PING =
  'PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\n64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.014 ms\n64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=0.026 ms\n64 bytes from 127.0.0.1: icmp_seq=3 ttl=64 time=0.024 ms\n\n--- 127.0.0.1 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 113ms\nrtt min/avg/max/mdev = 0.014/0.021/0.026/0.005 ms\n';
const BUSYBOX_PING =
  'PING 127.0.0.1 (127.0.0.1): 56 data bytes\n64 bytes from 127.0.0.1: seq=0 ttl=64 time=0.023 ms\n64 bytes from 127.0.0.1: seq=1 ttl=64 time=0.039 ms\n64 bytes from 127.0.0.1: seq=2 ttl=64 time=0.041 ms\n\n--- 127.0.0.1 ping statistics ---\n3 packets transmitted, 3 packets received, 0% packet loss\nround-trip min/avg/max = 0.023/0.034/0.041 ms\n';

describe('iperf3 JSON', () => {
  it('reads TCP throughput at the receiver and the sender retransmits', () => {
    const tcp = parseIperfTcp(IPERF_TCP);
    expect(tcp.gbps).toBeCloseTo(0.010484, 5);
    expect(tcp.retransmits).toBe(0);
  });

  it('reads delivered (counted minus lost) and offered UDP packet rates', () => {
    const udp = parseIperfUdp(IPERF_UDP);
    expect(udp.deliveredPps).toBeCloseTo(390 / 1.000119, 3);
    expect(udp.offeredPps).toBeCloseTo(391 / 1.000014, 3);
    expect(udp.lossPct).toBe(0);
  });

  it('reports iperf3 errors and output without JSON', () => {
    expect(() => parseIperfTcp(IPERF_ERROR)).toThrow(/iperf3: unable to connect/);
    expect(() => parseIperfTcp('iperf3: error - unable to connect')).toThrow(/printed no JSON/);
    expect(() => parseIperfUdp(IPERF_TCP)).toThrow(/lacks end.sum_received.packets/);
  });
});

describe('parsePing', () => {
  it('reads iputils ping', () => {
    expect(parsePing(IPUTILS_PING)).toEqual({ avgMs: 0.021, medianMs: 0.024, lossPct: 0 });
  });

  it('reads busybox ping', () => {
    expect(parsePing(BUSYBOX_PING)).toEqual({ avgMs: 0.034, medianMs: 0.039, lossPct: 0 });
  });

  it('fails when no reply came back', () => {
    const lost =
      'PING 10.32.2.2 (10.32.2.2) 56(84) bytes of data.\n\n--- 10.32.2.2 ping statistics ---\n3 packets transmitted, 0 received, 100% packet loss, time 2030ms\n';
    expect(() => parsePing(lost)).toThrow(/no RTT/);
  });
});

describe('CPU accounting', () => {
  it('sums utime and stime even when the command name has spaces and parentheses', () => {
    const stat =
      '4242 (weft (agent) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 12345 1000000 5000';
    expect(parsePidStatTicks(stat)).toBe(325);
  });

  it('splits machine time into user, system, softirq, idle and steal, 100 % per core', () => {
    const before = parseProcStatCpu('cpu  100 0 100 1000 0 0 0 0 0 0\ncpu0 50 0 50 500 0 0 0 0 0 0\n');
    // 200 ticks in all: user+nice 60, system 50, idle 60, irq+softirq 20, steal 10.
    const after = parseProcStatCpu('cpu  150 10 150 1060 0 10 10 10 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n');
    expect(machineCpuBetween(before, after, 2)).toEqual({
      user: 60,
      system: 50,
      softirq: 20,
      idle: 60,
      steal: 10,
    });
  });
});

describe('median', () => {
  it('takes the middle value or the mean of the two middle values, ignoring non-numbers', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([Number.NaN, 5])).toBe(5);
    expect(median([])).toBeNull();
  });
});

describe('CPU-bound throughput', () => {
  const tcp = (gbps: number, busy: [number, number, number], idle: number): TcpSample => ({
    gbps,
    retransmits: 0,
    preBusyPct: 0,
    wallSec: 10,
    cpu: { processPct: [], machine: { user: busy[0], system: busy[1], softirq: busy[2], idle, steal: 0 } },
  });

  it('scales throughput to all cores busy at the measured cost per bit', () => {
    // 8 Gbit/s with 160 % of 200 busy: 20 % per Gbit/s, so 10 Gbit/s with both cores.
    expect(cpuBoundGbps(tcp(8, [20, 100, 40], 40), 2)).toBeCloseTo(10, 9);
    // Idle time and steal do not count as cost; 4 cores double the bound.
    expect(cpuBoundGbps(tcp(8, [20, 100, 40], 240), 4)).toBeCloseTo(20, 9);
  });

  it('has no bound for an idle machine or a run that carried nothing', () => {
    expect(cpuBoundGbps(tcp(8, [0, 0, 0], 200), 2)).toBeNull();
    expect(cpuBoundGbps(tcp(0, [50, 50, 0], 100), 2)).toBeNull();
  });

  it('summarizes the median bound of each TCP test', () => {
    const summary = summarize(
      {
        tcp1: [tcp(8, [20, 100, 40], 40), tcp(6, [20, 100, 80], 0), tcp(9, [0, 0, 0], 200)],
        tcp4: [tcp(10, [50, 100, 50], 0)],
        udp64: [],
        ping: [],
        pingBusy: [],
      },
      2,
    );
    // 10 and 6 Gbit/s bounds; the idle sample has none.
    expect(summary.tcp1CpuBoundGbps).toBeCloseTo(8, 9);
    expect(summary.tcp4CpuBoundGbps).toBeCloseTo(10, 9);
  });
});

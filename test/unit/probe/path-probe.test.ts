import { describe, expect, test } from 'vitest';
import { FakeEchoTransport } from '../../../src/probe/fake/fake-echo.js';
import { PathMonitor } from '../../../src/probe/path-monitor.js';
import { probePath } from '../../../src/probe/path-probe.js';
import { createLogger } from '../../../src/util/log.js';

const options = { maxSize: 1500, timeoutMs: 1000, now: () => 5_000 };

describe('probePath', () => {
  test('a clean 1500-byte path: reachable, RTT, PMTU 1500 from the first full-size probe', async () => {
    const net = new FakeEchoTransport();
    net.paths.set('10.0.0.2', { mtu: 1500, rttMs: 0.25, tooBig: 'frag-needed' });
    expect(await probePath(net, '10.0.0.2', options)).toEqual({
      address: '10.0.0.2',
      reachable: true,
      rttMs: 0.25,
      pmtu: 1500,
      probedAtMs: 5_000,
      error: null,
    });
    expect(net.sent.map((s) => s.totalSize)).toEqual([84, 1500]);
  });

  test('a router that names its MTU: one jump to that size', async () => {
    const net = new FakeEchoTransport();
    net.paths.set('10.0.0.2', { mtu: 1420, rttMs: 1, tooBig: 'frag-needed' });
    expect((await probePath(net, '10.0.0.2', options)).pmtu).toBe(1420);
    expect(net.sent.map((s) => s.totalSize)).toEqual([84, 1500, 1420]);
  });

  test('a path that silently drops big packets: decreasing sizes until one gets through', async () => {
    const net = new FakeEchoTransport();
    net.paths.set('10.0.0.2', { mtu: 1410, rttMs: 1, tooBig: 'silent' });
    expect((await probePath(net, '10.0.0.2', options)).pmtu).toBe(1400);
    expect(net.sent.map((s) => s.totalSize)).toEqual([84, 1500, 1492, 1480, 1450, 1400]);
  });

  test('"too big" without a next-hop MTU (local EMSGSIZE): the next common size', async () => {
    const net = new FakeEchoTransport();
    net.paths.set('10.0.0.2', { mtu: 1480, rttMs: 1, tooBig: 'frag-needed-no-mtu' });
    expect((await probePath(net, '10.0.0.2', { ...options, maxSize: 9000 })).pmtu).toBe(1480);
    expect(net.sent.map((s) => s.totalSize)).toEqual([84, 9000, 1500, 1492, 1480]);
  });

  test('no answer: unreachable with the reason, no MTU probing', async () => {
    const net = new FakeEchoTransport();
    expect(await probePath(net, '10.0.0.9', options)).toMatchObject({
      reachable: false,
      rttMs: null,
      pmtu: null,
      error: 'no echo reply within 1000 ms',
    });
    expect(net.sent).toHaveLength(1);
  });
});

describe('PathMonitor', () => {
  test('probes new targets at once, all targets each interval, and forgets targets that went away', async () => {
    const net = new FakeEchoTransport();
    net.paths.set('10.0.0.2', { mtu: 1500, rttMs: 0.5, tooBig: 'frag-needed' });
    let targets = ['10.0.0.3', '10.0.0.2'];
    let now = 0;
    const monitor = new PathMonitor({
      transport: net,
      targets: () => targets,
      maxSize: 1500,
      intervalMs: 10_000,
      timeoutMs: 100,
      log: createLogger('fatal'),
      now: () => now,
    });
    await monitor.tick();
    expect(monitor.results().map((r) => [r.address, r.reachable, r.pmtu])).toEqual([
      ['10.0.0.2', true, 1500],
      ['10.0.0.3', false, null],
    ]);
    const probedTo = () => net.sent.map((s) => s.address);
    net.sent.length = 0;
    now = 1_000;
    targets = ['10.0.0.2', '10.0.0.4'];
    await monitor.tick();
    expect(probedTo()).toEqual(['10.0.0.4']);
    expect(monitor.results().map((r) => r.address)).toEqual(['10.0.0.2', '10.0.0.4']);
    net.sent.length = 0;
    now = 10_000;
    await monitor.tick();
    expect(new Set(probedTo())).toEqual(new Set(['10.0.0.2', '10.0.0.4']));
    await monitor.stop();
    expect(net.closed).toBe(true);
  });
});

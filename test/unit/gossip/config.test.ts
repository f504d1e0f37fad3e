import { describe, expect, it } from 'vitest';
import { parseGossipConfig } from '../../../src/gossip/config.js';

describe('parseGossipConfig', () => {
  it('fills in the defaults', () => {
    const config = parseGossipConfig({ nodeName: 'n1', underlayAddress: '10.0.0.1' });
    expect(config).toMatchObject({
      stateDir: '/var/lib/weft',
      listenAddress: '0.0.0.0',
      listenPort: 6783,
      dataPort: 4790,
      heartbeatIntervalMs: 10_000,
      peerTimeoutMs: 40_000,
      peers: [],
      backoff: { initialMs: 500, maxMs: 30_000, multiplier: 2, jitter: 0.5 },
      channel: { maxPayloadBytes: 1024 * 1024, requestTimeoutMs: 5_000 },
    });
  });

  it('uses a specific listen address as the underlay address', () => {
    expect(parseGossipConfig({ nodeName: 'n1', listenAddress: '10.0.0.2' }).underlayAddress).toBe('10.0.0.2');
  });

  it.each([
    [{ nodeName: 'n1' }, /underlayAddress is required/],
    [{ nodeName: 'n 1', underlayAddress: '10.0.0.1' }, /nodeName/],
    [
      { nodeName: 'n1', underlayAddress: '10.0.0.1', heartbeatIntervalMs: 5_000, peerTimeoutMs: 5_000 },
      /peerTimeoutMs/,
    ],
    [{ nodeName: 'n1', underlayAddress: '10.0.0.1', listenPort: 0 }, /listenPort/],
    [{ nodeName: 'n1', underlayAddress: '10.0.0.1', backoff: { jitter: 2 } }, /jitter/],
  ])('rejects %j', (input, message) => {
    expect(() => parseGossipConfig(input)).toThrow(message);
  });
});

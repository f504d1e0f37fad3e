import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parsePeerAddress, StaticPeerSource } from '../../../src/gossip/peer-source.js';

const logger = pino({ level: 'silent' });

describe('parsePeerAddress', () => {
  it('takes host[:port] with the default port', () => {
    expect(parsePeerAddress('10.0.0.1', 6783)).toEqual({ host: '10.0.0.1', port: 6783 });
    expect(parsePeerAddress(' 10.0.0.1:7000 ', 6783)).toEqual({ host: '10.0.0.1', port: 7000 });
    expect(parsePeerAddress('node-1.example.com:6784', 6783)).toEqual({
      host: 'node-1.example.com',
      port: 6784,
    });
  });

  it.each([
    '',
    '10.0.0.1:',
    '10.0.0.1:0',
    '10.0.0.1:70000',
    '[::1]:6783',
    'fd00::1',
    '10.0.0.256',
    'a b',
    '-bad',
  ])('rejects %j', (spec) => {
    expect(() => parsePeerAddress(spec, 6783)).toThrow(/invalid peer address/);
  });
});

describe('StaticPeerSource', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports IPv4 literals and resolved names as tcp multiaddrs, deduplicated', async () => {
    const resolve = vi.fn(async (host: string) => (host === 'db' ? ['10.0.0.7', '10.0.0.1'] : []));
    const source = new StaticPeerSource(['10.0.0.1', 'db', '10.0.0.2:7000'], {
      defaultPort: 6783,
      logger,
      resolve,
    });
    const reported = await new Promise<string[]>((done) => source.start(done));
    source.stop();
    expect(reported).toEqual(['/ip4/10.0.0.1/tcp/6783', '/ip4/10.0.0.2/tcp/7000', '/ip4/10.0.0.7/tcp/6783']);
  });

  it('re-resolves names periodically and reports only changes', async () => {
    vi.useFakeTimers();
    let answer = ['10.0.0.1'];
    const source = new StaticPeerSource(['peers.local'], {
      defaultPort: 6783,
      logger,
      resolve: async () => answer,
      refreshIntervalMs: 1_000,
    });
    const reports: string[][] = [];
    source.start((addresses) => reports.push(addresses));
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(1_000);
    answer = ['10.0.0.2'];
    await vi.advanceTimersByTimeAsync(1_000);
    source.stop();
    expect(reports).toEqual([['/ip4/10.0.0.1/tcp/6783'], ['/ip4/10.0.0.2/tcp/6783']]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps going when a name does not resolve', async () => {
    const source = new StaticPeerSource(['10.0.0.1', 'nowhere'], {
      defaultPort: 6783,
      logger,
      resolve: async () => {
        throw new Error('ENOTFOUND');
      },
    });
    const reported = await new Promise<string[]>((done) => source.start(done));
    source.stop();
    expect(reported).toEqual(['/ip4/10.0.0.1/tcp/6783']);
  });
});

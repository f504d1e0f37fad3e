import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ConnectionMaker,
  type ConnectionMakerOptions,
  chooseLearnedPeersToDial,
  type Dialer,
} from '../../../src/gossip/connections.js';

const SELF = '12D3KooWMMMM';
const LOWER = '12D3KooWAAAA';
const HIGHER = '12D3KooWZZZZ';
const addr = (n: number) => `/ip4/10.0.0.${n}/tcp/6783`;
/** Our own address. Ring order is by address string: addr(3), addr(5) and addr(30) sort before it, addr(6) after. */
const SELF_ADDRESS = addr(50);

/** A dialer whose answers the test scripts: peer ID per address, or an error. */
class FakeDialer implements Dialer {
  readonly calls: { address: string; expectedPeerId: string | undefined }[] = [];
  readonly answers = new Map<string, string | Error>();
  onConnect: ((peerId: string) => void) | undefined;

  async dial(address: string, expectedPeerId: string | undefined, signal: AbortSignal): Promise<string> {
    this.calls.push({ address, expectedPeerId });
    await Promise.resolve();
    if (signal.aborted) throw signal.reason;
    const answer = this.answers.get(address) ?? new Error('connect ECONNREFUSED');
    if (answer instanceof Error) throw answer;
    this.onConnect?.(answer);
    return answer;
  }

  dialsTo(address: string): number {
    return this.calls.filter((call) => call.address === address).length;
  }
}

describe('ConnectionMaker', () => {
  let dialer: FakeDialer;
  let maker: ConnectionMaker;

  const make = (overrides: Partial<ConnectionMakerOptions> = {}) => {
    maker = new ConnectionMaker({
      selfPeerId: SELF,
      selfAddress: SELF_ADDRESS,
      dialer,
      backoff: { initialMs: 100, maxMs: 1_000, multiplier: 2, jitter: 0.5 },
      dialTimeoutMs: 5_000,
      targetDegree: 8,
      minConnectedPeers: 8,
      tieBreakGraceMs: 1_000,
      stableConnectionMs: 60_000,
      logger: pino({ level: 'silent' }),
      random: () => 0,
      ...overrides,
    });
    dialer.onConnect = (peerId) => maker.peerConnected(peerId);
    return maker;
  };
  const view = (address: string) => maker.views().find((v) => v.address === address);

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    dialer = new FakeDialer();
  });
  afterEach(() => {
    maker.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
  });

  it('dials a configured address at once and learns its peer ID', async () => {
    make();
    dialer.answers.set(addr(1), LOWER);
    maker.setSourceAddresses('static', [addr(1)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(view(addr(1))).toMatchObject({
      state: 'established',
      peerId: LOWER,
      attempts: 0,
      sources: ['static'],
    });
    expect(dialer.calls).toEqual([{ address: addr(1), expectedPeerId: undefined }]);
  });

  it('retries a failing address with exponential, capped backoff and shows the error and next retry', async () => {
    make();
    maker.setSourceAddresses('static', [addr(1)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(view(addr(1))).toMatchObject({
      state: 'retrying',
      attempts: 1,
      lastError: 'connect ECONNREFUSED',
      nextRetryAtMs: Date.now() + 100,
    });
    const gaps: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = Date.now();
      const next = view(addr(1))?.nextRetryAtMs ?? 0;
      gaps.push(next - before);
      await vi.advanceTimersByTimeAsync(next - before);
    }
    expect(gaps).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(dialer.dialsTo(addr(1))).toBe(7);
  });

  it('marks our own address failed and never dials it again', async () => {
    make();
    dialer.answers.set(addr(9), new Error('Can not dial self'));
    dialer.answers.set(addr(8), SELF);
    maker.setSourceAddresses('static', [addr(9), addr(8)]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(view(addr(9))).toMatchObject({ state: 'failed', lastError: 'this is our own address' });
    expect(view(addr(8))).toMatchObject({ state: 'failed' });
    expect(dialer.calls).toHaveLength(2);
  });

  it('redials after a connection drops: backing off if it was short-lived, at once if it was stable', async () => {
    make();
    dialer.answers.set(addr(1), LOWER);
    maker.setSourceAddresses('static', [addr(1)]);
    await vi.advanceTimersByTimeAsync(0);

    maker.peerDisconnected(LOWER);
    expect(view(addr(1))).toMatchObject({ state: 'retrying', lastError: 'connection closed', attempts: 1 });
    await vi.advanceTimersByTimeAsync(100);
    expect(view(addr(1))?.state).toBe('established');

    await vi.advanceTimersByTimeAsync(60_000);
    maker.peerDisconnected(LOWER);
    expect(view(addr(1))).toMatchObject({ attempts: 0, nextRetryAtMs: Date.now() });
    await vi.advanceTimersByTimeAsync(0);
    expect(view(addr(1))?.state).toBe('established');
  });

  it('stops retrying when the peer connects to us meanwhile', async () => {
    make();
    maker.setSourceAddresses('static', [addr(1)]);
    dialer.answers.set(addr(1), LOWER);
    await vi.advanceTimersByTimeAsync(0);
    maker.peerDisconnected(LOWER);
    dialer.answers.set(addr(1), new Error('down'));
    await vi.advanceTimersByTimeAsync(100);
    expect(view(addr(1))?.state).toBe('retrying');
    const dials = dialer.calls.length;
    maker.peerConnected(LOWER);
    expect(view(addr(1))?.state).toBe('established');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(dialer.calls).toHaveLength(dials);
  });

  it('dials a learned peer with a higher address at once, proving its identity', async () => {
    make();
    dialer.answers.set(addr(7), HIGHER);
    maker.setLearnedPeers([{ peerId: HIGHER, address: addr(7) }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(dialer.calls).toEqual([{ address: addr(7), expectedPeerId: HIGHER }]);
    expect(view(addr(7))?.sources).toEqual(['topology']);
  });

  it('leaves a learned lower-address peer to dial us, and dials it itself only after the grace period', async () => {
    make();
    dialer.answers.set(addr(3), LOWER);
    maker.setLearnedPeers([{ peerId: LOWER, address: addr(3) }]);
    await vi.advanceTimersByTimeAsync(999);
    expect(dialer.calls).toHaveLength(0);
    expect(view(addr(3))).toBeUndefined();
    await vi.advanceTimersByTimeAsync(2);
    expect(dialer.calls).toEqual([{ address: addr(3), expectedPeerId: LOWER }]);
  });

  it('does not dial a learned lower-address peer that connected to us within the grace period', async () => {
    make();
    maker.setLearnedPeers([{ peerId: LOWER, address: addr(3) }]);
    maker.peerConnected(LOWER);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(dialer.calls).toHaveLength(0);
    expect(view(addr(3))?.state).toBe('established');
  });

  it('when short of connections, dials only as many waiting peers as it lacks', async () => {
    make({ minConnectedPeers: 2 });
    const lower = ['A', 'B', 'C', 'D', 'E'].map((c, i) => ({
      peerId: `12D3KooW${c}`,
      address: addr(20 + i),
    }));
    maker.setLearnedPeers(lower);
    await vi.advanceTimersByTimeAsync(1_001);
    expect(dialer.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(new Set(dialer.calls.map((call) => call.address)).size).toBe(2);
  });

  it('dials only its ring successors once the cluster exceeds the target degree', async () => {
    make({ targetDegree: 4, minConnectedPeers: 0 });
    const peers = Array.from({ length: 9 }, (_, i) => ({
      peerId: `12D3KooW${'ABCDEFGHJ'[i]}`,
      address: addr(10 + i),
    }));
    for (const peer of peers) dialer.answers.set(peer.address, peer.peerId);
    maker.setLearnedPeers(peers);
    await vi.advanceTimersByTimeAsync(5_000);
    // Ring of addresses: 10.0.0.10 … 10.0.0.18, then ours (10.0.0.50): our two successors wrap around
    // to the nodes at .10 and .11 (A and B).
    expect(dialer.calls.map((call) => call.expectedPeerId).sort()).toEqual(['12D3KooWA', '12D3KooWB']);
  });

  it('forgets an address its source no longer wants, cancelling the retry', async () => {
    make();
    maker.setSourceAddresses('static', [addr(1)]);
    await vi.advanceTimersByTimeAsync(0);
    maker.setSourceAddresses('static', []);
    expect(view(addr(1))).toBeUndefined();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(dialer.calls).toHaveLength(1);
  });

  it('dials unknown configured addresses only up to half the target degree', async () => {
    make({ targetDegree: 6, minConnectedPeers: 0, tieBreakGraceMs: 10_000 });
    const pending = new Map<string, (peerId: string) => void>();
    dialer.dial = (address, expectedPeerId) =>
      new Promise((resolve) => {
        dialer.calls.push({ address, expectedPeerId });
        pending.set(address, resolve);
      });
    const addresses = Array.from({ length: 10 }, (_, i) => addr(30 + i));
    maker.setSourceAddresses('static', addresses);
    await vi.advanceTimersByTimeAsync(0);
    expect(dialer.calls).toHaveLength(3);
    // Peers that dialed us count: with three inbound connections no further seed is dialed.
    for (const peerId of ['12D3KooWX', '12D3KooWY', '12D3KooWZ']) maker.peerConnected(peerId);
    await vi.advanceTimersByTimeAsync(9_000);
    expect(dialer.calls).toHaveLength(3);
    // One dial comes back, and its record names every other node: the learned-peer rule takes over.
    const [first] = dialer.calls;
    pending.get(first?.address as string)?.('12D3KooWA');
    maker.peerConnected('12D3KooWA');
    maker.setLearnedPeers(addresses.map((address, i) => ({ peerId: `12D3KooW${'ABCDEFGHJK'[i]}`, address })));
    await vi.advanceTimersByTimeAsync(5_000);
    // Our ring successors are the three seeds already dialed: nothing new is dialed.
    expect(dialer.calls).toHaveLength(3);
  });

  it('dials seeds in ring order after its own address, which the learned-peer rule then keeps', async () => {
    make({ targetDegree: 4, minConnectedPeers: 0 });
    // Ring order (of the strings) from ours, 10.0.0.50: .6, .7, .8, .9, then round to .3, .4, .5.
    const addresses = [3, 4, 5, 6, 7, 8, 9].map(addr);
    const peerIdAt = (address: string) => `12D3KooW${address.split('/')[2]?.split('.')[3]}`;
    for (const address of addresses) dialer.answers.set(address, peerIdAt(address));
    maker.setSourceAddresses('static', addresses);
    await vi.advanceTimersByTimeAsync(0);
    expect(dialer.calls.map((call) => call.address)).toEqual([addr(6), addr(7)]);
    maker.setLearnedPeers(addresses.map((address) => ({ peerId: peerIdAt(address), address })));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(dialer.calls.map((call) => call.address)).toEqual([addr(6), addr(7)]);
  });

  it('places learned peers on a ring that includes the configured addresses not learned yet', async () => {
    make({ targetDegree: 4, minConnectedPeers: 0, tieBreakGraceMs: 60_000 });
    const addresses = Array.from({ length: 9 }, (_, i) => addr(10 + i));
    const peerIdAt = (address: string) => `12D3KooW${address.split('/')[2]?.split('.')[3]}`;
    for (const address of addresses) dialer.answers.set(address, peerIdAt(address));
    maker.setSourceAddresses('static', addresses);
    await vi.advanceTimersByTimeAsync(0);
    // Only three records have arrived: a full mesh among those would dial all three.
    const early = addresses.slice(4, 7);
    maker.setLearnedPeers(early.map((address) => ({ peerId: peerIdAt(address), address })));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(dialer.calls.map((call) => call.address)).toEqual([addr(10), addr(11)]);
  });

  it('lets refused seeds hold the seed budget while they retry, instead of dialing more seeds', async () => {
    make({ targetDegree: 4, minConnectedPeers: 0, tieBreakGraceMs: 60_000 });
    const addresses = [3, 4, 5, 6, 7, 8, 9].map(addr);
    // Every node is still booting: all refuse at first; then they all come up.
    maker.setSourceAddresses('static', addresses);
    await vi.advanceTimersByTimeAsync(0);
    expect(dialer.calls.map((call) => call.address)).toEqual([addr(6), addr(7)]);
    for (const address of addresses) dialer.answers.set(address, `12D3KooW${address.length}${address}`);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(new Set(dialer.calls.map((call) => call.address))).toEqual(new Set([addr(6), addr(7)]));
    expect(maker.views().filter((v) => v.state === 'established')).toHaveLength(2);
  });

  it('dials a seed still unknown after the grace period, one at a time', async () => {
    make({ targetDegree: 2, minConnectedPeers: 0, tieBreakGraceMs: 1_000 });
    dialer.dial = (address, expectedPeerId, signal) => {
      dialer.calls.push({ address, expectedPeerId });
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    };
    maker.peerConnected('12D3KooWX');
    maker.setSourceAddresses('static', [addr(1), addr(2), addr(3)]);
    await vi.advanceTimersByTimeAsync(999);
    expect(dialer.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(2);
    expect(dialer.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(dialer.calls).toHaveLength(1);
    // The pending dial settles (and clears its timeout) once stop aborts it.
    maker.stop();
    await vi.advanceTimersByTimeAsync(0);
  });

  it('does not redial a configured address whose node is learned to dial us', async () => {
    make({ minConnectedPeers: 0 });
    dialer.answers.set(addr(1), LOWER);
    maker.setSourceAddresses('static', [addr(1)]);
    await vi.advanceTimersByTimeAsync(0);
    maker.setLearnedPeers([{ peerId: LOWER, address: addr(1) }]);
    maker.peerDisconnected(LOWER);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(dialer.dialsTo(addr(1))).toBe(1);
    // Still configured: once the record is gone (e.g. forgotten), the address is a seed again.
    maker.setLearnedPeers([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(dialer.dialsTo(addr(1))).toBe(2);
  });

  it('times out a hanging dial and retries', async () => {
    make({ dialTimeoutMs: 300 });
    dialer.dial = (address, _expected, signal) =>
      new Promise((_, reject) => {
        dialer.calls.push({ address, expectedPeerId: undefined });
        signal.addEventListener('abort', () => reject(signal.reason));
      });
    maker.setSourceAddresses('static', [addr(5)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(view(addr(5))?.state).toBe('connecting');
    await vi.advanceTimersByTimeAsync(300);
    expect(view(addr(5))).toMatchObject({ state: 'retrying', lastError: 'dial timed out after 300 ms' });
  });
});

describe('chooseLearnedPeersToDial', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `p${String(i).padStart(3, '0')}`);

  it('is a full mesh with one dialer per pair up to the target degree', () => {
    const all = ids(9);
    const dials = all.flatMap((self) =>
      [...chooseLearnedPeersToDial(self, all, 8)].map((peer) => `${self}>${peer}`),
    );
    expect(dials).toHaveLength((9 * 8) / 2);
  });

  it.each([10, 11, 20, 57])(
    'gives every one of %i nodes the target degree with no pair dialed twice',
    (n) => {
      const all = ids(n);
      const edges = new Set<string>();
      const degree = new Map(all.map((id) => [id, 0]));
      for (const self of all) {
        for (const peer of chooseLearnedPeersToDial(self, all, 8)) {
          const edge = [self, peer].sort().join('-');
          expect(edges.has(edge)).toBe(false);
          edges.add(edge);
          degree.set(self, (degree.get(self) ?? 0) + 1);
          degree.set(peer, (degree.get(peer) ?? 0) + 1);
        }
      }
      expect(new Set(degree.values())).toEqual(new Set([8]));
    },
  );
});

import { describe, expect, it } from 'vitest';
import { MemoryChannelHub } from '../../../src/gossip/fake/memory-channel.js';

const bytes = (value: string) => new TextEncoder().encode(value);
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('MemoryChannelHub', () => {
  it('broadcasts to every other member after the call returns, with copies', async () => {
    const hub = new MemoryChannelHub();
    const [a, b, c] = ['a', 'b', 'c'].map((name) => hub.join(name));
    const seen: string[] = [];
    for (const channel of [a, b, c]) {
      channel?.onBroadcast((from, payload) => seen.push(`${channel.peerName}<-${from}:${payload[0]}`));
    }
    const payload = bytes('x');
    const sent = a?.broadcast(payload);
    payload[0] = 0;
    expect(seen).toEqual([]);
    await sent;
    await flush();
    expect(seen.sort()).toEqual(['b<-a:120', 'c<-a:120']);
  });

  it('answers requests and reports missing handlers, failures and partitions', async () => {
    const hub = new MemoryChannelHub();
    const a = hub.join('a');
    const b = hub.join('b');
    await expect(a.send('b', bytes('q'))).rejects.toMatchObject({ code: 'no-handler' });
    b.onRequest(async (from, payload) => (payload.byteLength === 0 ? undefined : bytes(`hi ${from}`)));
    expect(new TextDecoder().decode(await a.send('b', bytes('q')))).toBe('hi a');
    expect(await a.send('b', new Uint8Array())).toBeUndefined();
    hub.isolate('b');
    await expect(a.send('b', bytes('q'))).rejects.toMatchObject({ code: 'unknown-peer' });
    hub.heal('b');
    b.onRequest(async () => {
      throw new Error('nope');
    });
    await expect(a.send('b', bytes('q'))).rejects.toMatchObject({ code: 'handler-failed' });
    await expect(a.send('zed', bytes('q'))).rejects.toMatchObject({ code: 'unknown-peer' });
  });
});

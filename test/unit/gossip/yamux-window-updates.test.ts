import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream';
import { describe, expect, it, vi } from 'vitest';
import { installLazyYamuxWindowUpdates } from '../../../src/gossip/yamux-window-updates.js';

const WINDOW = 256 * 1024;

/** The fields yamux's sendWindowUpdate reads, on an object that borrows the (patched) method. */
function streamWith(state: StreamState, recvWindowCapacity: number) {
  const sendFrame = vi.fn();
  const stream = {
    state,
    recvWindow: WINDOW,
    recvWindowCapacity,
    maxStreamWindowSize: 16 * 1024 * 1024,
    epochStart: 0,
    getRTT: () => -1,
    sendFrame,
    getSendFlags(this: { state: StreamState }) {
      if (this.state !== StreamState.SYNReceived) return 0;
      this.state = StreamState.Established;
      return 2; // ACK
    },
  };
  return { stream, sendFrame };
}

function sendWindowUpdate(stream: object): void {
  YamuxStream.prototype.sendWindowUpdate.call(stream as YamuxStream);
}

describe('installLazyYamuxWindowUpdates', () => {
  installLazyYamuxWindowUpdates();
  installLazyYamuxWindowUpdates(); // idempotent: a second install must not wrap twice

  it('sends no update while more than half the receive window is left', () => {
    const { stream, sendFrame } = streamWith(StreamState.Established, WINDOW - 300);
    sendWindowUpdate(stream);
    expect(sendFrame).not.toHaveBeenCalled();
    expect(stream.recvWindowCapacity).toBe(WINDOW - 300);
  });

  it('tops the window up once half of it is used', () => {
    const { stream, sendFrame } = streamWith(StreamState.Established, WINDOW / 2 - 1);
    sendWindowUpdate(stream);
    expect(sendFrame).toHaveBeenCalledTimes(1);
    expect(sendFrame.mock.calls[0]?.[0]).toMatchObject({ flag: 0, length: WINDOW / 2 + 1 });
    expect(stream.recvWindowCapacity).toBe(WINDOW);
  });

  it('still acknowledges a new inbound stream with its first update', () => {
    const { stream, sendFrame } = streamWith(StreamState.SYNReceived, WINDOW - 300);
    sendWindowUpdate(stream);
    expect(sendFrame).toHaveBeenCalledTimes(1);
    expect(sendFrame.mock.calls[0]?.[0]).toMatchObject({ flag: 2, length: 300 });
  });
});

import { describe, expect, it } from 'vitest';
import {
  ChannelRequestError,
  decodeResponse,
  encodeResponse,
  MessageTooLargeError,
  ResponseStatus,
  readToEnd,
} from '../../../src/gossip/request-framing.js';

async function* chunks(...parts: number[][]) {
  for (const part of parts) yield new Uint8Array(part);
}

describe('request framing', () => {
  it('reads a stream to its end, joining chunks', async () => {
    expect(await readToEnd(chunks([1, 2], [3], []), 10)).toEqual(new Uint8Array([1, 2, 3]));
    expect(await readToEnd(chunks(), 10)).toEqual(new Uint8Array());
  });

  it('stops reading past the limit', async () => {
    await expect(readToEnd(chunks([1, 2, 3], [4, 5]), 4)).rejects.toBeInstanceOf(MessageTooLargeError);
  });

  it('round-trips answers, the empty answer and no answer', () => {
    expect(decodeResponse(encodeResponse(ResponseStatus.Ok, new Uint8Array([7])), 'p')).toEqual(
      new Uint8Array([7]),
    );
    expect(decodeResponse(encodeResponse(ResponseStatus.Ok, new Uint8Array()), 'p')).toEqual(
      new Uint8Array(),
    );
    expect(decodeResponse(encodeResponse(ResponseStatus.NoAnswer), 'p')).toBeUndefined();
  });

  it.each<[ResponseStatus | number, string]>([
    [ResponseStatus.NoHandler, 'no-handler'],
    [ResponseStatus.UnknownSender, 'unknown-sender'],
    [ResponseStatus.HandlerFailed, 'handler-failed'],
    [ResponseStatus.TooLarge, 'too-large'],
    [200, 'protocol'],
  ])('turns status %i into a %s error', (status, code) => {
    const error = (() => {
      try {
        decodeResponse(new Uint8Array([status]), 'peer');
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(ChannelRequestError);
    expect(error).toMatchObject({ code });
  });

  it('treats an empty frame as a protocol error', () => {
    expect(() => decodeResponse(new Uint8Array(), 'peer')).toThrow(ChannelRequestError);
  });
});

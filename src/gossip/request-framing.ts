/**
 * Request/response framing on a libp2p stream: the requester writes the payload and closes its write
 * side; the responder reads to the end, answers with one status byte plus the payload, and closes.
 * Half-close marks the end of each message, so no length prefix is needed; limits bound the reads.
 */
export enum ResponseStatus {
  Ok = 0,
  NoAnswer = 1,
  NoHandler = 2,
  UnknownSender = 3,
  HandlerFailed = 4,
  TooLarge = 5,
}

export type RequestErrorCode =
  | 'unknown-peer'
  | 'timeout'
  | 'too-large'
  | 'no-handler'
  | 'unknown-sender'
  | 'handler-failed'
  | 'protocol'
  | 'transport'
  | 'stopped';

export class ChannelRequestError extends Error {
  override readonly name = 'ChannelRequestError';
  constructor(
    readonly code: RequestErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class MessageTooLargeError extends Error {
  override readonly name = 'MessageTooLargeError';
}

type Chunk = Uint8Array | { subarray(): Uint8Array };

/** Collects a stream until its remote end closes; throws MessageTooLargeError past `maxBytes`. */
export async function readToEnd(source: AsyncIterable<Chunk>, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of source) {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    length += bytes.byteLength;
    if (length > maxBytes) throw new MessageTooLargeError(`message exceeds ${maxBytes} bytes`);
    chunks.push(bytes);
  }
  return concat(chunks, length);
}

export function encodeResponse(status: ResponseStatus, payload?: Uint8Array): Uint8Array {
  const frame = new Uint8Array(1 + (payload?.byteLength ?? 0));
  frame[0] = status;
  if (payload !== undefined) frame.set(payload, 1);
  return frame;
}

/** Turns a response frame into the caller's result, or the error the responder reported. */
export function decodeResponse(frame: Uint8Array, peerName: string): Uint8Array | undefined {
  const status = frame[0];
  switch (status) {
    case ResponseStatus.Ok:
      return frame.subarray(1);
    case ResponseStatus.NoAnswer:
      return undefined;
    case ResponseStatus.NoHandler:
      throw new ChannelRequestError('no-handler', `${peerName} has no request handler on this channel`);
    case ResponseStatus.UnknownSender:
      throw new ChannelRequestError('unknown-sender', `${peerName} does not know us yet`);
    case ResponseStatus.HandlerFailed:
      throw new ChannelRequestError('handler-failed', `${peerName}'s request handler failed`);
    case ResponseStatus.TooLarge:
      throw new ChannelRequestError('too-large', `${peerName} refused the request as too large`);
    default:
      throw new ChannelRequestError('protocol', `malformed response from ${peerName} (status ${status})`);
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

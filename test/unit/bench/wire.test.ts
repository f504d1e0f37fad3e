import { describe, expect, test } from 'vitest';
import {
  answerBodyLength,
  decodeAnswer,
  decodeRequest,
  encodeAnswer,
  encodeRequest,
  FrameReader,
  type RunAnswer,
  type RunRequest,
  requestBodyLength,
} from '../../../bench/runner/wire.js';

const requests: RunRequest[] = [
  {
    id: 0,
    argv: ['/opt/cni/bin/weft'],
    env: ['CNI_COMMAND=ADD', 'CNI_ARGS=a=b;c=d'],
    stdin: Buffer.from('{"x":1}'),
  },
  { id: 1, argv: ['/bin/sh', '-c', 'exit 3'], env: [], stdin: Buffer.alloc(0) },
  { id: 2, argv: ['p'], env: ['EMPTY='], stdin: Buffer.from('line\nwith newlines\n\u00e9') },
];
const answers: RunAnswer[] = [
  {
    id: 7,
    kind: 'exit',
    value: 1,
    latencyNs: 1234567,
    stdout: Buffer.from('{"code":7}\n'),
    stderr: Buffer.alloc(0),
  },
  { id: 8, kind: 'signal', value: 9, latencyNs: 5, stdout: Buffer.alloc(0), stderr: Buffer.from('x\ny') },
];

/** Feeds `bytes` in chunks of `size` bytes and collects what comes out. */
function reassemble<T>(
  bytes: Buffer,
  size: number,
  bodyLength: (h: string[]) => number,
  decode: (h: string[], b: Buffer) => T,
): T[] {
  const out: T[] = [];
  const reader = new FrameReader(bodyLength, (h, b) => out.push(decode(h, b)));
  for (let at = 0; at < bytes.length; at += size) reader.push(bytes.subarray(at, at + size));
  expect(reader.pending).toBe(0);
  return out;
}

describe('plugin runner wire format', () => {
  test.each([1, 3, 7, 64, 100_000])('requests and answers survive any chunking (%i-byte chunks)', (size) => {
    const requestBytes = Buffer.concat(requests.map(encodeRequest));
    expect(reassemble(requestBytes, size, requestBodyLength, decodeRequest)).toEqual(requests);
    const answerBytes = Buffer.concat(answers.map(encodeAnswer));
    expect(reassemble(answerBytes, size, answerBodyLength, decodeAnswer)).toEqual(answers);
  });

  test('a cut frame stays pending', () => {
    const bytes = encodeRequest(requests[0] as RunRequest);
    const out: RunRequest[] = [];
    const reader = new FrameReader(requestBodyLength, (h, b) => out.push(decodeRequest(h, b)));
    reader.push(bytes.subarray(0, bytes.length - 1));
    expect(out).toEqual([]);
    expect(reader.pending).toBe(bytes.length - 1);
  });

  test('bad input is named', () => {
    expect(() => encodeRequest({ id: 1, argv: ['a\0b'], env: [], stdin: Buffer.alloc(0) })).toThrow(
      /NUL inside/,
    );
    expect(() => decodeAnswer(['1', 'vanished', '0', '0', '0', '0'], Buffer.alloc(0))).toThrow(
      /unknown exit kind/,
    );
    expect(() => answerBodyLength(['1', 'exit', '0', '0', '-1', '0'])).toThrow(
      /stdout length is not a count/,
    );
  });
});

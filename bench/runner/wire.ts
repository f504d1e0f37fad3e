/**
 * The plugin runners' protocol (the header comment of bench/runner/cni-runner.c specifies it):
 * frames of one text header line, numbers separated by spaces, then a binary body whose length
 * the header gives. Requests carry argv, environment and stdin; answers the exit status, stdout,
 * stderr and the exec latency the runner measured. Both runners (the C one and the Node one,
 * bench/plugin-runner-child.ts) speak it, so the bench drives them through one client.
 */

export interface RunRequest {
  id: number;
  argv: string[];
  /** `K=V` strings, as execve takes them. */
  env: string[];
  stdin: Buffer;
}

export type ExitKind = 'exit' | 'signal' | 'error';

export interface RunAnswer {
  id: number;
  /** `exit`: value is the exit code; `signal`: the signal number; `error`: could not start, the errno. */
  kind: ExitKind;
  value: number;
  /** From just before the spawn to the child's exit with stdout and stderr at EOF. */
  latencyNs: number;
  stdout: Buffer;
  stderr: Buffer;
}

const NEWLINE = 0x0a;

/** Splits a byte stream into frames; `bodyLength` reads a header's body length. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes the frame at the front needs before it is worth joining the chunks, 0 if unknown. */
  private needed = 0;

  constructor(
    private readonly bodyLength: (header: string[]) => number,
    private readonly onFrame: (header: string[], body: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.buffered < this.needed) return;
    let data = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.needed = 0;
    for (;;) {
      const newline = data.indexOf(NEWLINE);
      if (newline < 0) break;
      const header = data.subarray(0, newline).toString('latin1').split(' ');
      const end = newline + 1 + this.bodyLength(header);
      if (data.length < end) {
        this.needed = end;
        break;
      }
      this.onFrame(header, data.subarray(newline + 1, end));
      data = data.subarray(end);
    }
    this.chunks = data.length > 0 ? [data] : [];
    this.buffered = data.length;
  }

  /** Bytes of an incomplete frame: non-zero at the end of a stream means it was cut. */
  get pending(): number {
    return this.buffered;
  }
}

function count(field: string | undefined, what: string): number {
  const n = Number(field);
  if (field === undefined || !/^\d+$/.test(field) || !Number.isSafeInteger(n))
    throw new Error(`plugin runner protocol: ${what} is not a count: ${String(field)}`);
  return n;
}

function strings(list: string[]): Buffer {
  for (const s of list)
    if (s.includes('\0')) throw new Error(`plugin runner protocol: NUL inside ${JSON.stringify(s)}`);
  return Buffer.from(list.map((s) => `${s}\0`).join(''));
}

export function encodeRequest(request: RunRequest): Buffer {
  const body = strings([...request.argv, ...request.env]);
  const { id, argv, env, stdin } = request;
  const header = `${id} ${argv.length} ${env.length} ${body.length} ${stdin.length}\n`;
  return Buffer.concat([Buffer.from(header), body, stdin]);
}

export const requestBodyLength = (h: string[]): number =>
  count(h[3], 'strings length') + count(h[4], 'stdin length');

export function decodeRequest(header: string[], body: Buffer): RunRequest {
  const [id, argc, envc, stringsLength] = [0, 1, 2, 3].map((i) => count(header[i], `request field ${i}`)) as [
    number,
    number,
    number,
    number,
  ];
  const list = body.subarray(0, stringsLength).toString().split('\0');
  if (list.pop() !== '' || list.length !== argc + envc || argc < 1)
    throw new Error(
      `plugin runner protocol: request ${id}: strings do not match argc ${argc} + envc ${envc}`,
    );
  return { id, argv: list.slice(0, argc), env: list.slice(argc), stdin: body.subarray(stringsLength) };
}

export function encodeAnswer(answer: RunAnswer): Buffer {
  const { id, kind, value, latencyNs, stdout, stderr } = answer;
  const header = `${id} ${kind} ${value} ${Math.round(latencyNs)} ${stdout.length} ${stderr.length}\n`;
  return Buffer.concat([Buffer.from(header), stdout, stderr]);
}

export const answerBodyLength = (h: string[]): number =>
  count(h[4], 'stdout length') + count(h[5], 'stderr length');

export function decodeAnswer(header: string[], body: Buffer): RunAnswer {
  const kind = header[1];
  if (kind !== 'exit' && kind !== 'signal' && kind !== 'error')
    throw new Error(`plugin runner protocol: unknown exit kind ${String(kind)}`);
  const stdoutLength = count(header[4], 'stdout length');
  return {
    id: count(header[0], 'id'),
    kind,
    value: count(header[2], 'value'),
    latencyNs: count(header[3], 'latency'),
    stdout: body.subarray(0, stdoutLength),
    stderr: body.subarray(stdoutLength),
  };
}

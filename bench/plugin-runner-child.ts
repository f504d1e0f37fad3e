/**
 * The Node plugin runner (`--runner node`): started once inside a node's network namespace, it execs
 * each plugin it is sent with child_process.spawn and answers with its outcome, in the protocol of
 * bench/runner/wire.ts. libuv spawns with fork(), which copies this process's page tables per plugin:
 * the exec cost it measures is a big parent's, not a container runtime's (bench/runner/cni-runner.c
 * is the runner that models one).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import {
  decodeRequest,
  encodeAnswer,
  FrameReader,
  type RunAnswer,
  type RunRequest,
  requestBodyLength,
} from './runner/wire.js';

function answer(a: RunAnswer): void {
  process.stdout.write(encodeAnswer(a));
}

function run({ id, argv, env, stdin }: RunRequest): void {
  const [file, ...args] = argv as [string, ...string[]];
  const environment = Object.fromEntries(
    env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  const start = performance.now();
  const latencyNs = () => (performance.now() - start) * 1e6;
  const child = spawn(file, args, { env: environment, stdio: 'pipe' });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let answered = false;
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  child.stdin.on('error', () => undefined);
  child.on('error', (error: NodeJS.ErrnoException) => {
    if (answered) return;
    answered = true;
    const message = Buffer.from(`node plugin runner: cannot exec ${file}: ${error.message}\n`);
    const errno = Math.abs(error.errno ?? 0);
    answer({
      id,
      kind: 'error',
      value: errno,
      latencyNs: latencyNs(),
      stdout: Buffer.alloc(0),
      stderr: message,
    });
  });
  child.on('close', (code, signal) => {
    // A negative code is a failed spawn, which 'error' answers.
    if (answered || (code !== null && code < 0)) return;
    answered = true;
    const stdout = Buffer.concat(out);
    const stderr = Buffer.concat(err);
    const base = { id, latencyNs: latencyNs(), stdout, stderr };
    if (signal !== null) answer({ ...base, kind: 'signal', value: constants.signals[signal] });
    else answer({ ...base, kind: 'exit', value: code ?? 0 });
  });
  child.stdin.end(stdin);
}

const reader = new FrameReader(requestBodyLength, (header, body) => run(decodeRequest(header, body)));
process.stdin.on('data', (chunk: Buffer) => reader.push(chunk));

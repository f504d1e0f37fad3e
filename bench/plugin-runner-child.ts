/**
 * The in-node half of bench/plugin-runner.ts: started once inside a node's network namespace, it
 * execs each plugin it is sent directly, as a container runtime does, and answers with its outcome.
 * Requests and answers are JSON lines on stdin and stdout.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

interface Job {
  id: number;
  argv: string[];
  env: Record<string, string>;
  stdin: string;
}

const PATH = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';

function answer(id: number, code: number, stdout: string, stderr: string): void {
  process.stdout.write(`${JSON.stringify({ id, code, stdout, stderr })}\n`);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const job = JSON.parse(line) as Job;
  const [file, ...args] = job.argv;
  if (file === undefined) return answer(job.id, 127, '', 'empty argv');
  const child = spawn(file, args, { env: { PATH, ...job.env }, stdio: 'pipe' });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
  child.stdin.on('error', () => undefined);
  child.on('error', (error) => answer(job.id, 127, '', error.message));
  child.on('close', (code) =>
    answer(job.id, code ?? 1, Buffer.concat(out).toString(), Buffer.concat(err).toString()),
  );
  child.stdin.end(job.stdin);
});

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  CNI_RUNNER_EXECUTABLE,
  type PluginExec,
  PluginRunner,
  PluginStartError,
  RUNNER_KINDS,
} from '../../../bench/plugin-runner.js';
import type { PluginCall } from '../../helpers/cni.js';

const BIG_OUTPUT_BYTES = 300_000;

/** Plugins as shell scripts: what each prints depends on its CNI_CONTAINERID and stdin. */
const PLUGINS = {
  big: `yes "$CNI_CONTAINERID" | head -c ${BIG_OUTPUT_BYTES}\necho "stderr of $CNI_CONTAINERID" >&2\n`,
  fail: `cat >/dev/null\nprintf '{"cniVersion":"1.0.0","code":7,"msg":"bad config for %s"}' "$CNI_CONTAINERID"\nexit 1\n`,
  hash: `sha256sum | cut -d' ' -f1\n`,
  ignoresStdin: 'exit 0\n',
  killed: 'kill -9 $$\n',
  sleeps: 'sleep 0.3\n',
};
type PluginName = keyof typeof PLUGINS;

function bigOutput(id: string): string {
  return `${id}\n`.repeat(Math.ceil(BIG_OUTPUT_BYTES / (id.length + 1))).slice(0, BIG_OUTPUT_BYTES);
}

describe.each(RUNNER_KINDS)('plugin runner %s', (kind) => {
  let dir = '';
  let runner: PluginRunner;
  const path = (name: PluginName) => join(dir, name);
  const call = (name: PluginName, id: string, stdin = ''): Promise<PluginExec> =>
    runner.call({ plugin: [path(name)], env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id }, stdin });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-runner-'));
    for (const [name, body] of Object.entries(PLUGINS)) {
      writeFileSync(join(dir, name), `#!/bin/sh\n${body}`);
      chmodSync(join(dir, name), 0o755);
    }
    runner = PluginRunner.start(kind);
  });
  afterAll(async () => {
    await runner?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('50 concurrent plugins: each answer has its own stdout, stderr and exit code, intact', async () => {
    const kinds: PluginName[] = ['big', 'fail', 'hash'];
    const jobs = Array.from({ length: 50 }, (_, i) => {
      const id = `c${i}`;
      const name = kinds[i % kinds.length] as PluginName;
      // Larger than a pipe's buffer, so the runner must feed stdin while it drains stdout.
      const stdin = name === 'hash' ? randomBytes(100_000).toString('hex') : '{"cniVersion":"1.0.0"}';
      return { id, name, stdin };
    });
    const outcomes = await Promise.all(jobs.map((j) => call(j.name, j.id, j.stdin)));
    outcomes.forEach((outcome, i) => {
      const { id, name, stdin } = jobs[i] as (typeof jobs)[number];
      if (name === 'big') {
        expect(outcome.code).toBe(0);
        expect(outcome.stdout.length).toBe(BIG_OUTPUT_BYTES);
        expect(outcome.stdout === bigOutput(id)).toBe(true);
        expect(outcome.stderr).toBe(`stderr of ${id}\n`);
      } else if (name === 'fail') {
        expect(outcome).toMatchObject({ code: 1, stderr: '' });
        expect(outcome.json).toEqual({ cniVersion: '1.0.0', code: 7, msg: `bad config for ${id}` });
      } else {
        expect(outcome.code).toBe(0);
        expect(outcome.stdout).toBe(`${createHash('sha256').update(stdin).digest('hex')}\n`);
      }
      expect(outcome.execMs).toBeGreaterThan(0);
    });
  });

  test('the exec latency spans the plugin run, measured in the runner', async () => {
    const start = performance.now();
    const outcome = await call('sleeps', 'slow');
    const wall = performance.now() - start;
    expect(outcome.code).toBe(0);
    expect(outcome.execMs).toBeGreaterThanOrEqual(290);
    expect(outcome.execMs).toBeLessThanOrEqual(wall + 1);
  });

  test('a plugin that exits without reading a large stdin, and one killed by a signal, are answered', async () => {
    const [ignored, killed] = await Promise.all([
      call('ignoresStdin', 'i', 'x'.repeat(2_000_000)),
      call('killed', 'k', '{}'),
    ]);
    expect(ignored.code).toBe(0);
    expect(killed.code).toBe(128 + 9);
  });

  test('a missing executable is a clear error, and the runner goes on', async () => {
    const missing: PluginCall = { plugin: [join(dir, 'no-such-plugin')], env: {}, stdin: '{}' };
    const error = await runner.call(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PluginStartError);
    expect((error as Error).message).toMatch(
      /cannot exec .*no-such-plugin.*(ENOENT|No such file or directory)/,
    );
    expect((await call('hash', 'after', 'abc')).stdout).toBe(
      `${createHash('sha256').update('abc').digest('hex')}\n`,
    );
  });
});

test('the C runner rejects a malformed request: exit 2 with a message, no hang', async () => {
  const child = spawn(CNI_RUNNER_EXECUTABLE, [], { stdio: 'pipe' });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.stdin.end('1 2 0 5 0\nonly\0');
  expect(await exited).toBe(2);
  expect(stderr).toMatch(/request 1: strings do not match argc \+ envc/);
});

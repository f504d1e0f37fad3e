import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { validateManifests } from '../../helpers/manifest-validation.js';

const run = promisify(execFile);
const scripts = [
  '.ci/run',
  'scripts/lab.sh',
  'scripts/setup.sh',
  'scripts/test.sh',
  'deploy/kind/e2e.sh',
  'deploy/kind/checks.sh',
  'deploy/kind/lab-checks.sh',
  'deploy/image/build.sh',
  'deploy/image/agent',
];

describe('deploy scripts', () => {
  it('are shellcheck-clean', async () => {
    // A missing shellcheck (code ENOENT) fails too, rather than passing with empty output.
    const result = await run('shellcheck', ['-x', ...scripts]).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code: unknown; stdout?: string }) => ({ code: error.code, stdout: error.stdout ?? '' }),
    );
    expect(result).toEqual({ code: 0, stdout: '' });
  });

  it('the e2e workloads pass the Kubernetes schema without unknown fields', async () => {
    const { kinds, problems } = await validateManifests(readFileSync('deploy/kind/workloads.yaml', 'utf8'));
    expect(problems).toEqual([]);
    expect(kinds).toContain('Service/website');
  });
});

describe('the check library (deploy/kind/checks.sh) with a stand-in runner', () => {
  // "kubectl exec POD -- CMD" runs CMD here through busybox: the library's logic (runner, pass/fail,
  // summary, exit status) is what is checked, not a cluster.
  const dir = mkdtempSync(join(tmpdir(), 'weft-checks-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const fakeKubectl = join(dir, 'kubectl');
  writeFileSync(
    fakeKubectl,
    '#!/bin/sh\n[ "$1" = exec ] || exit 2\nshift\n[ "$1" = -n ] && shift 2\nshift 2\nexec busybox "$@"\n',
  );
  chmodSync(fakeKubectl, 0o755);

  it('records passes and failures and fails the summary if anything failed', async () => {
    const server = createServer((_req, res) => res.end('hello from web\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const script = [
      'source deploy/kind/checks.sh',
      `KUBECTL=${fakeKubectl}`,
      `check "wget" http_get pod-a ${url} "hello from web"`,
      `check "wget in a namespace" http_get kube-system/pod-b ${url} "hello"`,
      `check "wrong text" http_get pod-a ${url} "goodbye"`,
      'skip "dns" "not here"',
      'checks_summary',
    ].join('\n');
    const result = await run('bash', ['-c', script]).catch(
      (error: { code: number; stdout: string }) => error,
    );
    server.close();
    const stdout = result.stdout;
    expect('code' in result ? result.code : 0).toBe(1);
    expect(stdout).toContain('PASS  wget\n');
    expect(stdout).toContain('PASS  wget in a namespace\n');
    expect(stdout).toMatch(/FAIL {2}wrong text/);
    expect(stdout).toContain('SKIP  dns: not here');
    expect(stdout).toContain('2 passed, 1 failed');
  });
});

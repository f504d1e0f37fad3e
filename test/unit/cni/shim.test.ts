/**
 * The plugin executable fed bad input exactly as a runtime would feed it (environment + stdin):
 * every error code the shim decides on its own, without an agent. Codes that need an agent's
 * answer (3 unknown container, 50 not ready) are in test/integration/cni/cni.test.ts.
 */

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIM_BUNDLE } from '../../helpers/cni.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-shim-'));
beforeAll(() => {
  if (!existsSync(SHIM_BUNDLE)) throw new Error(`${SHIM_BUNDLE} is missing: run "npm run build" first`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  status: number | null;
  json: { cniVersion?: string; code?: number; msg?: string; supportedVersions?: string[] };
}

function shim(env: Record<string, string>, stdin: string | number): Outcome {
  const result = spawnSync(process.execPath, [SHIM_BUNDLE], {
    env: { PATH: process.env.PATH ?? '', ...env },
    input: typeof stdin === 'string' ? stdin : undefined,
    stdio: [typeof stdin === 'number' ? stdin : 'pipe', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  return { status: result.status, json: JSON.parse(result.stdout || '{}') };
}

const attachmentEnv = (command: string) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'abc123',
  CNI_IFNAME: 'eth0',
  CNI_NETNS: '/var/run/netns/x',
  CNI_PATH: '/usr/lib/cni',
});
const config = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'weftnet',
    type: 'weft',
    socket: join(dir, 'nobody-listens.sock'),
    delQueueDir: join(dir, 'queue'),
    ...extra,
  });

describe('weft CNI shim', () => {
  it('answers VERSION from stdin alone, with dummy environment values', () => {
    const out = shim(
      { CNI_COMMAND: 'VERSION', CNI_PATH: 'dummy', CNI_NETNS: 'dummy' },
      '{"cniVersion":"0.4.0"}',
    );
    expect(out.status).toBe(0);
    expect(out.json).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  });

  it.each([
    ['1 incompatible version', attachmentEnv('ADD'), config({ cniVersion: '0.3.1' }), 1, 'cniVersion 0.3.1'],
    ['2 unsupported field', attachmentEnv('ADD'), config({ ipam: { type: 'host-local' } }), 2, '"ipam"'],
    ['4 no CNI_COMMAND', {}, config(), 4, 'CNI_COMMAND is not set'],
    ['4 unknown command', { CNI_COMMAND: 'FROB' }, config(), 4, 'FROB'],
    ['4 no container ID', { ...attachmentEnv('ADD'), CNI_CONTAINERID: '' }, config(), 4, 'CNI_CONTAINERID'],
    [
      '4 bad container ID',
      { ...attachmentEnv('ADD'), CNI_CONTAINERID: '../x' },
      config(),
      4,
      'CNI_CONTAINERID',
    ],
    ['4 bad ifname', { ...attachmentEnv('ADD'), CNI_IFNAME: 'a/b' }, config(), 4, 'CNI_IFNAME'],
    ['4 ifname too long', { ...attachmentEnv('DEL'), CNI_IFNAME: 'x'.repeat(16) }, config(), 4, 'CNI_IFNAME'],
    ['4 ADD without netns', { ...attachmentEnv('ADD'), CNI_NETNS: '' }, config(), 4, 'CNI_NETNS is not set'],
    [
      '4 netns with a space',
      { ...attachmentEnv('ADD'), CNI_NETNS: '/run/netns/a b' },
      config(),
      4,
      'CNI_NETNS',
    ],
    ['4 relative netns', { ...attachmentEnv('CHECK'), CNI_NETNS: 'netns/x' }, config(), 4, 'absolute'],
    ['4 malformed CNI_ARGS', { ...attachmentEnv('ADD'), CNI_ARGS: 'IgnoreUnknown' }, config(), 4, 'CNI_ARGS'],
    ['6 not JSON', attachmentEnv('ADD'), '{"cniVersion": "1.0.0",', 6, 'not valid JSON'],
    ['6 not an object', attachmentEnv('ADD'), '["weft"]', 6, 'not a JSON object'],
    ['6 empty stdin', attachmentEnv('DEL'), '', 6, 'no network configuration'],
    ['7 no cniVersion', attachmentEnv('ADD'), config({ cniVersion: undefined }), 7, '"cniVersion"'],
    ['7 bad name', attachmentEnv('ADD'), config({ name: 'has space' }), 7, '"name"'],
    ['7 no type', attachmentEnv('ADD'), config({ type: undefined }), 7, '"type"'],
    ['7 relative socket', attachmentEnv('ADD'), config({ socket: 'weft.sock' }), 7, '"socket"'],
    ['7 bad mtu', attachmentEnv('ADD'), config({ mtu: 100 }), 7, '"mtu"'],
    ['7 bad prevResult', attachmentEnv('CHECK'), config({ prevResult: 'x' }), 7, '"prevResult"'],
    [
      '7 bad valid-attachments',
      { CNI_COMMAND: 'GC' },
      config({ 'cni.dev/valid-attachments': {} }),
      7,
      'valid',
    ],
    ['11 agent unreachable (ADD)', attachmentEnv('ADD'), config(), 11, 'not reachable'],
    ['11 agent unreachable (CHECK)', attachmentEnv('CHECK'), config(), 11, 'not reachable'],
    [
      '11 agent unreachable (GC)',
      { CNI_COMMAND: 'GC' },
      config({ 'cni.dev/valid-attachments': [] }),
      11,
      'not',
    ],
    ['51 agent unreachable (STATUS)', { CNI_COMMAND: 'STATUS' }, config({ cniVersion: '1.1.0' }), 51, 'not'],
  ])('error %s', (_name, env, stdin, code, text) => {
    const out = shim(env, stdin);
    expect(out.status).toBe(1);
    expect(out.json.code).toBe(code);
    expect(out.json.msg).toContain(text);
  });

  it('error 5 when stdin cannot be read', () => {
    const fd = openSync(dir, 'r'); // a directory: read() fails with EISDIR
    try {
      const out = shim(attachmentEnv('ADD'), fd);
      expect(out.status).toBe(1);
      expect(out.json.code).toBe(5);
      expect(out.json.msg).toContain('stdin');
    } finally {
      closeSync(fd);
    }
  });

  it('answers errors in the configuration version', () => {
    const out = shim(attachmentEnv('ADD'), config({ cniVersion: '0.4.0', mtu: 1 }));
    expect(out.json).toMatchObject({ cniVersion: '0.4.0', code: 7 });
  });

  it('queues a DEL on disk when the agent is down, and succeeds', () => {
    const out = shim({ ...attachmentEnv('DEL'), CNI_NETNS: '' }, config());
    expect(out.status).toBe(0);
    expect(readdirSync(join(dir, 'queue'))).toEqual(['abc123:eth0.del.json']);
  });
});

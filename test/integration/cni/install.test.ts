import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_ENTRY, requireBuiltAgent } from '../../helpers/agent.js';
import { SHIM_EXECUTABLE } from '../../helpers/cni.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-install-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function installCni(...flags: string[]) {
  requireBuiltAgent();
  return spawnSync(process.execPath, [AGENT_ENTRY, 'install-cni', ...flags], { encoding: 'utf8' });
}

describe('agent install-cni', () => {
  const binDir = join(dir, 'opt-cni-bin');
  const confDir = join(dir, 'etc-cni-net.d');
  const flags = ['--bin-dir', binDir, '--conf-dir', confDir, '--socket', '/run/x/weft.sock', '--mtu', '1400'];

  it('installs the static plugin, which runs without Node.js on the PATH, and a weft-then-portmap conflist', () => {
    const first = installCni(...flags);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(first.stdout).toContain(`installed ${join(binDir, 'weft')}`);
    const conflist = JSON.parse(readFileSync(join(confDir, '10-weft.conflist'), 'utf8'));
    expect(conflist).toMatchObject({
      cniVersion: '1.0.0',
      name: 'weft',
      plugins: [
        { type: 'weft', socket: '/run/x/weft.sock', mtu: 1400, delQueueDir: '/var/lib/weft/cni-del-queue' },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    });
    expect(statSync(join(binDir, 'weft')).mode & 0o111).not.toBe(0);
    expect(readFileSync(join(binDir, 'weft')).equals(readFileSync(SHIM_EXECUTABLE))).toBe(true);
    // As a runtime on a node without Node.js runs it: absolute path, bare environment.
    const version = spawnSync(join(binDir, 'weft'), [], {
      env: { PATH: '/nonexistent', CNI_COMMAND: 'VERSION' },
      input: '{"cniVersion":"1.0.0"}',
      encoding: 'utf8',
    });
    expect(version.status).toBe(0);
    expect(JSON.parse(version.stdout)).toMatchObject({
      cniVersion: '1.0.0',
      supportedVersions: expect.any(Array),
    });
  });

  it('is idempotent, leaves no temp files, and removes what earlier versions installed beside the plugin', () => {
    for (const superseded of ['weft-node', 'weft-cni.cjs']) writeFileSync(join(binDir, superseded), 'old');
    const again = installCni(...flags);
    expect(again.status).toBe(0);
    expect(readdirSync(binDir)).toEqual(['weft']);
    expect(readdirSync(confDir)).toEqual(['10-weft.conflist']);
  });

  it('rejects a bad MTU with exit 2', () => {
    const bad = installCni('--bin-dir', binDir, '--conf-dir', confDir, '--mtu', '12');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--mtu 12');
  });
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { barChartSvg } from '../../../bench/chart.js';
import { crossNodePairs, renderMatrix } from '../../../src/lab/checks.js';
import { writeHostLocalConflist } from '../../../src/lab/cni.js';
import { writePodmanConfig } from '../../../src/lab/podman.js';
import { checkLabName, type LabPod } from '../../../src/lab/state.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-lab-unit-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const pod = (name: string, node: string, role: LabPod['role'] = 'shell'): LabPod => ({
  name,
  node,
  ip: '10.32.0.2',
  containerId: name,
  role,
});

describe('lab pieces', () => {
  it('podman config: runc, cgroupfs, vfs, CNI backend with the node’s dirs, the shared image store', () => {
    const dir = tempDir();
    const paths = {
      dir: join(dir, 'podman'),
      cniBinDir: join(dir, 'bin'),
      cniConfDir: join(dir, 'net.d'),
      imageStore: join(dir, 'images'),
    };
    writePodmanConfig(paths, 'weft');
    const containers = readFileSync(join(paths.dir, 'containers.conf'), 'utf8');
    const storage = readFileSync(join(paths.dir, 'storage.conf'), 'utf8');
    expect(containers).toContain('runtime = "runc"');
    expect(containers).toContain('cgroup_manager = "cgroupfs"');
    expect(containers).toContain('network_backend = "cni"');
    expect(containers).toContain(`cni_plugin_dirs = ["${paths.cniBinDir}"]`);
    expect(containers).toContain(`network_config_dir = "${paths.cniConfDir}"`);
    expect(containers).toContain('default_network = "weft"');
    expect(storage).toContain('driver = "vfs"');
    expect(storage).toContain(`graphroot = "${join(paths.dir, 'storage')}"`);
    expect(storage).toContain(`additionalimagestores = ["${paths.imageStore}"]`);
  });

  it('reference conflist: bridge on "weave" as gateway, host-local over the node’s subnet', () => {
    const dir = tempDir();
    writeHostLocalConflist(dir, { name: 'labnet', subnet: '10.32.2.0/24', mtu: 1500, dataDir: '/x' });
    const conf = JSON.parse(readFileSync(join(dir, '10-labnet.conflist'), 'utf8'));
    expect(conf.name).toBe('labnet');
    expect(conf.plugins[0]).toMatchObject({
      type: 'bridge',
      bridge: 'weave',
      isGateway: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.32.2.0/24' }]], dataDir: '/x' },
    });
  });

  it('checks pair only pods on different nodes, and web pods for wget', () => {
    const pods = [
      pod('a1', 'n1', 'web'),
      pod('a2', 'n1'),
      pod('b1', 'n2', 'web'),
      pod('b2', 'n2'),
      pod('c1', 'n3'),
    ];
    const pairs = crossNodePairs(pods).map(([a, b]) => `${a.name}>${b.name}`);
    expect(pairs).toHaveLength(5 * 5 - (2 * 2 + 2 * 2 + 1));
    expect(pairs).not.toContain('a1>a2');
    expect(crossNodePairs(pods, (p) => p.role === 'web').map(([a, b]) => `${a.name}>${b.name}`)).toEqual([
      'a1>b1',
      'a2>b1',
      'b1>a1',
      'b2>a1',
      'c1>a1',
      'c1>b1',
    ]);
  });

  it('the matrix marks failures and leaves untested pairs empty', () => {
    const out = renderMatrix(
      [
        { from: 'a', to: 'b', ok: true, detail: '0.5 ms' },
        { from: 'b', to: 'a', ok: false, detail: '100% packet loss' },
      ],
      (r) => r.detail,
    );
    const [, rowA, rowB] = out.split('\n');
    expect(rowA).toMatch(/^a\s+0\.5 ms\s+·$/);
    expect(rowB).toMatch(/^b\s+·\s+✗$/);
  });

  it('chart bars are proportional to the values; missing values are marked n/a', () => {
    const svg = barChartSvg(
      't',
      [
        {
          title: 'TCP',
          unit: 'Gbit/s',
          bars: [
            { label: 'x', value: 10 },
            { label: 'y', value: 5 },
            { label: 'z', value: null },
          ],
        },
      ],
      'note',
    );
    const heights = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"/g)].map(
      (m) => Number(m[1]),
    );
    expect(heights).toHaveLength(3);
    expect(heights[0]).toBeCloseTo(2 * (heights[1] as number), 0);
    expect(heights[2]).toBe(0);
    expect(svg).toContain('n/a');
  });

  it('lab names are short and safe for namespace names', () => {
    expect(() => checkLabName('lab')).not.toThrow();
    for (const bad of ['', 'Lab', '1ab', 'toolongname', 'a-b', '../x'])
      expect(() => checkLabName(bad)).toThrow(RangeError);
  });
});

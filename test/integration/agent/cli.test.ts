import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_ENTRY, requireBuiltAgent } from '../../helpers/agent.js';

const execFileAsync = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'weft-cli-'));

async function agent(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [AGENT_ENTRY, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function peerFile(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const good = {
  node: { name: 'n1', underlayAddress: '192.168.5.1', podCidrs: ['10.32.1.0/24'] },
  peers: [{ name: 'n2', underlayAddress: '192.168.5.2', podCidrs: ['10.32.2.0/24'] }],
};

describe('agent command line', () => {
  beforeAll(() => requireBuiltAgent());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints its version', async () => {
    const result = await agent(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^weft \d+\.\d+\.\d+\n$/);
  });

  it('rejects an unknown command and flags with usage and exit code 2', async () => {
    expect(await agent(['frobnicate'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/unknown command: frobnicate[\s\S]*Usage/),
    });
    expect((await agent(['run', '--no-such-flag'])).code).toBe(2);
  });

  const badConfigs: Array<[string, string[], RegExp]> = [
    ['no underlay address (gossip mode)', [], /--underlay-address is required/],
    [
      'a bad underlay address',
      ['--underlay-address', '10.0.0.300'],
      /--underlay-address 10\.0\.0\.300 must be an IPv4/,
    ],
    [
      'a bad --peers entry',
      ['--underlay-address', '10.0.0.1', '--peers', '10.0.0.256:6783'],
      /--peers: invalid peer address/,
    ],
    [
      'a bad --ipam-init',
      ['--underlay-address', '10.0.0.1', '--ipam-init', 'vote'],
      /--ipam-init vote must be/,
    ],
    [
      'a peer timeout not above the heartbeat',
      ['--underlay-address', '10.0.0.1', '--heartbeat-ms', '5000', '--peer-timeout-ms', '4000'],
      /--peer-timeout-ms 4000 must be longer than 6000 ms: --heartbeat-ms 5000/,
    ],
    ['a missing peer file', ['--peers-file', join(dir, 'absent.json')], /cannot read peer file/],
    ['a peer file that is not JSON', ['--peers-file', peerFile('garbage.json', '{nope')], /not valid JSON/],
    [
      'a pod range with host bits',
      [
        '--peers-file',
        peerFile('hostbits.json', { ...good, node: { ...good.node, podCidrs: ['10.32.1.7/24'] } }),
      ],
      /node\.podCidrs\.0: must be an IPv4 network/,
    ],
    [
      'an unknown field',
      ['--peers-file', peerFile('extra.json', { ...good, pears: [] })],
      /pears|Unrecognized key/,
    ],
    [
      'a duplicate node name',
      ['--peers-file', peerFile('dup.json', { ...good, peers: [{ ...good.peers[0], name: 'n1' }] })],
      /node name n1 appears more than once/,
    ],
    [
      'a pod range outside the cluster range',
      ['--peers-file', peerFile('outside.json', good), '--cluster-cidr', '10.96.0.0/16'],
      /pod range 10\.32\.1\.0\/24 is outside the cluster range 10\.96\.0\.0\/16/,
    ],
    [
      'a bad VNI',
      ['--peers-file', peerFile('vni.json', good), '--vni', '16777216'],
      /--vni 16777216 must be a whole number from 0 to 16777215/,
    ],
    ['a bad MTU', ['--peers-file', peerFile('mtu.json', good), '--mtu', '100'], /--mtu 100 must be/],
    [
      'a bad --health-listen',
      ['--peers-file', peerFile('health.json', good), '--health-listen', 'localhost:6784'],
      /--health-listen localhost:6784 must be IPV4:PORT/,
    ],
    [
      'gossip-mode flags next to a static peer file',
      ['--peers-file', peerFile('mixed.json', good), '--peers', '192.168.5.2', '--kube-peers'],
      /--peers, --kube-peers only apply to gossip mode/,
    ],
    [
      'a bad log level',
      ['--peers-file', peerFile('log.json', good), '--log-level', 'loud'],
      /--log-level loud/,
    ],
  ];
  it.each(badConfigs)('stops with exit code 2 and says what to fix for %s', async (_, args, message) => {
    const result = await agent(['run', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/configuration error|agent:/);
    expect(result.stderr).toMatch(message);
  });

  it('every status view and report say the agent is not running, with exit code 3; an unknown view is usage', async () => {
    for (const args of [['status', 'peers'], ['status', 'ipam', '--json'], ['report']]) {
      const result = await agent([...args, '--admin-socket', join(dir, 'nobody.sock')]);
      expect(result, args.join(' ')).toMatchObject({ code: 3, stdout: '' });
      expect(result.stderr).toMatch(/the agent is not running: no admin socket at/);
    }
    expect(await agent(['status', 'routes'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(
        /unknown status view: routes; one of peers, connections, ipam, dataplane/,
      ),
    });
  });

  it('status says the agent is not running, with exit code 3', async () => {
    const result = await agent(['status', '--admin-socket', join(dir, 'nobody.sock')]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/the agent is not running: no admin socket at/);
  });
});

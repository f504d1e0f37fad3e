import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { IpamStateError } from '../../../src/ipam/errors.js';
import { type IpamConfig, IpamNode } from '../../../src/ipam/node.js';
import {
  IPAM_STATE_FILE,
  ipamStatePath,
  loadIpamState,
  saveIpamState,
} from '../../../src/ipam/persistence.js';

const config: IpamConfig = {
  peer: 'node-a',
  clusterRange: '10.32.0.0/12',
  seeding: { kind: 'seeds', seeds: ['node-a', 'node-b'] },
};
const expected = { clusterRange: '10.32.0.0/12', peer: 'node-a' };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-ipam-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function savedNode(): Promise<IpamNode> {
  const node = IpamNode.create(config);
  node.allocate('pod-1');
  node.allocate('pod-2');
  await saveIpamState(dir, node.snapshot());
  return node;
}

async function rewriteState(edit: (state: Record<string, unknown>) => void): Promise<void> {
  const envelope = JSON.parse(await readFile(ipamStatePath(dir), 'utf8'));
  edit(envelope.state);
  const { createHash } = await import('node:crypto');
  envelope.checksum = createHash('sha256').update(JSON.stringify(envelope.state)).digest('hex');
  await writeFile(ipamStatePath(dir), JSON.stringify(envelope));
}

async function loadError(identity = expected): Promise<IpamStateError> {
  const error = await loadIpamState(dir, identity).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IpamStateError);
  return error as IpamStateError;
}

describe('IPAM state on disk', () => {
  test('no file: no state', async () => {
    expect(await loadIpamState(dir, expected)).toBeUndefined();
  });

  test('round trip: ring, allocations, votes and identity survive a restart', async () => {
    const before = await savedNode();
    const snapshot = await loadIpamState(dir, { clusterRange: '10.32.0.0/12' });
    expect(snapshot?.peer).toBe('node-a');
    const after = IpamNode.restore(config, snapshot as NonNullable<typeof snapshot>);
    expect(after.ring).toEqual(before.ring);
    expect(after.allocationList()).toEqual(before.allocationList());
    expect(after.allocate('pod-1')).toEqual(before.allocate('pod-1'));
    expect(after.allocate('pod-3')).toMatchObject({ ok: true, address: '10.32.0.4' });
  });

  test('a write interrupted before its rename leaves the previous state intact', async () => {
    await savedNode();
    const abandoned = join(dir, `.${IPAM_STATE_FILE}.4242.deadbeef.tmp`);
    await writeFile(abandoned, '{"format":"weft-ipam-state","chec');
    const snapshot = await loadIpamState(dir, expected);
    expect(snapshot?.allocations).toHaveLength(3);
    await expect(readFile(abandoned)).rejects.toThrow(/ENOENT/);
  });

  test('a truncated file is rejected with a clear message', async () => {
    await savedNode();
    const text = await readFile(ipamStatePath(dir), 'utf8');
    await writeFile(ipamStatePath(dir), text.slice(0, text.length / 2));
    expect((await loadError()).message).toMatch(
      /is not valid JSON .* truncated or corrupted\. Restore it from a backup/,
    );
  });

  test('a changed byte fails the checksum', async () => {
    await savedNode();
    const text = await readFile(ipamStatePath(dir), 'utf8');
    await writeFile(ipamStatePath(dir), text.replace('"pod-2"', '"pod-9"'));
    expect((await loadError()).message).toMatch(/fails its checksum: it was corrupted or edited/);
  });

  test('a file that is not ours is rejected', async () => {
    await writeFile(ipamStatePath(dir), '{"hello":"world"}');
    expect((await loadError()).message).toMatch(/is not a weft IPAM state file/);
  });

  test('a state failing the schema is rejected, naming the field', async () => {
    await savedNode();
    await rewriteState((state) => {
      state.allocations = [{ containerId: 42 }];
    });
    expect((await loadError()).message).toMatch(/is not a valid weft IPAM state \(.*allocations/);
  });

  test('a state for another cluster range is rejected', async () => {
    await savedNode();
    const error = await loadError({ clusterRange: '10.64.0.0/12', peer: 'node-a' });
    expect(error.message).toMatch(
      /is for cluster range 10.32.0.0\/12, but this agent is configured with 10.64.0.0\/12/,
    );
  });

  test('a state of another peer is rejected', async () => {
    await savedNode();
    const error = await loadError({ clusterRange: '10.32.0.0/12', peer: 'node-b' });
    expect(error.message).toMatch(/belongs to peer 'node-a', but this agent is peer 'node-b'/);
  });

  test('restore rejects states that do not fit the configuration or are inconsistent', async () => {
    const node = IpamNode.create(config);
    node.allocate('pod-1');
    const snapshot = node.snapshot();
    expect(() => IpamNode.restore({ ...config, peer: 'node-b' }, snapshot)).toThrow(IpamStateError);
    expect(() => IpamNode.restore({ ...config, clusterRange: '10.32.0.0/16' }, snapshot)).toThrow(
      /cluster range/,
    );
    expect(() => IpamNode.restore({ ...config, seeding: { kind: 'seeds', seeds: ['x'] } }, snapshot)).toThrow(
      /seed list/,
    );
    const outside = { ...snapshot, allocations: [{ containerId: 'p', address: '10.47.255.1' }] };
    expect(() => IpamNode.restore(config, outside)).toThrow(/not in this peer's ranges/);
    const twice = {
      ...snapshot,
      allocations: [...snapshot.allocations, { containerId: 'q', address: '10.32.0.2' }],
    };
    expect(() => IpamNode.restore(config, twice)).toThrow(/twice/);
  });
});

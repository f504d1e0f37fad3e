import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { postToAgent } from '../../../src/api/admin-client.js';
import { AdminRequestError, AdminServer } from '../../../src/api/admin-server.js';
import { probeTargets, readinessOf } from '../../../src/api/status-report.js';
import { createLogger } from '../../../src/util/log.js';
import { awaitingConsensusReport, clusterReport, staticReport } from './fixtures.js';

describe('readinessOf', () => {
  test('ready needs the data plane running and IPAM with a ring; static mode needs the data plane only', () => {
    expect(readinessOf(clusterReport(), true)).toEqual({
      ready: true,
      dataplane: true,
      ipam: true,
      reasons: [],
    });
    expect(readinessOf(awaitingConsensusReport(), true)).toEqual({
      ready: false,
      dataplane: true,
      ipam: false,
      reasons: ['IPAM awaiting consensus: quorum 2, known 1'],
    });
    expect(readinessOf(clusterReport(), false).reasons).toEqual(['data plane not running']);
    expect(readinessOf(staticReport(), true).ready).toBe(true);
    expect(readinessOf(staticReport(), false).ready).toBe(false);
  });
});

describe('probeTargets', () => {
  test('every peer underlay address once, sorted, this node never', () => {
    const report = clusterReport();
    const routed = report.dataplane.peers.map((p) => p.underlayAddress);
    const gossiped = report.controlPlane?.peers.map((p) => p.underlayAddress) ?? [];
    expect(probeTargets('192.168.198.1', [...routed, ...gossiped, '192.168.198.1'])).toEqual([
      '192.168.198.2',
      '192.168.198.3',
    ]);
    expect(probeTargets('192.168.199.1', ['192.168.199.2', '192.168.199.2'])).toEqual(['192.168.199.2']);
  });
});

describe('AdminServer request observer', () => {
  test('sees each request start and its answer: status and body, errors included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-admin-'));
    const seen: string[] = [];
    const server = new AdminServer(
      join(dir, 'a.sock'),
      {
        get: {},
        post: {
          '/v1/cni/add': () => ({ ok: true }),
          '/v1/cni/del': () => {
            throw new AdminRequestError(409, 'busy');
          },
        },
      },
      createLogger('fatal'),
      (method, path) => {
        seen.push(`start ${method} ${path}`);
        return (status, body) => seen.push(`end ${path} ${status} ${JSON.stringify(body)}`);
      },
    );
    await server.start();
    try {
      await postToAgent(join(dir, 'a.sock'), '/v1/cni/add', {});
      await expect(postToAgent(join(dir, 'a.sock'), '/v1/cni/del', {})).rejects.toThrow('busy');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(seen).toEqual([
      'start POST /v1/cni/add',
      'end /v1/cni/add 200 {"ok":true}',
      'start POST /v1/cni/del',
      'end /v1/cni/del 409 {"error":"busy"}',
    ]);
  });
});

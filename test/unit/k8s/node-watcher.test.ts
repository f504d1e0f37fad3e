import { mkdtempSync, rmSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeCore } from '../../../src/k8s/kube-core.js';
import { kubeconfigEndpoint } from '../../../src/k8s/kube-endpoint.js';
import { KubeHttp } from '../../../src/k8s/kube-http.js';
import { nodeSchema } from '../../../src/k8s/kube-objects.js';
import { NodeWatcher } from '../../../src/k8s/node-watcher.js';
import { waitFor } from '../../helpers/agent.js';
import { type ScriptedApi, scriptedApi, sendJson, sendStatus, writeKubeconfig } from './scripted-api.js';
import { quietLog } from './standin-fixture.js';

// Node list + watch against a server that writes the stream exactly as each test needs: split lines,
// bookmarks, expiry, dropped connections.
let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

const node = (name: string, ip: string, resourceVersion: string, extra: Record<string, unknown> = {}) => ({
  kind: 'Node',
  metadata: { name, resourceVersion, ...extra },
  status: { addresses: [{ type: 'InternalIP', address: ip }] },
});
const line = (type: string, object: unknown) => `${JSON.stringify({ type, object })}\n`;
const list = (resourceVersion: string, items: unknown[]) => ({
  kind: 'NodeList',
  metadata: { resourceVersion },
  items,
});

function startWatchStream(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.flushHeaders();
}

interface Script {
  list: (n: number) => unknown;
  /** The n-th watch request (1-based) with its query. */
  watch: (n: number, res: ServerResponse, query: URLSearchParams) => void;
}

async function watcherAgainst(script: Script): Promise<{
  api: ScriptedApi;
  watcher: NodeWatcher;
  deleted: string[];
  counts: { lists: number; watches: number };
}> {
  const counts = { lists: 0, watches: 0 };
  const api = await scriptedApi((_req, res, url) => {
    if (url.searchParams.get('watch') === 'true') script.watch(++counts.watches, res, url.searchParams);
    else sendJson(res, 200, script.list(++counts.lists));
  });
  cleanup.push(() => api.close());
  const dir = mkdtempSync(join(tmpdir(), 'weft-watch-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const core = new KubeCore(
    new KubeHttp(await kubeconfigEndpoint(writeKubeconfig(dir, { server: api.url }, { token: 't' }))),
  );
  cleanup.push(() => core.close());
  const watcher = new NodeWatcher(core, quietLog, {
    watchTimeoutSeconds: 60,
    restartMinMs: 20,
    restartMaxMs: 100,
  });
  cleanup.push(() => watcher.stop());
  const deleted: string[] = [];
  watcher.on('deleted', (name) => deleted.push(name));
  await watcher.start();
  return { api, watcher, deleted, counts };
}

const addresses = (watcher: NodeWatcher) => watcher.list().map((n) => `${n.name}=${n.internalIPv4}`);
const watchVersions = (api: ScriptedApi) =>
  api.requests
    .filter((r) => r.url.searchParams.has('watch'))
    .map((r) => r.url.searchParams.get('resourceVersion'));

describe('Node list + watch', () => {
  it('reads events split anywhere across chunks, follows BOOKMARKs, and resumes from their resourceVersion', async () => {
    const { api, watcher, deleted } = await watcherAgainst({
      list: () => list('10', [node('a', '10.0.0.1', '9')]),
      watch: (n, res) => {
        startWatchStream(res);
        if (n > 1) {
          res.write(line('DELETED', node('b', '10.0.0.2', '43')));
          return;
        }
        // Labels with multi-byte characters (dropped by the client) so that a cut can fall inside one.
        const stream = [
          line('ADDED', node('b', '10.0.0.2', '11', { labels: { zone: 'zürich-ø' } })),
          line('MODIFIED', node('a', '10.0.0.11', '12')),
          line('BOOKMARK', { kind: 'Node', metadata: { resourceVersion: '42' } }),
        ].join('');
        const bytes = Buffer.from(stream);
        void (async () => {
          for (let at = 0; at < bytes.length; at += 7) {
            res.write(bytes.subarray(at, at + 7));
            await sleep(1);
          }
          res.end();
        })();
      },
    });
    await waitFor(() => deleted.includes('b'), 5_000, 'second watch never delivered');
    expect(watchVersions(api)).toEqual(['10', '42']);
    expect(addresses(watcher)).toEqual(['a=10.0.0.11']);
    const query = api.requests.find((r) => r.url.searchParams.has('watch'))?.url.searchParams;
    expect(query?.get('allowWatchBookmarks')).toBe('true');
    expect(query?.get('timeoutSeconds')).toBe('60');
  });

  it('lists again when the watch expires (410 Gone, as an ERROR event or as the answer) and reports what went meanwhile', async () => {
    const changes: string[][] = [];
    const { api, watcher, deleted, counts } = await watcherAgainst({
      list: (n) =>
        n === 1
          ? list('5', [node('a', '10.0.0.1', '1'), node('b', '10.0.0.2', '2')])
          : list(String(20 * n), [node('a', '10.0.0.1', '1'), node('c', '10.0.0.3', '19')]),
      watch: (n, res) => {
        if (n === 1) {
          startWatchStream(res);
          res.end(
            line('ERROR', {
              kind: 'Status',
              code: 410,
              reason: 'Expired',
              message: 'too old resource version: 5 (15)',
            }),
          );
        } else if (n === 2) {
          sendStatus(res, 410, 'Gone', 'too old resource version: 40 (45)');
        } else startWatchStream(res);
      },
    });
    watcher.on('changed', (nodes) => changes.push(nodes.map((n) => n.name)));
    await waitFor(() => counts.watches >= 3, 5_000, 'no third watch');
    expect(counts.lists).toBe(3);
    expect(watchVersions(api)).toEqual(['5', '40', '60']);
    expect(deleted).toEqual(['b']);
    expect(addresses(watcher)).toEqual(['a=10.0.0.1', 'c=10.0.0.3']);
    expect(changes).toEqual([['a', 'c']]);
  });

  it('watches again from the last event when the connection drops mid-stream, and backs off while the server fails', async () => {
    const { api, watcher, counts } = await watcherAgainst({
      list: () => list('3', []),
      watch: (n, res) => {
        if (n === 1) {
          startWatchStream(res);
          res.write(line('ADDED', node('x', '10.0.0.9', '11')));
          // Half a line, then the connection goes (no chunked terminator).
          res.write('{"type":"ADDED","object":{"kind":"No');
          setTimeout(() => res.socket?.destroy(), 20);
        } else if (n <= 4) {
          sendStatus(res, 500, 'InternalError', 'etcd is sad');
        } else startWatchStream(res);
      },
    });
    await waitFor(() => counts.watches >= 5, 5_000, 'watch not resumed');
    expect(counts.lists).toBe(1);
    expect(watchVersions(api)).toEqual(['3', '11', '11', '11', '11']);
    expect(addresses(watcher)).toEqual(['x=10.0.0.9']);
    // Failures 2, 3, 4 waited 20, 40, 80 ms (capped at 100), each jittered down by at most half: the
    // retries are spread, not a hot loop.
    const times = api.requests.filter((r) => r.url.searchParams.has('watch')).map((r) => r.at);
    expect((times[4] as number) - (times[1] as number)).toBeGreaterThanOrEqual((20 + 40 + 80) / 2 - 15);
  });
});

describe('a watch stream', () => {
  it('fails when nothing arrives for its idle time (a dead connection), and on an unknown event', async () => {
    let answer: (res: ServerResponse) => void = startWatchStream;
    const api = await scriptedApi((_req, res) => answer(res));
    cleanup.push(() => api.close());
    const dir = mkdtempSync(join(tmpdir(), 'weft-watch-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const http = new KubeHttp(await kubeconfigEndpoint(writeKubeconfig(dir, { server: api.url }, {})));
    cleanup.push(() => http.close());
    const watch = () =>
      http.watch(
        {
          method: 'GET',
          path: '/api/v1/nodes',
          query: { watch: 'true' },
          rbac: { verb: 'watch', resource: 'nodes' },
        },
        nodeSchema,
        () => {},
        { idleMs: 200, signal: new AbortController().signal },
      );
    const started = performance.now();
    await expect(watch()).rejects.toThrow(/nothing from the API server for 200 ms/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    answer = (res) => {
      startWatchStream(res);
      res.write(line('SOMETHING', {}));
    };
    await expect(watch()).rejects.toThrow(/malformed watch event/);
  });
});

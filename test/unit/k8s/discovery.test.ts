import { afterEach, describe, expect, it } from 'vitest';
import { KubePeerSource } from '../../../src/k8s/kube-peer-source.js';
import { NodeWatcher } from '../../../src/k8s/node-watcher.js';
import { waitFor } from '../../helpers/agent.js';
import { quietLog, startStandin } from './standin-fixture.js';

// Discovery against the Kubernetes API stand-in (test/helpers/kube-api-standin.ts says why no real
// API server can run here): list, then watch from the list's resourceVersion.
let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

describe('Node discovery (list + watch) as a gossip peer source', () => {
  it('reports the other nodes’ InternalIPs and follows adds, address changes, deletes and watch restarts', async () => {
    const standin = await startStandin();
    cleanup.push(standin.close);
    standin.api.addNode('n1', '10.0.0.1');
    standin.api.addNode('n2', '10.0.0.2');
    standin.api.addNode('n3', undefined); // kubelet has not reported addresses yet
    const { core } = await standin.connect();
    const watcher = new NodeWatcher(core, quietLog);
    cleanup.push(() => watcher.stop());
    await watcher.start();
    expect(watcher.isSynced).toBe(true);

    const reports: string[][] = [];
    const source = new KubePeerSource(watcher, { selfName: 'n1', gossipPort: 6783 });
    source.start((addresses) => reports.push(addresses));
    cleanup.push(async () => source.stop());
    expect(reports.at(-1)).toEqual(['/ip4/10.0.0.2/tcp/6783']);

    const deleted: string[] = [];
    watcher.on('deleted', (name) => deleted.push(name));
    standin.api.addNode('n3', '10.0.0.3');
    await waitFor(async () => reports.at(-1)?.length === 2, 5_000, 'n3 address not reported');
    expect(reports.at(-1)).toEqual(['/ip4/10.0.0.2/tcp/6783', '/ip4/10.0.0.3/tcp/6783']);

    standin.api.addNode('n2', '10.0.0.22');
    await waitFor(
      async () => reports.at(-1)?.includes('/ip4/10.0.0.22/tcp/6783') ?? false,
      5_000,
      'IP change',
    );

    // The API server ends watches now and then; the informer resumes from its resourceVersion.
    const watchesBefore = standin.api.counters.watches;
    standin.api.dropWatches();
    await waitFor(async () => standin.api.counters.watches > watchesBefore, 5_000, 'watch not resumed');
    standin.api.deleteNode('n3');
    await waitFor(async () => deleted.includes('n3'), 5_000, 'deletion not seen after watch restart');
    expect(reports.at(-1)).toEqual(['/ip4/10.0.0.22/tcp/6783']);
    expect(watcher.list().map((n) => n.name)).toEqual(['n1', 'n2']);
    // A node's own address is never a peer, and nothing was reported twice in a row.
    expect(reports.flat()).not.toContain('/ip4/10.0.0.1/tcp/6783');
    for (let i = 1; i < reports.length; i++) expect(reports[i]).not.toEqual(reports[i - 1]);
  });

  it('waits for the API server and retries a failed list', async () => {
    const standin = await startStandin();
    cleanup.push(standin.close);
    standin.api.addNode('n1', '10.0.0.1');
    const failing = standin.api.gate((r) => r.path === '/api/v1/nodes' && !r.query.has('watch'));
    const { core } = await standin.connect();
    const watcher = new NodeWatcher(core, quietLog);
    cleanup.push(() => watcher.stop());
    let synced = false;
    const started = watcher.start().then(() => {
      synced = true;
    });
    await waitFor(async () => failing.held() === 1, 5_000, 'no list request');
    expect(synced).toBe(false);
    failing.release();
    await started;
    expect(watcher.list().map((n) => n.internalIPv4)).toEqual(['10.0.0.1']);
  });
});

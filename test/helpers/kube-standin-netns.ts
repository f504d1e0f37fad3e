import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestCluster } from './cluster.js';
import { KubeApiStandin, standinKubeconfig } from './kube-api-standin.js';

/** Serves the stand-in's unix socket on 127.0.0.1:6443 inside a node namespace. */
const FORWARDER = `
const net = require('node:net');
net.createServer((c) => {
  const u = net.connect(process.argv[1]);
  c.pipe(u).pipe(c);
  u.on('error', () => c.destroy());
  c.on('error', () => u.destroy());
}).listen(6443, '127.0.0.1');`;

/**
 * The Kubernetes API stand-in for agents in a TestCluster's node namespaces: it lives in this process
 * on a unix socket; in each node namespace a small forwarder serves it on 127.0.0.1:6443, where the
 * returned kubeconfig points. Closed with the cluster's namespace group.
 */
export async function standinForCluster(
  cluster: TestCluster,
): Promise<{ api: KubeApiStandin; kubeconfig: string }> {
  const api = new KubeApiStandin();
  const socket = join(cluster.workDir, 'kube-api.sock');
  await api.listenUnix(socket);
  cluster.group.onDestroy(() => void api.close());
  const kubeconfig = join(cluster.workDir, 'kubeconfig');
  writeFileSync(kubeconfig, standinKubeconfig('http://127.0.0.1:6443'));
  for (const node of cluster.nodes)
    cluster.group.spawn(node.name, [process.execPath, '-e', FORWARDER, socket]);
  return { api, kubeconfig };
}

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectToKube, type KubeConnection } from '../../../src/k8s/kube-client.js';
import type { KubeCore } from '../../../src/k8s/kube-core.js';
import { KubeApiStandin, standinKubeconfig } from '../../helpers/kube-api-standin.js';

export const quietLog = pino({ level: 'silent' });

/** The stand-in on a loopback port and a kubeconfig for it; `connect()` gives one client per agent (closed with the stand-in). */
export async function startStandin(): Promise<{
  api: KubeApiStandin;
  dir: string;
  connect: () => Promise<KubeConnection>;
  close: () => Promise<void>;
}> {
  const api = new KubeApiStandin();
  const server = await api.listen();
  const dir = mkdtempSync(join(tmpdir(), 'weft-kube-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, standinKubeconfig(server));
  const clients: KubeCore[] = [];
  return {
    api,
    dir,
    connect: async () => {
      const connection = await connectToKube({ kubeconfig });
      clients.push(connection.core);
      return connection;
    },
    close: async () => {
      for (const client of clients) client.close();
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

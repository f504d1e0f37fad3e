import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectToKube, type KubeConnection } from '../../../src/k8s/kube-client.js';
import { KubeApiStandin, standinKubeconfig } from '../../helpers/kube-api-standin.js';

export const quietLog = pino({ level: 'silent' });

/** The stand-in on a loopback port and a kubeconfig for it; `connect()` gives one client per agent. */
export async function startStandin(): Promise<{
  api: KubeApiStandin;
  dir: string;
  connect: () => KubeConnection;
  close: () => Promise<void>;
}> {
  const api = new KubeApiStandin();
  const server = await api.listen();
  const dir = mkdtempSync(join(tmpdir(), 'weft-kube-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, standinKubeconfig(server));
  return {
    api,
    dir,
    connect: () => connectToKube({ kubeconfig }),
    close: async () => {
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

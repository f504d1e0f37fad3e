/**
 * The CNI networks the CRI tests and benches give containerd: Debian's reference bridge +
 * host-local, or weft as `agent install-cni` installs it.
 */
import { join } from 'node:path';
import { run } from '../../../src/util/exec.js';
import { AGENT_ENTRY, waitFor } from '../agent.js';
import type { Containerd } from '../containerd.js';

export const REFERENCE_NETWORK = 'refnet';

/** bridge + host-local on `bridge` with `subnet`; returns host-local's data dir for that network. */
export async function useBridgeNetwork(
  containerd: Containerd,
  subnet: string,
  bridge = 'cni-ref0',
): Promise<string> {
  containerd.installReferencePlugins();
  const dataDir = join(containerd.workDir, 'host-local');
  await containerd.writeConflist(`10-${REFERENCE_NETWORK}.conflist`, {
    cniVersion: '1.0.0',
    name: REFERENCE_NETWORK,
    plugins: [
      {
        type: 'bridge',
        bridge,
        isGateway: true,
        ipMasq: false,
        ipam: { type: 'host-local', dataDir, ranges: [[{ subnet }]] },
      },
    ],
  });
  await waitForNetworkReady(containerd);
  return join(dataDir, REFERENCE_NETWORK);
}

/**
 * weft's plugin and conflist installed by `agent install-cni` for the agent of `node` (its socket,
 * and its state dir, where the plugin queues DELs while the agent is down).
 */
export async function useWeftNetwork(
  containerd: Containerd,
  node: { socket: string; stateDir: string },
): Promise<void> {
  containerd.installReferencePlugins();
  const dirs = ['--bin-dir', containerd.cniBinDir, '--conf-dir', containerd.cniConfDir];
  const agent = ['--socket', node.socket, '--state-dir', node.stateDir];
  await run([process.execPath, AGENT_ENTRY, 'install-cni', ...dirs, ...agent]);
  await waitForNetworkReady(containerd);
}

/** Waits until containerd has loaded a conflist (it reloads its conf dir live). */
export function waitForNetworkReady(containerd: Containerd): Promise<void> {
  return waitFor(
    async () => (await containerd.cri.conditions()).some((c) => c.type === 'NetworkReady' && c.status),
    10_000,
    `containerd reports no ready CNI network in ${containerd.cniConfDir}`,
  );
}

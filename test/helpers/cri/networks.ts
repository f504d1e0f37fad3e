/**
 * containerd set up for the CRI tests and benches: in a node namespace of a fresh group, with
 * Debian's reference bridge + host-local, or with weft as `agent install-cni` installs it.
 */
import { join } from 'node:path';
import { installWeftCni, linkReferencePlugins } from '../../../src/lab/cni.js';
import { AGENT_ENTRY, waitFor } from '../agent.js';
import { TestCluster } from '../cluster.js';
import { Containerd } from '../containerd.js';
import { NetnsGroup } from '../netns.js';

const REFERENCE_NETWORK = 'refnet';

/** A new group for `purpose`, after removing what dead runs left (namespaces, containerd work dirs). */
export async function freshCriGroup(purpose: string): Promise<NetnsGroup> {
  await NetnsGroup.sweepStale(`wt-${purpose}`);
  Containerd.sweepStale();
  return NetnsGroup.create(purpose);
}

/**
 * Node namespace `ns` with its own containerd on bridge + host-local (`subnet`); `ipamDir` is
 * host-local's data dir for the network (one file per allocated address).
 */
export async function startBridgeNode(
  group: NetnsGroup,
  ns: string,
  subnet: string,
): Promise<{ containerd: Containerd; ipamDir: string }> {
  await group.addNamespace(ns);
  const containerd = await Containerd.start(group, ns);
  linkReferencePlugins(containerd.cniBinDir);
  const dataDir = join(containerd.workDir, 'host-local');
  await containerd.writeConflist(`10-${REFERENCE_NETWORK}.conflist`, {
    cniVersion: '1.0.0',
    name: REFERENCE_NETWORK,
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni-ref0',
        isGateway: true,
        ipMasq: false,
        ipam: { type: 'host-local', dataDir, ranges: [[{ subnet }]] },
      },
    ],
  });
  await waitForNetworkReady(containerd);
  return { containerd, ipamDir: join(dataDir, REFERENCE_NETWORK) };
}

/**
 * A weft cluster of `size` nodes with ready agents, and containerd on node n1 with weft's plugin
 * and conflist installed by `agent install-cni` for n1's agent (its socket, and its state dir,
 * where the plugin queues DELs while the agent is down).
 */
export async function startWeftNode(
  group: NetnsGroup,
  size: number,
): Promise<{ cluster: TestCluster; containerd: Containerd }> {
  const cluster = await TestCluster.create(group, size);
  for (const node of cluster.nodes) cluster.startAgent(node.name);
  await cluster.waitUntilReady();
  const containerd = await Containerd.start(group, 'n1');
  linkReferencePlugins(containerd.cniBinDir);
  const { socket, stateDir } = cluster.node('n1');
  await installWeftCni(AGENT_ENTRY, {
    binDir: containerd.cniBinDir,
    confDir: containerd.cniConfDir,
    socket,
    stateDir,
  });
  await waitForNetworkReady(containerd);
  return { cluster, containerd };
}

/** Waits until containerd has loaded a conflist (it reloads its conf dir live). */
function waitForNetworkReady(containerd: Containerd): Promise<void> {
  return waitFor(
    async () => (await containerd.cri.conditions()).some((c) => c.type === 'NetworkReady' && c.status),
    10_000,
    `containerd reports no ready CNI network in ${containerd.cniConfDir}`,
  );
}

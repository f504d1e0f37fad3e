import type { AgentConfig } from '../src/config/agent-config.js';
import { gatewayOf } from '../src/config/agent-config.js';
import type { RouteTableSpec } from '../src/dataplane/route-table.js';
import { ensureRoute, NodePlumbing } from '../src/plumbing/index.js';
import type { Logger } from '../src/util/log.js';
import { type ModeEndpoints, startAdmin } from './admin.js';
import { Dataplane } from './dataplane.js';
import { type RunningAgent, resolveMtu, TUN_TXQUEUELEN } from './node-setup.js';

/** `agent run --peers-file`: fixed ranges from a file, no control plane. */
export async function startStaticAgent(config: AgentConfig, log: Logger): Promise<RunningAgent> {
  const { mtu, underlay } = await resolveMtu(config.underlayAddress, config.mtu, log);
  const dataplane = await Dataplane.open({ ...config, mtu }, log);
  try {
    const gateway = gatewayOf(config.podCidrs[0] as string);
    await new NodePlumbing().setUp({
      bridge: config.bridgeName,
      gatewayCidr: `${gateway.address}/${gateway.prefix}`,
      tunName: config.tunName,
      clusterCidr: config.clusterCidr,
      mtu,
      txqueuelen: TUN_TXQUEUELEN,
    });
    // Pod ranges beyond the first sit behind the same bridge.
    for (const cidr of config.podCidrs.slice(1)) await ensureRoute({ cidr, dev: config.bridgeName });
    dataplane.setRoutes(routeSpec(config));
  } catch (error) {
    dataplane.close();
    throw error;
  }
  dataplane.start();
  log.info({ tun: config.tunName, mtu, underlay: underlay.ifname }, 'data plane running with static peers');

  let current = config;
  const endpoints: ModeEndpoints = {
    status: () => ({
      node: { name: current.nodeName, underlayAddress: current.underlayAddress, podCidrs: current.podCidrs },
      clusterCidr: current.clusterCidr,
      controlPlane: null,
    }),
  };
  const admin = await startAdmin(config, dataplane, config.bridgeName, endpoints, log).catch(
    (error: unknown) => {
      dataplane.close();
      throw error;
    },
  );
  return {
    updatePeers(next: AgentConfig): void {
      dataplane.setRoutes(routeSpec(next));
      current = next;
      log.info({ peers: next.peers.map((p) => p.name) }, 'route table replaced');
    },
    async stop(): Promise<void> {
      await admin.stop();
      dataplane.close();
      log.info('data plane stopped');
    },
  };
}

function routeSpec(config: AgentConfig): RouteTableSpec {
  return { localCidrs: config.podCidrs, peers: config.peers };
}

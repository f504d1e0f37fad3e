import { AdminServer } from '../src/api/admin-server.js';
import { peerTraffic, type StatusReport } from '../src/api/status-report.js';
import { type AgentConfig, gatewayOf } from '../src/config/agent-config.js';
import { DataplaneCounters } from '../src/dataplane/counters.js';
import { Forwarder } from '../src/dataplane/forwarder.js';
import { KernelTun } from '../src/dataplane/kernel-tun.js';
import { KernelUdp } from '../src/dataplane/kernel-udp.js';
import { RouteTable, type RouteTableSpec } from '../src/dataplane/route-table.js';
import { ensureRoute, NodePlumbing } from '../src/plumbing/index.js';
import { overlayMtu, underlayMtuOf } from '../src/plumbing/mtu.js';
import type { Logger } from '../src/util/log.js';
import { weftVersion } from '../src/util/version.js';

/** Deep kernel queues: a TUN's default 500 packets overflows under TCP bursts (see bench notes). */
const TUN_TXQUEUELEN = 10_000;
const SOCKET_BUFFER_BYTES = 8 * 1024 * 1024;
const TUN_BUSY_RETRY_MS = 200;
const TUN_BUSY_TIMEOUT_MS = 10_000;

export interface RunningAgent {
  /** Replaces the peers and their ranges, e.g. after the peer file changed. */
  updatePeers(config: AgentConfig): void;
  stop(): Promise<void>;
}

/** The composition root for `agent run`: plumbing, devices, forwarder and admin API. */
export async function startAgent(config: AgentConfig, log: Logger): Promise<RunningAgent> {
  const underlay = await underlayMtuOf(config.underlayAddress);
  const mtu = config.mtu ?? overlayMtu(underlay.mtu);
  if (config.mtu !== undefined && config.mtu > overlayMtu(underlay.mtu)) {
    log.warn(
      { mtu, underlayMtu: underlay.mtu },
      'MTU is larger than the underlay allows; packets will be fragmented',
    );
  }
  const primaryCidr = config.podCidrs[0] as string;
  const gateway = gatewayOf(primaryCidr);

  const tun = await openTunWhenFree(config.tunName, log);
  const plumbing = new NodePlumbing();
  let udp: KernelUdp | undefined;
  try {
    await plumbing.setUp({
      bridge: config.bridgeName,
      gatewayCidr: `${gateway.address}/${gateway.prefix}`,
      tunName: config.tunName,
      clusterCidr: config.clusterCidr,
      mtu,
      txqueuelen: TUN_TXQUEUELEN,
    });
    // Pod ranges beyond the first sit behind the same bridge.
    for (const cidr of config.podCidrs.slice(1)) await ensureRoute({ cidr, dev: config.bridgeName });
    udp = KernelUdp.open(config.underlayAddress, config.dataPort, {
      rcvbuf: SOCKET_BUFFER_BYTES,
      sndbuf: SOCKET_BUFFER_BYTES,
    });
  } catch (error) {
    tun.close();
    throw error;
  }

  const counters = new DataplaneCounters();
  const forwarder = new Forwarder({
    tun,
    udp,
    counters,
    routes: RouteTable.build(routeSpec(config)),
    vni: config.vni,
    maxInnerSize: mtu,
  });
  forwarder.start();
  log.info(
    {
      tun: config.tunName,
      mtu,
      underlay: underlay.ifname,
      listen: `${config.underlayAddress}:${config.dataPort}`,
    },
    'data plane running',
  );

  let current = config;
  const report = (): StatusReport => ({
    version: weftVersion,
    node: { name: current.nodeName, underlayAddress: current.underlayAddress, podCidrs: current.podCidrs },
    clusterCidr: current.clusterCidr,
    dataplane: {
      mode: 'userspace, batched (recvmmsg/sendmmsg)',
      tun: current.tunName,
      bridge: current.bridgeName,
      mtu,
      vni: current.vni,
      listen: `${current.underlayAddress}:${current.dataPort}`,
      counters: counters.snapshot(),
      peers: peerTraffic(forwarder.routeTable),
    },
  });
  const admin = new AdminServer(
    config.adminSocket,
    { '/v1/status': report },
    log.child({ component: 'admin' }),
  );
  try {
    await admin.start();
  } catch (error) {
    forwarder.stop();
    udp.close();
    tun.close();
    throw error;
  }

  const openUdp = udp;
  return {
    updatePeers(next: AgentConfig): void {
      forwarder.setRoutes(forwarder.routeTable.replace(routeSpec(next)));
      current = next;
      log.info({ peers: next.peers.map((p) => p.name) }, 'route table replaced');
    },
    async stop(): Promise<void> {
      forwarder.stop();
      await admin.stop();
      openUdp.close();
      // Closing the non-persistent TUN removes it and its routes; the bridge stays for the pods.
      tun.close();
      log.info('data plane stopped');
    },
  };
}

export function routeSpec(config: AgentConfig): RouteTableSpec {
  return { localCidrs: config.podCidrs, peers: config.peers };
}

/** A restarted agent may find its TUN still held by the old process for a moment (EBUSY). */
async function openTunWhenFree(name: string, log: Logger): Promise<KernelTun> {
  const deadline = Date.now() + TUN_BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      return KernelTun.open(name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || Date.now() > deadline) throw error;
      log.warn({ tun: name }, 'TUN device busy (previous agent still exiting); retrying');
      await new Promise((resolve) => setTimeout(resolve, TUN_BUSY_RETRY_MS));
    }
  }
}

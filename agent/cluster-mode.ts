import { AdminRequestError } from '../src/api/admin-server.js';
import type { ControlPlaneReport } from '../src/api/status-report.js';
import { startCni } from '../src/cni/agent-cni.js';
import type { ClusterConfig } from '../src/config/cluster-config.js';
import { IpamDriver } from '../src/control/ipam-driver.js';
import { type BridgeLayout, bridgeLayout, deriveRoutes } from '../src/control/routes.js';
import { GossipNode, loadClusterSecret } from '../src/gossip/index.js';
import { IpamNode, ipamStatus, loadIpamState, ownedRanges } from '../src/ipam/index.js';
import type { KubeIntegration } from '../src/k8s/index.js';
import { ensureLinkSettings, NodePlumbing, syncDeviceRoutes } from '../src/plumbing/index.js';
import { ensureMasquerade } from '../src/plumbing/masquerade.js';
import type { Logger } from '../src/util/log.js';
import { weftVersion } from '../src/util/version.js';
import { type ModeEndpoints, startAdmin } from './admin.js';
import { Dataplane } from './dataplane.js';
import { type RunningAgent, resolveMtu, TUN_TXQUEUELEN } from './node-setup.js';

const IPAM_CHANNEL = 'ipam';
/** Paxos and space-request retry: a LAN round trip is milliseconds, so seconds are plenty. */
const IPAM_RETRY_MS = 5_000;
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,253}$/;

/**
 * `agent run` with gossip discovery: libp2p finds the peers, IPAM splits the cluster range, and
 * every change of either yields a new route table for the data plane and, when this node's
 * ranges change, new bridge routes.
 */
export async function startClusterAgent(config: ClusterConfig, log: Logger): Promise<RunningAgent> {
  const { mtu, underlay } = await resolveMtu(config.underlayAddress, config.mtu, log);
  const clusterSecret = await loadClusterSecret(
    config.clusterSecretFile !== undefined
      ? { file: config.clusterSecretFile }
      : process.env.WEFT_CLUSTER_SECRET
        ? { value: process.env.WEFT_CLUSTER_SECRET }
        : {},
  );
  // Before IPAM loads its state: a node that was reclaimed must not come back with its old ranges.
  // Loaded only with --kube-peers.
  const kube: KubeIntegration | undefined = config.kube
    ? await (await import('../src/k8s/index.js')).KubeIntegration.start(
        {
          nodeName: config.nodeName,
          stateDir: config.stateDir,
          gossipPort: config.gossipPort,
          kubeconfig: config.kube.kubeconfig,
          reclaimLeaseMs: config.kube.reclaimLeaseMs,
          seeding: config.kube.explicitSeeding ? config.seeding : undefined,
        },
        log,
      )
    : undefined;
  const ipamConfig = {
    peer: config.nodeName,
    clusterRange: config.clusterCidr,
    seeding: kube?.seeding ?? config.seeding,
    timing: { retryMs: IPAM_RETRY_MS, fullViewGraceMs: IPAM_RETRY_MS },
  };
  const saved = await loadIpamState(config.stateDir, {
    clusterRange: config.clusterCidr,
    peer: config.nodeName,
  });
  const ipam = saved ? IpamNode.restore(ipamConfig, saved) : IpamNode.create(ipamConfig);
  if (saved) log.info({ allocations: ipam.allocationCount }, 'IPAM state restored');

  const dataplane = await Dataplane.open({ ...config, mtu }, log);
  const gossip = new GossipNode(
    {
      nodeName: config.nodeName,
      stateDir: config.stateDir,
      listenAddress: config.underlayAddress,
      listenPort: config.gossipPort,
      underlayAddress: config.underlayAddress,
      dataPort: config.dataPort,
      dataplaneFeatures: dataplane.features,
      agentVersion: weftVersion,
      peers: config.peers,
      clusterSecret,
      heartbeatIntervalMs: config.heartbeatMs,
      peerTimeoutMs: config.peerTimeoutMs,
    },
    log,
    kube ? [kube.peerSource] : [],
  );
  const driver = new IpamDriver({
    ipam,
    channel: gossip.channel(IPAM_CHANNEL),
    stateDir: config.stateDir,
    log,
  });
  const plumbing = new NodePlumbing();
  let layout: BridgeLayout | undefined;
  let plumbingQueue: Promise<void> = Promise.resolve();

  /** Brings routes and bridge in line with the current ring and topology; serialised. */
  const sync = () => {
    plumbingQueue = plumbingQueue.then(async () => {
      const peers = gossip.peers();
      const derived = deriveRoutes(config.nodeName, ipam.ring, peers);
      dataplane.setRoutes(derived.spec);
      const next = bridgeLayout(derived.spec.localCidrs, ipam.gateway);
      if (next && JSON.stringify(next) !== JSON.stringify(layout)) {
        await plumbing.setUp({
          bridge: config.bridgeName,
          gatewayCidr: next.gatewayCidr,
          tunName: config.tunName,
          clusterCidr: config.clusterCidr,
          mtu,
          txqueuelen: TUN_TXQUEUELEN,
        });
        await syncDeviceRoutes(
          config.bridgeName,
          next.extraCidrs.map((cidr) => ({ cidr, dev: config.bridgeName })),
        );
        log.info(
          { bridge: next.gatewayCidr, extra: next.extraCidrs },
          'bridge and routes follow this node’s ranges',
        );
        layout = next;
      }
    });
    plumbingQueue = plumbingQueue.catch((error: unknown) =>
      log.error({ err: error }, 'node plumbing failed'),
    );
    return plumbingQueue;
  };

  try {
    await ensureLinkSettings(config.tunName, { mtu, txqueuelen: TUN_TXQUEUELEN, up: true });
    await ensureMasquerade(config.clusterCidr);
    dataplane.start();
    await gossip.start();
  } catch (error) {
    dataplane.close();
    await gossip.stop().catch(() => undefined);
    await kube?.stop();
    throw error;
  }
  gossip.provideAddressesInUse(() => ipamStatus(ipam).allocations);
  driver.on('ring-changed', () => void sync());
  gossip.on('topology-changed', (peers) => {
    const reachable = peers.filter((p) => p.state === 'reachable').map((p) => p.name);
    void driver.setKnownPeers(reachable).catch(() => undefined);
    void sync();
  });
  driver.start();
  await driver.setKnownPeers([]);
  /** A peer whose ranges were taken over leaves the topology too (it reappears if it is alive). */
  const rmpeer = async (peer: string, allowReachable = false) => {
    const result = await driver.rmpeer(peer, { allowReachable });
    if (result.ok) gossip.forgetPeer(peer);
    return result;
  };
  kube?.startReclaim({
    rmpeer: (peer) => rmpeer(peer),
    isReachable: (peer) => gossip.peers().some((p) => p.name === peer && p.state === 'reachable'),
  });
  void sync();
  log.info(
    { node: config.nodeName, peerId: gossip.peerId, underlay: underlay.ifname, mtu, peers: config.peers },
    'agent running with gossip discovery',
  );

  const cniEndpoints = await startCni({
    driver,
    stateDir: config.stateDir,
    bridge: config.bridgeName,
    // After pending plumbing: right after a start or a ring change the bridge is moments away.
    node: async () => {
      await plumbingQueue;
      return layout !== undefined
        ? { ready: true, mtu }
        : { ready: false, reason: `${ipamStatus(ipam).summary}; the bridge has no gateway yet` };
    },
    log,
  });
  const endpoints: ModeEndpoints = {
    status: () => ({
      node: {
        name: config.nodeName,
        underlayAddress: config.underlayAddress,
        podCidrs: ipam.ring
          ? (ownedRanges(ipam.ring).find((o) => o.peer === config.nodeName)?.cidrs ?? [])
          : [],
      },
      clusterCidr: config.clusterCidr,
      controlPlane: controlPlaneReport(),
    }),
    peerAddresses: () => gossip.peers().map((p) => p.underlayAddress),
    post: {
      ...cniEndpoints,
      '/v1/ipam/allocate': async (body) => {
        const result = await driver.allocate(containerIdOf(body));
        if (!result.ok)
          throw new AdminRequestError(result.reason === 'invalid-container-id' ? 400 : 503, result.message);
        return result;
      },
      '/v1/ipam/release': async (body) => ({ released: (await driver.release(containerIdOf(body))) ?? null }),
      '/v1/rmpeer': async (body) => {
        const { peer, force } = (body ?? {}) as { peer?: unknown; force?: unknown };
        if (typeof peer !== 'string' || peer.length === 0)
          throw new AdminRequestError(400, 'body needs {"peer": "<node name>"}');
        const result = await rmpeer(peer, force === true);
        if (!result.ok) throw new AdminRequestError(409, result.message);
        return result;
      },
    },
  };
  const controlPlaneReport = (): ControlPlaneReport => {
    const status = ipamStatus(ipam);
    return {
      peerId: gossip.peerId,
      encryption: clusterSecret !== undefined,
      gossipListen: `${config.underlayAddress}:${config.gossipPort}`,
      peers: gossip.peers().map((p) => ({
        name: p.name,
        peerId: p.peerId,
        underlayAddress: p.underlayAddress,
        dataPort: p.dataPort,
        version: p.version,
        state: p.state,
        lastSeenMs: p.lastSeenMs,
        rttMs: p.rttMs ?? null,
        addressesInUse: p.addressesInUse ?? null,
      })),
      connections: gossip.connections().map((c) => ({
        direction: c.direction,
        address: c.address,
        state: c.state,
        detail: c.detail,
        peerName: c.peerName ?? null,
        nextRetryAtMs: c.nextRetryAtMs ?? null,
      })),
      ipam: {
        state: status.state.kind,
        summary: status.summary,
        clusterRange: status.clusterRange,
        totalAddresses: status.totalAddresses,
        seedId: status.seedId,
        owners: status.owners.map((o) => ({ ...o })),
        allocations: status.allocations,
        freeAddresses: status.freeAddresses,
        gateway: status.gateway,
        conflicts: [...status.conflicts],
      },
    };
  };
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  try {
    admin = await startAdmin(config, dataplane, config.bridgeName, endpoints, log);
  } catch (error) {
    await kube?.stop();
    await driver.stop();
    await gossip.stop();
    dataplane.close();
    throw error;
  }

  return {
    async stop(): Promise<void> {
      await admin.stop();
      await kube?.stop();
      await driver.stop();
      await gossip.stop();
      await plumbingQueue;
      dataplane.close();
      log.info('agent stopped');
    },
  };
}

function containerIdOf(body: unknown): string {
  const id = (body as { containerId?: unknown } | undefined)?.containerId;
  if (typeof id !== 'string' || !CONTAINER_ID.test(id)) {
    throw new AdminRequestError(400, 'body needs {"containerId": "<letters, digits, _ . : ->"}');
  }
  return id;
}

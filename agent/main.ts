#!/usr/bin/env node
import '../src/util/polyfill.js';
import { parseArgs } from 'node:util';
import { AgentRequestError, AgentUnreachableError, postToAgent } from '../src/api/admin-client.js';
import {
  type AgentFlags,
  buildAgentConfig,
  buildCommonSettings,
  defaults,
} from '../src/config/agent-config.js';
import { buildClusterConfig, clusterDefaults } from '../src/config/cluster-config.js';
import { ConfigError, loadStaticPeerFile } from '../src/config/static-peers.js';
import { createLogger, isLogLevel } from '../src/util/log.js';
import { weftVersion } from '../src/util/version.js';
import { installCniUsage, runInstallCni } from './install-cni.js';
import type { RunningAgent } from './node-setup.js';
import { reportCommand, StatusUsageError, statusCommand } from './status-command.js';

const usage = `Usage: agent <command> [options]

Commands:
  run             start the agent on this node
  status [VIEW]   summary, or VIEW: peers | connections | ipam | dataplane (--json for scripts)
  report          the whole status model as JSON
  rmpeer NODE     take over the IP ranges of a dead node (once per dead node; --force if it looks alive)
${installCniUsage}  version         print the version

Options for run, with gossip discovery and IPAM (the normal way):
  --name NAME               this node's name (default: the host name)
  --underlay-address IP     the IPv4 address other nodes reach this node on (required)
  --peers H[:P],...         addresses of other agents to start from (gossip finds the rest)
  --gossip-port N           libp2p TCP port (default ${clusterDefaults.gossipPort})
  --state-dir PATH          identity and IPAM state (default ${clusterDefaults.stateDir})
  --cluster-secret-file F   run as a private network; or set WEFT_CLUSTER_SECRET
  --ipam-init MODE          consensus (default), consensus=N, seeds=a,b,... or observer
  --heartbeat-ms N          topology heartbeat (default ${clusterDefaults.heartbeatMs})
  --peer-timeout-ms N       a peer not heard from this long is unreachable (default ${clusterDefaults.peerTimeoutMs})
  --kube-peers              peers from Kubernetes Node objects (in-cluster service account), seed list
                            and reclaim of deleted nodes through the ConfigMap weft-peers; node name
                            from --name or env NODE_NAME
  --kubeconfig PATH         with --kube-peers: use this kubeconfig (else $KUBECONFIG, else the service account)
  --kube-reclaim-lease-ms N a reclaim claim unchanged this long is taken over (default ${clusterDefaults.kubeReclaimLeaseMs})

Options for run with fixed ranges instead:
  --peers-file PATH     static peer file (this node, its peers and their pod ranges)

Options for both:
  --cluster-cidr CIDR   cluster pod range (default ${defaults.clusterCidr})
  --port N              data-plane UDP port (default ${defaults.dataPort})
  --vni N               VXLAN-GPE network identifier (default ${defaults.vni})
  --tun NAME            TUN device name (default ${defaults.tunName})
  --bridge NAME         pod bridge name (default ${defaults.bridgeName})
  --mtu N               overlay MTU (default: underlay MTU - 36)
  --offload on|off      kernel offloads in the data plane: TUN TSO, UDP GSO/GRO (default on)
  --partial-checksums on|off  announce in the topology record that peers may leave inner TCP/UDP
                        checksums to this node (default on); with --peers-file the peer entry's
                        "features": ["partial-csum"] decides instead
  --admin-socket PATH   admin API socket (default ${defaults.adminSocket})
  --health-listen A     /healthz and /readyz: IP:PORT, :PORT or off (default ${defaults.healthListen})
  --metrics-listen A    Prometheus /metrics: IP:PORT, :PORT or off (default ${defaults.metricsListen})
  --log-level LEVEL     fatal|error|warn|info|debug|trace (default info)

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration, 3 agent not reachable,
4 the agent refused the request, 5 (status) the agent runs but is not ready.
`;

const options = {
  'peers-file': { type: 'string' },
  'cluster-cidr': { type: 'string' },
  port: { type: 'string' },
  vni: { type: 'string' },
  tun: { type: 'string' },
  bridge: { type: 'string' },
  mtu: { type: 'string' },
  offload: { type: 'string' },
  'partial-checksums': { type: 'string' },
  'admin-socket': { type: 'string' },
  'health-listen': { type: 'string' },
  'metrics-listen': { type: 'string' },
  'log-level': { type: 'string' },
  name: { type: 'string' },
  'underlay-address': { type: 'string' },
  peers: { type: 'string' },
  'gossip-port': { type: 'string' },
  'state-dir': { type: 'string' },
  'cluster-secret-file': { type: 'string' },
  'ipam-init': { type: 'string' },
  'heartbeat-ms': { type: 'string' },
  'peer-timeout-ms': { type: 'string' },
  'kube-peers': { type: 'boolean' },
  kubeconfig: { type: 'string' },
  'kube-reclaim-lease-ms': { type: 'string' },
  'bin-dir': { type: 'string' },
  'conf-dir': { type: 'string' },
  socket: { type: 'string' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  version: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Options of `run` that configure gossip discovery and IPAM, which a static peer file replaces. */
const GOSSIP_MODE_FLAGS = [
  'name',
  'underlay-address',
  'peers',
  'gossip-port',
  'state-dir',
  'cluster-secret-file',
  'ipam-init',
  'heartbeat-ms',
  'peer-timeout-ms',
  'kube-peers',
  'kubeconfig',
  'kube-reclaim-lease-ms',
] as const satisfies ReadonlyArray<keyof typeof options>;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<
    typeof parseArgs<{ options: typeof options; allowPositionals: true; args: string[] }>
  >;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const command = values.version ? 'version' : (positionals[0] ?? (values.help ? 'help' : undefined));
  switch (command) {
    case 'version':
      process.stdout.write(`weft ${weftVersion}\n`);
      return 0;
    case 'help':
      process.stdout.write(usage);
      return 0;
    case 'run':
      return runAgent(values);
    case 'status':
      return statusCommand(
        values['admin-socket'] ?? defaults.adminSocket,
        positionals[1],
        values.json === true,
      );
    case 'report':
      return reportCommand(values['admin-socket'] ?? defaults.adminSocket);
    case 'rmpeer':
      return removePeer(
        values['admin-socket'] ?? defaults.adminSocket,
        positionals[1],
        values.force === true,
      );
    case 'install-cni':
      return runInstallCni(values);
    case undefined:
      throw new UsageError('no command given');
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

async function runAgent(values: Record<string, string | boolean | undefined>): Promise<number> {
  const logLevel = (values['log-level'] as string | undefined) ?? 'info';
  if (!isLogLevel(logLevel))
    throw new ConfigError(`--log-level ${logLevel} is not one of fatal|error|warn|info|debug|trace`);
  const flags: AgentFlags = {
    peersFile: values['peers-file'] as string | undefined,
    clusterCidr: values['cluster-cidr'] as string | undefined,
    port: values.port as string | undefined,
    vni: values.vni as string | undefined,
    tun: values.tun as string | undefined,
    bridge: values.bridge as string | undefined,
    mtu: values.mtu as string | undefined,
    offload: values.offload as string | undefined,
    partialChecksums: values['partial-checksums'] as string | undefined,
    adminSocket: values['admin-socket'] as string | undefined,
    healthListen: values['health-listen'] as string | undefined,
    metricsListen: values['metrics-listen'] as string | undefined,
  };
  const log = createLogger(logLevel);
  let agent: RunningAgent;
  if (flags.peersFile) {
    const ignored = GOSSIP_MODE_FLAGS.filter((flag) => values[flag] !== undefined);
    if (ignored.length > 0) {
      throw new ConfigError(
        `${ignored.map((f) => `--${f}`).join(', ')} only apply to gossip mode; --peers-file runs with the fixed ranges of the file: drop one or the other`,
      );
    }
    const peersFile = flags.peersFile;
    const config = buildAgentConfig(flags, await loadStaticPeerFile(peersFile));
    log.info({ version: weftVersion, node: config.nodeName, mode: 'static peers' }, 'starting weft agent');
    const { startStaticAgent } = await import('./static-mode.js');
    const staticAgent = await startStaticAgent(config, log);
    agent = staticAgent;
    process.on('SIGHUP', () => {
      loadStaticPeerFile(peersFile)
        .then((file) => staticAgent.updatePeers?.(buildAgentConfig(flags, file)))
        .catch((error: unknown) =>
          log.error({ err: error }, 'peer file reload failed; keeping the current peers'),
        );
    });
  } else {
    const config = buildClusterConfig(
      {
        name: values.name as string | undefined,
        underlayAddress: values['underlay-address'] as string | undefined,
        peers: values.peers as string | undefined,
        gossipPort: values['gossip-port'] as string | undefined,
        stateDir: values['state-dir'] as string | undefined,
        clusterSecretFile: values['cluster-secret-file'] as string | undefined,
        ipamInit: values['ipam-init'] as string | undefined,
        heartbeatMs: values['heartbeat-ms'] as string | undefined,
        peerTimeoutMs: values['peer-timeout-ms'] as string | undefined,
        kubePeers: values['kube-peers'] === true,
        kubeconfig: values.kubeconfig as string | undefined,
        kubeReclaimLeaseMs: values['kube-reclaim-lease-ms'] as string | undefined,
      },
      buildCommonSettings(flags),
    );
    log.info({ version: weftVersion, node: config.nodeName, mode: 'gossip' }, 'starting weft agent');
    const { startClusterAgent } = await import('./cluster-mode.js');
    agent = await startClusterAgent(config, log);
  }
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'shutting down');
      agent.stop().then(
        () => resolve(0),
        (error: unknown) => {
          log.error({ err: error }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });
}

async function removePeer(socket: string, peer: string | undefined, force: boolean): Promise<number> {
  if (!peer) throw new UsageError('rmpeer needs the name of the dead node');
  const result = (await postToAgent(socket, '/v1/rmpeer', { peer, force })) as {
    cidrs: string[];
    addresses: number;
  };
  process.stdout.write(
    result.cidrs.length === 0
      ? `${peer} owned nothing (already reclaimed)\n`
      : `took over ${result.addresses.toLocaleString('en-US')} addresses from ${peer}: ${result.cidrs.join(', ')}\n`,
  );
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError || error instanceof StatusUsageError) {
      process.stderr.write(`agent: ${error.message}\n\n${usage}`);
      process.exit(2);
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`agent: configuration error: ${error.message}\n`);
      process.exit(2);
    }
    if (error instanceof AgentRequestError) {
      process.stderr.write(`agent: ${error.message}\n`);
      process.exit(4);
    }
    if (error instanceof AgentUnreachableError) {
      process.stderr.write(`agent: ${error.message}\n`);
      process.exit(3);
    }
    process.stderr.write(`agent: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);

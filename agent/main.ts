#!/usr/bin/env node
import '../src/util/polyfill.js';
import { parseArgs } from 'node:util';
import { AgentUnreachableError, getFromAgent } from '../src/api/admin-client.js';
import type { StatusReport } from '../src/api/status-report.js';
import { renderStatus } from '../src/api/status-view.js';
import { type AgentFlags, buildAgentConfig, defaults } from '../src/config/agent-config.js';
import { ConfigError, loadStaticPeerFile } from '../src/config/static-peers.js';
import { createLogger, isLogLevel } from '../src/util/log.js';
import { weftVersion } from '../src/util/version.js';
import { startStaticAgent } from './static-mode.js';

const usage = `Usage: agent <command> [options]

Commands:
  run       start the data plane on this node
  status    show this node's data plane, peers and counters (--json for scripts)
  version   print the version

Options for run:
  --peers-file PATH     static peer file (this node, its peers and their pod ranges)
  --cluster-cidr CIDR   cluster pod range (default ${defaults.clusterCidr})
  --port N              data-plane UDP port (default ${defaults.dataPort})
  --vni N               VXLAN-GPE network identifier (default ${defaults.vni})
  --tun NAME            TUN device name (default ${defaults.tunName})
  --bridge NAME         pod bridge name (default ${defaults.bridgeName})
  --mtu N               overlay MTU (default: underlay MTU - 36)
  --admin-socket PATH   admin API socket (default ${defaults.adminSocket})
  --log-level LEVEL     fatal|error|warn|info|debug|trace (default info)

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration, 3 agent not reachable.
`;

const options = {
  'peers-file': { type: 'string' },
  'cluster-cidr': { type: 'string' },
  port: { type: 'string' },
  vni: { type: 'string' },
  tun: { type: 'string' },
  bridge: { type: 'string' },
  mtu: { type: 'string' },
  'admin-socket': { type: 'string' },
  'log-level': { type: 'string' },
  json: { type: 'boolean' },
  version: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

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
      return showStatus(values['admin-socket'] ?? defaults.adminSocket, values.json === true);
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
    adminSocket: values['admin-socket'] as string | undefined,
  };
  if (!flags.peersFile)
    throw new ConfigError('--peers-file is required (gossip discovery comes with the control plane)');
  const peersFile = flags.peersFile;
  const config = buildAgentConfig(flags, await loadStaticPeerFile(peersFile));
  const log = createLogger(logLevel);
  log.info({ version: weftVersion, node: config.nodeName }, 'starting weft agent');
  const agent = await startStaticAgent(config, log);

  process.on('SIGHUP', () => {
    loadStaticPeerFile(peersFile)
      .then((file) => agent.updatePeers?.(buildAgentConfig(flags, file)))
      .catch((error: unknown) =>
        log.error({ err: error }, 'peer file reload failed; keeping the current peers'),
      );
  });
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

async function showStatus(socket: string, json: boolean): Promise<number> {
  const report = (await getFromAgent(socket, '/v1/status')) as StatusReport;
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`agent: ${error.message}\n\n${usage}`);
      process.exit(2);
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`agent: configuration error: ${error.message}\n`);
      process.exit(2);
    }
    if (error instanceof AgentUnreachableError) {
      process.stderr.write(`agent: ${error.message}\n`);
      process.exit(3);
    }
    process.stderr.write(`agent: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);

import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFromAgent } from '../../src/api/admin-client.js';
import type { StatusReport } from '../../src/api/status-report.js';
import { AGENT_ENTRY, agentRunArgv } from '../../src/util/agent-launch.js';
import type { NetnsGroup } from './netns.js';
import type { NodeIndex, NodeOverlay, TwoNodeTopology } from './topology.js';

export { AGENT_ENTRY };

export function requireBuiltAgent(): void {
  if (!existsSync(AGENT_ENTRY)) throw new Error(`${AGENT_ENTRY} is missing: run "npm run build" first`);
}

export interface AgentProcess {
  child: ChildProcess;
  socket: string;
  logFile: string;
  status(): Promise<StatusReport>;
  log(): string;
}

export interface StartAgentOptions {
  /** Extra command-line flags for `agent run`. */
  flags?: string[];
  /** Extra Node flags (e.g. `--perf-basic-prof`). */
  nodeFlags?: string[];
  /** The peer file's content; defaults to the other node of the topology with its pod range. */
  peerFile?: unknown;
  /** Data-plane features the default peer file lists for the other node (what it would announce). */
  peerFeatures?: string[];
}

/** Peer files, sockets and logs of one group's agents; removed with the group. */
function workDirOf(group: NetnsGroup): string {
  let dir = workDirs.get(group);
  if (!dir) {
    const created = mkdtempSync(join(tmpdir(), 'weft-test-'));
    group.onDestroy(() => rmSync(created, { recursive: true, force: true }));
    workDirs.set(group, created);
    dir = created;
  }
  return dir;
}
const workDirs = new WeakMap<NetnsGroup, string>();

/** Starts `agent run` in a node namespace of the two-node topology and waits until it answers. */
export async function startAgentOn(
  group: NetnsGroup,
  topo: TwoNodeTopology,
  node: NodeIndex,
  opts: StartAgentOptions = {},
): Promise<AgentProcess> {
  requireBuiltAgent();
  const self = topo.nodes[node];
  const peer = topo.nodes[node === 0 ? 1 : 0];
  const workDir = workDirOf(group);
  const peerFile = join(workDir, `${group.prefix}-${self.shortName}-peers.json`);
  const socket = join(workDir, `${group.prefix}-${self.shortName}.sock`);
  const logFile = join(workDir, `${group.prefix}-${self.shortName}.log`);
  const content = opts.peerFile ?? {
    node: { name: self.shortName, underlayAddress: self.underlayIp, podCidrs: [self.podCidr] },
    peers: [
      {
        name: peer.shortName,
        underlayAddress: peer.underlayIp,
        podCidrs: [peer.podCidr],
        ...(opts.peerFeatures ? { features: opts.peerFeatures } : {}),
      },
    ],
  };
  writeFileSync(peerFile, JSON.stringify(content, null, 2));
  const child = group.spawn(
    self.shortName,
    agentRunArgv({ peersFile: peerFile, adminSocket: socket, flags: opts.flags, nodeFlags: opts.nodeFlags }),
    { logFile },
  );
  const agent: AgentProcess = {
    child,
    socket,
    logFile,
    status: async () => (await getFromAgent(socket, '/v1/status')) as StatusReport,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
  };
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}:\n${agent.log()}`);
      return agent.status().then(
        () => true,
        () => false,
      );
    },
    15_000,
    `agent on ${self.shortName} did not come up:\n${agent.log()}`,
  );
  return agent;
}

/** A topology overlay mode that runs weft on one node; undo stops the agent. */
export function weftNode(opts: StartAgentOptions = {}): NodeOverlay & { agents: AgentProcess[] } {
  const agents: AgentProcess[] = [];
  const mode = async (group: NetnsGroup, topo: TwoNodeTopology, node: NodeIndex) => {
    const agent = await startAgentOn(group, topo, node, opts);
    agents[node] = agent;
    return () => group.stop(agent.child);
  };
  return Object.assign(mode, { agents });
}

export async function waitFor(
  condition: () => Promise<boolean> | boolean,
  timeoutMs: number,
  message: string,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

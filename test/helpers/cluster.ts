import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFromAgent, postToAgent } from '../../src/api/admin-client.js';
import type { StatusReport } from '../../src/api/status-report.js';
import { addSwitchBridge, cutUnderlay, plugIntoSwitch, restoreUnderlay } from '../../src/lab/network.js';
import { notReadyReason } from '../../src/lab/readiness.js';
import { agentRunArgv } from '../../src/util/agent-launch.js';
import { requireBuiltAgent, waitFor } from './agent.js';
import type { NetnsGroup } from './netns.js';

const SWITCH = 'sw';

export interface ClusterNode {
  name: string;
  underlayIp: string;
  stateDir: string;
  socket: string;
  logFile: string;
  agent: ChildProcess | undefined;
}

export interface ClusterPod {
  name: string;
  node: string;
  ns: string;
  ip: string;
}

export interface ClusterOptions {
  /** Flags added to every `agent run`. */
  agentFlags?: string[];
  /** Node flags added to AGENT_NODE_FLAGS (e.g. `--cpu-prof`). */
  nodeFlags?: string[];
  /** Underlay /24 prefix, nodes get .1, .2, … Default 192.168.198. */
  underlayPrefix?: string;
  /** Short heartbeat and peer timeout so tests see failures quickly (default true). */
  fastHeartbeat?: boolean;
}

/**
 * N node namespaces on one underlay switch (a bridge in its own namespace), each running a real
 * agent in gossip mode, and pods the test creates by asking an agent for an address.
 */
export class TestCluster {
  readonly nodes: ClusterNode[] = [];
  readonly pods: ClusterPod[] = [];
  readonly workDir = mkdtempSync(join(tmpdir(), 'weft-cluster-'));

  private constructor(
    readonly group: NetnsGroup,
    private readonly options: ClusterOptions,
  ) {}

  static async create(group: NetnsGroup, size: number, options: ClusterOptions = {}): Promise<TestCluster> {
    requireBuiltAgent();
    const cluster = new TestCluster(group, options);
    group.onDestroy(() => rmSync(cluster.workDir, { recursive: true, force: true }));
    await group.addNamespace(SWITCH);
    await addSwitchBridge(group.ns(SWITCH));
    for (let i = 0; i < size; i++) await cluster.addNode();
    return cluster;
  }

  /** A new node namespace plugged into the switch (no agent yet). */
  async addNode(): Promise<ClusterNode> {
    const index = this.nodes.length + 1;
    const name = `n${index}`;
    const group = this.group;
    await group.addNamespace(name);
    const underlayIp = `${this.options.underlayPrefix ?? '192.168.198'}.${index}`;
    await plugIntoSwitch(group.ns(name), group.ns(SWITCH), `s${index}`, underlayIp);
    const stateDir = join(this.workDir, name);
    mkdirSync(stateDir, { recursive: true });
    const node: ClusterNode = {
      name,
      underlayIp,
      stateDir,
      socket: join(this.workDir, `${name}.sock`),
      logFile: join(this.workDir, `${name}.log`),
      agent: undefined,
    };
    this.nodes.push(node);
    return node;
  }

  node(name: string): ClusterNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  /** Starts `agent run` on a node; by default its peers are every other node's underlay address. */
  startAgent(name: string, flags: string[] = [], peers?: string[]): ChildProcess {
    const node = this.node(name);
    const peerList = peers ?? this.nodes.filter((n) => n !== node).map((n) => n.underlayIp);
    const argv = agentRunArgv({
      name: node.name,
      underlayAddress: node.underlayIp,
      stateDir: node.stateDir,
      adminSocket: node.socket,
      peers: peerList,
      nodeFlags: this.options.nodeFlags,
      flags: [
        ...(this.options.fastHeartbeat === false
          ? []
          : ['--heartbeat-ms', '500', '--peer-timeout-ms', '3000']),
        ...(this.options.agentFlags ?? []),
        ...flags,
      ],
    });
    node.agent = this.group.spawn(node.name, argv, { logFile: node.logFile });
    return node.agent;
  }

  async stopAgent(name: string, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const node = this.node(name);
    const child = node.agent;
    if (!child) return;
    if (signal === 'SIGKILL') {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    } else {
      await this.group.stop(child);
    }
    node.agent = undefined;
  }

  log(name: string): string {
    const file = this.node(name).logFile;
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  async status(name: string): Promise<StatusReport> {
    return (await getFromAgent(this.node(name).socket, '/v1/status')) as StatusReport;
  }

  /** Waits until every listed node's agent answers, knows the others as reachable and IPAM is ready. */
  async waitUntilReady(names: string[] = this.nodes.map((n) => n.name), timeoutMs = 30_000): Promise<void> {
    let last = '';
    await waitFor(
      async () => {
        // All at once: asked one after another, 20 busy agents took seconds per sweep.
        const statuses = await Promise.all(names.map((name) => this.status(name).catch((e: Error) => e)));
        for (const [i, status] of statuses.entries()) {
          const name = names[i] as string;
          last = status instanceof Error ? `${name}: ${status.message}` : notReadyReason(name, status, names);
          if (last !== '') return false;
        }
        return true;
      },
      timeoutMs,
      'cluster not ready',
    ).catch(() => {
      throw new Error(
        `cluster not ready after ${timeoutMs} ms: ${last}\n${names.map((n) => `--- ${n}\n${this.log(n).slice(-3000)}`).join('\n')}`,
      );
    });
  }

  async allocate(name: string, containerId: string): Promise<{ address: string; gateway: string }> {
    return (await postToAgent(this.node(name).socket, '/v1/ipam/allocate', { containerId })) as {
      address: string;
      gateway: string;
    };
  }

  /**
   * A pod namespace on a node, with an address from that node's agent: /32 on eth0, the
   * gateway on-link, and a default route through it (the node routes between pods, so a pod's
   * view never depends on how big the node's blocks are).
   */
  async addPod(nodeName: string, podName: string): Promise<ClusterPod> {
    const { address, gateway } = await this.allocate(nodeName, podName);
    const group = this.group;
    await group.addNamespace(podName);
    const hostIf = `v${podName}`.slice(0, 15);
    await group.addVethPair({ ns: nodeName, ifname: hostIf }, { ns: podName, ifname: 'eth0' });
    const mtu = (await this.status(nodeName)).dataplane.mtu;
    // Readiness comes from IPAM; the bridge follows the ring moments later (seconds on a loaded machine).
    await waitFor(
      async () =>
        (await group.exec(nodeName, ['ip', 'link', 'show', 'weave'], { allowFail: true })).code === 0,
      10_000,
      `${nodeName} has no bridge`,
    );
    await group.exec(nodeName, ['ip', 'link', 'set', hostIf, 'mtu', String(mtu), 'master', 'weave', 'up']);
    await group.exec(podName, ['ip', 'link', 'set', 'eth0', 'mtu', String(mtu), 'up']);
    await group.addAddress(podName, 'eth0', `${address}/32`);
    await group.exec(podName, ['ip', 'route', 'add', gateway, 'dev', 'eth0', 'scope', 'link']);
    await group.exec(podName, ['ip', 'route', 'add', 'default', 'via', gateway, 'dev', 'eth0']);
    const pod: ClusterPod = { name: podName, node: nodeName, ns: group.ns(podName), ip: address };
    this.pods.push(pod);
    return pod;
  }

  /** Cuts the underlay between two nodes in both directions (other pairs unaffected). */
  async partition(a: string, b: string): Promise<void> {
    const [na, nb] = [this.node(a), this.node(b)];
    await cutUnderlay(this.group.ns(a), na.underlayIp, this.group.ns(b), nb.underlayIp);
  }

  async heal(a: string, b: string): Promise<void> {
    const [na, nb] = [this.node(a), this.node(b)];
    await restoreUnderlay(this.group.ns(a), na.underlayIp, this.group.ns(b), nb.underlayIp);
  }

  async ping(from: ClusterPod, to: ClusterPod, count = 2): Promise<boolean> {
    const result = await this.group.exec(
      from.name,
      ['ping', '-c', String(count), '-i', '0.2', '-W', '2', to.ip],
      {
        allowFail: true,
      },
    );
    return result.code === 0;
  }
}

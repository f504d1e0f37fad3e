/**
 * A weft cluster on one machine: node namespaces on an underlay switch, a real agent per node
 * (gossip mode), podman per node wired to the node's CNI config, busybox pods. Everything the
 * lab creates is recorded in its state file before or right after it is created, so `down`
 * (even from another process, after a crash) removes all of it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { getFromAgent, postToAgent } from '../api/admin-client.js';
import type { StatusReport } from '../api/status-report.js';
import { AGENT_ENTRY, agentRunArgv } from '../util/agent-launch.js';
import { run } from '../util/exec.js';
import { installWeftCni, linkReferencePlugins, networkName, writeHostLocalConflist } from './cni.js';
import { importLabImage, LAB_IMAGE } from './image.js';
import { mountsBelow } from './mounts.js';
import {
  addStaticRoute,
  createNodeNamespace,
  createSwitch,
  cutUnderlay,
  deleteNamespace,
  deleteStaticRoute,
  listLabNamespaces,
  namespacePrefix,
  restoreUnderlay,
} from './network.js';
import { Podman, type PodmanPaths, writePodmanConfig } from './podman.js';
import { isRunning, spawnDetached, stopProcess } from './processes.js';
import { notReadyReason } from './readiness.js';
import {
  type CniFlavor,
  checkLabName,
  type LabNode,
  type LabPod,
  type LabState,
  labDir,
  loadState,
  saveState,
} from './state.js';

const DEFAULT_UNDERLAY = '192.168.240';
const READY_TIMEOUT_MS = 90_000;
/** Short enough that tests and `remove-node` see a dead node within seconds. */
const AGENT_TIMING = ['--heartbeat-ms', '1000', '--peer-timeout-ms', '5000'];

export const WEB_COMMAND = [
  'sh',
  '-c',
  'echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www',
];
const SHELL_COMMAND = ['sleep', '2147483647'];

export interface LabOptions {
  nodes?: number;
  cni?: CniFlavor;
  /** Pods per node started by `up` and `addNode`: a web pod (httpd) and a shell pod. */
  pods?: boolean;
  underlayPrefix?: string;
  progress?: (message: string) => void;
}

export class Lab {
  private constructor(
    readonly state: LabState,
    private readonly progress: (message: string) => void,
  ) {}

  /** Opens a running lab from its state file. */
  static open(name: string, progress: (message: string) => void = () => {}): Lab {
    const state = loadState(name);
    if (state === undefined) throw new Error(`no lab "${name}" is running (no state in ${labDir(name)})`);
    return new Lab(state, progress);
  }

  /** Creates a lab: switch, image store, then the nodes with agents and pods. */
  static async up(name: string, options: LabOptions = {}): Promise<Lab> {
    checkLabName(name);
    if (loadState(name) !== undefined || (await listLabNamespaces(name)).length > 0) {
      throw new Error(
        `lab "${name}" already exists: run "lab down${name === 'lab' ? '' : ` --name ${name}`}" first`,
      );
    }
    if (!existsSync(AGENT_ENTRY)) throw new Error(`${AGENT_ENTRY} is missing: run "npm run build" first`);
    const progress = options.progress ?? (() => {});
    const dir = labDir(name);
    const state: LabState = {
      name,
      dir,
      cni: options.cni ?? 'weft',
      switchNs: `${namespacePrefix(name)}sw`,
      underlayPrefix: options.underlayPrefix ?? DEFAULT_UNDERLAY,
      nextIndex: 1,
      nodes: [],
      pods: [],
      partitions: [],
    };
    mkdirSync(dir, { recursive: true });
    await saveState(state);
    const lab = new Lab(state, progress);
    try {
      await createSwitch(state.switchNs);
      let started = Date.now();
      await importLabImage(lab.imageDir);
      progress(`image ${LAB_IMAGE} imported into the shared store (${Date.now() - started} ms)`);
      const count = options.nodes ?? 3;
      started = Date.now();
      const nodes: LabNode[] = [];
      for (let i = 0; i < count; i++) nodes.push(await lab.createNode());
      // All agents start together, each told every other node's address, as in a fresh cluster.
      for (const node of nodes) lab.startAgent(node);
      await lab.save();
      await lab.waitUntilReady();
      for (const node of nodes) await lab.configureCni(node);
      progress(`${count} nodes ready (${lab.describeCni()}) in ${Date.now() - started} ms`);
      if (options.pods !== false) for (const node of nodes) await lab.startDefaultPods(node.name);
    } catch (error) {
      progress(
        `lab up failed: ${(error as Error).message.split('\n')[0]}; agent logs: ${dir}/<node>/agent.log; "down" removes what was built`,
      );
      throw error;
    }
    return lab;
  }

  /** Removes everything a lab created, with or without its state file. Returns what was removed. */
  static async down(name: string, progress: (message: string) => void = () => {}): Promise<string[]> {
    const dir = labDir(name);
    const state = loadState(name);
    const removed: string[] = [];
    const namespaces = await listLabNamespaces(name);
    const nodeDirs = existsSync(dir)
      ? readdirSync(dir).filter((d) => existsSync(join(dir, d, 'podman', 'containers.conf')))
      : [];
    // Pods first, while the agents still answer their CNI DELs.
    for (const nodeName of nodeDirs) {
      const ns = `${namespacePrefix(name)}${nodeName}`;
      await new Podman(podmanPaths(dir, nodeName), namespaces.includes(ns) ? ns : undefined).removeAll();
    }
    for (const node of state?.nodes ?? []) await stopProcess(node.agent);
    for (const ns of await listLabNamespaces(name)) {
      await deleteNamespace(ns);
      removed.push(ns);
    }
    if (existsSync(dir)) {
      await unmountBelow(dir);
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    }
    progress(`lab "${name}" removed (${removed.length} namespaces and dirs)`);
    return removed;
  }

  get name(): string {
    return this.state.name;
  }

  get nodes(): readonly LabNode[] {
    return this.state.nodes;
  }

  get pods(): readonly LabPod[] {
    return this.state.pods;
  }

  private get imageDir(): string {
    return join(this.state.dir, 'images');
  }

  node(name: string): LabNode {
    const node = this.state.nodes.find((n) => n.name === name);
    if (node === undefined)
      throw new Error(
        `no node "${name}" in lab ${this.name} (nodes: ${this.state.nodes.map((n) => n.name).join(', ')})`,
      );
    return node;
  }

  pod(name: string): LabPod {
    const pod = this.state.pods.find((p) => p.name === name);
    if (pod === undefined)
      throw new Error(
        `no pod "${name}" in lab ${this.name} (pods: ${this.state.pods.map((p) => p.name).join(', ')})`,
      );
    return pod;
  }

  podman(nodeName: string): Podman {
    const node = this.node(nodeName);
    return new Podman(podmanPaths(this.state.dir, node.name), node.ns);
  }

  socket(nodeName: string): string {
    return join(this.node(nodeName).dir, 'weft.sock');
  }

  agentLog(nodeName: string): string {
    const file = join(this.node(nodeName).dir, 'agent.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  async status(nodeName: string): Promise<StatusReport> {
    return (await getFromAgent(this.socket(nodeName), '/v1/status')) as StatusReport;
  }

  private save(): Promise<void> {
    return saveState(this.state);
  }

  describeCni(): string {
    if (this.state.cni === 'reference') return 'reference bridge + host-local, static routes';
    return 'weft CNI plugin';
  }

  /** A node namespace on the switch, with its podman configuration (no agent yet). */
  private async createNode(): Promise<LabNode> {
    const index = this.state.nextIndex++;
    const name = `n${index}`;
    const node: LabNode = {
      name,
      ns: `${namespacePrefix(this.name)}${name}`,
      underlayIp: `${this.state.underlayPrefix}.${index}`,
      dir: join(this.state.dir, name),
      switchPort: `p${index}`,
      podSubnet: this.state.cni === 'reference' ? `10.32.${index}.0/24` : undefined,
    };
    this.state.nodes.push(node);
    await this.save();
    mkdirSync(join(node.dir, 'state'), { recursive: true });
    await createNodeNamespace(node.ns, this.state.switchNs, node.switchPort, node.underlayIp);
    const paths = podmanPaths(this.state.dir, node.name);
    writePodmanConfig(paths);
    linkReferencePlugins(paths.cniBinDir);
    if (this.state.cni === 'reference') await this.addReferenceRoutes(node);
    this.progress(`node ${name}: namespace ${node.ns}, underlay ${node.underlayIp}`);
    return node;
  }

  private async addReferenceRoutes(node: LabNode): Promise<void> {
    for (const other of this.state.nodes) {
      if (other === node || other.podSubnet === undefined || node.podSubnet === undefined) continue;
      await addStaticRoute(node.ns, other.podSubnet, other.underlayIp);
      await addStaticRoute(other.ns, node.podSubnet, node.underlayIp);
    }
  }

  /** Starts the node's agent (gossip mode, every other lab node as a peer). */
  startAgent(node: LabNode): void {
    if (this.state.cni === 'reference') return;
    const peers = this.state.nodes.filter((n) => n !== node).map((n) => n.underlayIp);
    node.agent = spawnDetached(
      node.ns,
      agentRunArgv({
        name: node.name,
        underlayAddress: node.underlayIp,
        stateDir: join(node.dir, 'state'),
        adminSocket: this.socket(node.name),
        peers,
        flags: AGENT_TIMING,
      }),
      join(node.dir, 'agent.log'),
    );
  }

  /** Stops a node's agent (SIGKILL: a crash) and starts it again with the same state. */
  async restartAgent(nodeName: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const node = this.node(nodeName);
    await stopProcess(node.agent, signal);
    this.startAgent(node);
    await this.save();
    await this.waitUntilReady();
  }

  async stopAgent(nodeName: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const node = this.node(nodeName);
    await stopProcess(node.agent, signal);
    node.agent = undefined;
    await this.save();
  }

  /**
   * Waits until every node's agent answers, IPAM is ready and each knows the others (except
   * across a partition) as reachable.
   */
  async waitUntilReady(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    if (this.state.cni === 'reference') return;
    const deadline = Date.now() + timeoutMs;
    let last = '';
    let nextReport = Date.now() + 5_000;
    for (;;) {
      last = await this.notReadyReason();
      if (last === '') return;
      if (Date.now() > nextReport) {
        this.progress(`waiting for the agents: ${last}`);
        nextReport = Date.now() + 5_000;
      }
      if (Date.now() > deadline) {
        const logs = this.state.nodes.map((n) => `--- ${n.name}\n${this.agentLog(n.name).slice(-2000)}`);
        throw new Error(`lab not ready after ${timeoutMs} ms: ${last}\n${logs.join('\n')}`);
      }
      await sleep(250);
    }
  }

  private cutOff(a: string, b: string): boolean {
    return this.state.partitions.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
  }

  private async notReadyReason(): Promise<string> {
    for (const node of this.state.nodes) {
      if (!isRunning(node.agent)) return `${node.name}: agent not running`;
      const status = await this.status(node.name).catch((e: Error) => e);
      if (status instanceof Error) return `${node.name}: ${status.message}`;
      const expected = this.state.nodes.filter((n) => !this.cutOff(n.name, node.name)).map((n) => n.name);
      const reason = notReadyReason(node.name, status, expected);
      if (reason !== '') return reason;
    }
    return '';
  }

  /** Writes the node's CNI config: weft's plugin, or bridge + host-local. */
  private async configureCni(node: LabNode): Promise<void> {
    const paths = podmanPaths(this.state.dir, node.name);
    if (this.state.cni === 'reference') {
      writeHostLocalConflist(paths.cniConfDir, {
        name: 'labnet',
        subnet: node.podSubnet as string,
        mtu: 1500,
        dataDir: join(node.dir, 'host-local'),
      });
    } else {
      await installWeftCni(AGENT_ENTRY, {
        binDir: paths.cniBinDir,
        confDir: paths.cniConfDir,
        socket: this.socket(node.name),
        stateDir: join(node.dir, 'state'),
      });
    }
    writePodmanConfig(paths, networkName(paths.cniConfDir));
  }

  private async startDefaultPods(nodeName: string): Promise<void> {
    await this.startPod(nodeName, `${nodeName}-web`, 'web');
    await this.startPod(nodeName, `${nodeName}-sh`, 'shell');
  }

  /** Starts a busybox pod on a node through podman (and so through the node's CNI plugin). */
  async startPod(nodeName: string, podName: string, role: LabPod['role'] = 'shell'): Promise<LabPod> {
    const podman = this.podman(nodeName);
    const started = Date.now();
    const containerId = await podman.start(podName, LAB_IMAGE, role === 'web' ? WEB_COMMAND : SHELL_COMMAND);
    const { ip } = await podman.network(podName);
    const pod: LabPod = {
      name: podName,
      node: nodeName,
      ip,
      containerId,
      role,
      startMs: Date.now() - started,
    };
    this.state.pods.push(pod);
    await this.save();
    this.progress(`pod ${podName} on ${nodeName}: ${ip} (${pod.startMs} ms)`);
    return pod;
  }

  async removePod(podName: string): Promise<void> {
    const pod = this.pod(podName);
    await this.podman(pod.node).remove([pod.name]);
    this.state.pods = this.state.pods.filter((p) => p !== pod);
    await this.save();
  }

  /** Runs a command in a pod. */
  exec(podName: string, command: readonly string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}) {
    const pod = this.pod(podName);
    return this.podman(pod.node).exec(pod.name, command, opts);
  }

  /** Adds a node to the running lab: namespace, agent (peers: every node), CNI, default pods. */
  async addNode(options: { pods?: boolean } = {}): Promise<LabNode> {
    const node = await this.createNode();
    this.startAgent(node);
    await this.save();
    await this.waitUntilReady();
    await this.configureCni(node);
    if (options.pods !== false) await this.startDefaultPods(node.name);
    return node;
  }

  /**
   * Removes a node as a cloud would: its pods and agent are gone, its namespace deleted, then
   * another node reclaims the node's ranges (`rmpeer`). Returns the reclaimed ranges.
   */
  async removeNode(nodeName: string): Promise<{ by: string; cidrs: string[] }> {
    const node = this.node(nodeName);
    const survivor = this.state.nodes.find((n) => n !== node && isRunning(n.agent));
    await this.podman(node.name).removeAll();
    await stopProcess(node.agent, 'SIGKILL');
    await deleteNamespace(node.ns);
    for (const other of this.state.nodes) {
      if (other !== node && node.podSubnet !== undefined) await deleteStaticRoute(other.ns, node.podSubnet);
    }
    await unmountBelow(node.dir);
    rmSync(node.dir, { recursive: true, force: true });
    this.state.nodes = this.state.nodes.filter((n) => n !== node);
    this.state.pods = this.state.pods.filter((p) => p.node !== node.name);
    this.state.partitions = this.state.partitions.filter((pair) => !pair.includes(node.name));
    await this.save();
    if (survivor === undefined || this.state.cni === 'reference') return { by: '-', cidrs: [] };
    // The lab knows the node is gone for good, so the survivor need not wait for the peer timeout.
    const taken = (await postToAgent(this.socket(survivor.name), '/v1/rmpeer', {
      peer: node.name,
      force: true,
    })) as {
      cidrs: string[];
    };
    this.progress(`${survivor.name} reclaimed ${node.name}'s ranges: ${taken.cidrs.join(', ') || 'none'}`);
    return { by: survivor.name, cidrs: taken.cidrs };
  }

  /** Cuts the underlay between two nodes (both directions). */
  async partition(a: string, b: string): Promise<void> {
    const [na, nb] = [this.node(a), this.node(b)];
    if (na === nb) throw new Error('partition needs two different nodes');
    await cutUnderlay(na.ns, na.underlayIp, nb.ns, nb.underlayIp);
    if (!this.cutOff(a, b)) this.state.partitions.push([a, b]);
    await this.save();
  }

  /** Removes every partition. */
  async heal(): Promise<void> {
    for (const [a, b] of this.state.partitions) {
      const [na, nb] = [this.node(a), this.node(b)];
      await restoreUnderlay(na.ns, na.underlayIp, nb.ns, nb.underlayIp);
    }
    this.state.partitions = [];
    await this.save();
  }
}

/**
 * One CNI bin dir per lab (weft's plugin carries a copy of the Node binary, 95 MB, not worth
 * repeating per node); config, storage and network config per node; the lab's image store.
 */
function podmanPaths(labDirectory: string, nodeName: string): PodmanPaths {
  const nodeDir = join(labDirectory, nodeName);
  return {
    dir: join(nodeDir, 'podman'),
    cniBinDir: join(labDirectory, 'cni-bin'),
    cniConfDir: join(nodeDir, 'cni', 'net.d'),
    imageStore: join(labDirectory, 'images', 'storage'),
  };
}

/** podman leaves shm mounts under its storage when it dies mid-way; unmount them before removal. */
async function unmountBelow(dir: string): Promise<void> {
  for (const target of mountsBelow(dir)) await run(['umount', '-l', target], { allowFail: true });
}

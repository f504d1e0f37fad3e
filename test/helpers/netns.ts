/**
 * Network namespaces for integration tests and benchmarks on a shared machine. A group owns the
 * namespaces named `<prefix>-<short name>` with a prefix unique to it (`wt-<purpose>-<4 hex>`),
 * and only ever deletes those. Interfaces are created directly inside the group's namespaces, so
 * their names (≤ 15 characters) never meet other people's in the root namespace.
 */
import { type ChildProcess, spawn as spawnChild } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { processStartTime } from '../../src/lab/processes.js';
import {
  CommandError,
  type RunOptions,
  type RunResult,
  run,
  runSyncBestEffort,
} from '../../src/util/exec.js';

/** Owner records (pid and start time of the process that created a group) live here. */
const OWNER_DIR = '/run/weft-netns';
const MAX_IFNAME = 15;
const PURPOSE = /^[a-z0-9]{1,8}$/;
const SHORT_NAME = /^[a-z0-9]{1,8}$/;
const TERM_GRACE_MS = 2_000;

export interface VethEnd {
  /** Short name inside this group, as passed to {@link NetnsGroup.addNamespace}. */
  ns: string;
  ifname: string;
}

export interface SpawnOptions {
  /** Append stdout and stderr to this file; without it both are pipes the caller must drain. */
  logFile?: string;
}

function checkIfname(name: string): void {
  if (name.length === 0 || name.length > MAX_IFNAME || !/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new RangeError(`interface name "${name}" must be 1..${MAX_IFNAME} of [A-Za-z0-9_.-]`);
  }
}

function ownerFile(prefix: string): string {
  return `${OWNER_DIR}/${prefix}`;
}

/** Records this process (pid and start time) in `file` as the owner of what the file stands for. */
export function writeOwnerRecord(file: string): void {
  writeFileSync(file, `${process.pid} ${processStartTime(process.pid)}\n`);
}

/** Does the process recorded by {@link writeOwnerRecord} in `file` still run (same pid, same start)? */
export function ownerRecordAlive(file: string): boolean {
  let record: string;
  try {
    record = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  const [pid, startTime] = record.trim().split(' ');
  return startTime !== undefined && processStartTime(Number(pid)) === startTime;
}

async function listNamespaces(): Promise<string[]> {
  try {
    return await readdir('/run/netns');
  } catch {
    return [];
  }
}

async function pidsInNamespace(ns: string): Promise<number[]> {
  const { stdout, code } = await run(['ip', 'netns', 'pids', ns], { allowFail: true });
  return code === 0 ? stdout.split('\n').filter(Boolean).map(Number) : [];
}

async function waitForExit(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = [...pids];
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(50);
    alive = alive.filter((pid) => processStartTime(pid) !== undefined);
  }
  return alive;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Stops processes (SIGTERM, then SIGKILL after a grace period) and waits until they are gone. */
async function stopPids(pids: readonly number[]): Promise<void> {
  if (pids.length === 0) return;
  for (const pid of pids) signal(pid, 'SIGTERM');
  const stubborn = await waitForExit(pids, TERM_GRACE_MS);
  for (const pid of stubborn) signal(pid, 'SIGKILL');
  await waitForExit(stubborn, TERM_GRACE_MS);
}

async function deleteNamespace(ns: string): Promise<void> {
  // Processes still inside (daemons like `iperf3 -D`) were started there by the group's owner.
  await stopPids(await pidsInNamespace(ns));
  const argv = ['ip', 'netns', 'del', ns];
  const result = await run(argv, { allowFail: true });
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
  if (result.code !== 0 && (await listNamespaces()).includes(ns)) {
    throw new CommandError(argv, result.code, result.stderr);
  }
}

const liveGroups = new Set<NetnsGroup>();

function cleanUpSynchronously(): void {
  for (const group of liveGroups) group.destroySync();
}

function onSignal(sig: NodeJS.Signals): void {
  cleanUpSynchronously();
  process.removeListener(sig, onSignal);
  // Nobody else handles the signal: die of it as the default action would have.
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function installSafetyNet(): void {
  if (liveGroups.size !== 1) return;
  process.on('exit', cleanUpSynchronously);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function removeSafetyNet(): void {
  if (liveGroups.size !== 0) return;
  process.removeListener('exit', cleanUpSynchronously);
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
}

export class NetnsGroup {
  private readonly namespaces = new Set<string>();
  private readonly children = new Set<ChildProcess>();
  private readonly cleanups: Array<() => void> = [];
  private destroyed = false;

  private constructor(readonly prefix: string) {}

  /** A new, empty group; `purpose` (a-z0-9, ≤ 8) goes into the prefix `wt-<purpose>-<4 hex>`. */
  /** Removes what dead runs of the same purpose left behind, then creates a group. */
  static async createAfterSweep(purpose: string): Promise<NetnsGroup> {
    await NetnsGroup.sweepStale(`wt-${purpose}`);
    return NetnsGroup.create(purpose);
  }

  static create(purpose: string): NetnsGroup {
    if (!PURPOSE.test(purpose)) throw new RangeError(`purpose "${purpose}" must match ${PURPOSE}`);
    const prefix = `wt-${purpose}-${randomBytes(2).toString('hex')}`;
    mkdirSync(OWNER_DIR, { recursive: true });
    writeOwnerRecord(ownerFile(prefix));
    const group = new NetnsGroup(prefix);
    liveGroups.add(group);
    installSafetyNet();
    return group;
  }

  /**
   * Deletes namespaces left by earlier runs that died without cleaning up: those named
   * `<stalePrefix>-<4 hex>-…` whose owning process no longer exists. Groups of live processes
   * (a concurrent run of the same tests) are left alone. Returns the deleted namespaces.
   */
  static async sweepStale(stalePrefix: string): Promise<string[]> {
    if (!/^wt-[a-z0-9]{1,8}$/.test(stalePrefix))
      throw new RangeError(`not a group prefix stem: "${stalePrefix}"`);
    const pattern = new RegExp(`^(${stalePrefix}-[0-9a-f]{4})-[a-z0-9]{1,8}$`);
    const deleted: string[] = [];
    const deadPrefixes = new Set<string>();
    for (const ns of await listNamespaces()) {
      const prefix = pattern.exec(ns)?.[1];
      if (prefix === undefined || ownerRecordAlive(ownerFile(prefix))) continue;
      await deleteNamespace(ns);
      deadPrefixes.add(prefix);
      deleted.push(ns);
    }
    for (const prefix of deadPrefixes) rmSync(ownerFile(prefix), { force: true });
    return deleted;
  }

  /** All named network namespaces on the machine (`ip netns list`, without ids). */
  static listNamespaces(): Promise<string[]> {
    return listNamespaces();
  }

  /** Full name of a namespace of this group. */
  ns(shortName: string): string {
    if (!this.namespaces.has(`${this.prefix}-${shortName}`)) {
      throw new Error(`namespace "${shortName}" is not part of group ${this.prefix}`);
    }
    return `${this.prefix}-${shortName}`;
  }

  /** Creates `<prefix>-<shortName>` with its loopback up; returns the full name. */
  async addNamespace(shortName: string): Promise<string> {
    if (this.destroyed) throw new Error(`group ${this.prefix} is destroyed`);
    if (!SHORT_NAME.test(shortName))
      throw new RangeError(`namespace short name "${shortName}" must match ${SHORT_NAME}`);
    const name = `${this.prefix}-${shortName}`;
    // Registered before creation, so that a failure halfway still gets cleaned up.
    this.namespaces.add(name);
    await run(['ip', 'netns', 'add', name]);
    await run(['ip', '-n', name, 'link', 'set', 'dev', 'lo', 'up']);
    return name;
  }

  /** A veth pair between two namespaces of the group (or both ends in one), optionally with an MTU. */
  async addVethPair(a: VethEnd, b: VethEnd, opts: { mtu?: number } = {}): Promise<void> {
    checkIfname(a.ifname);
    checkIfname(b.ifname);
    const nsA = this.ns(a.ns);
    const nsB = this.ns(b.ns);
    const peer = ['peer', 'name', b.ifname, 'netns', nsB];
    await run(['ip', '-n', nsA, 'link', 'add', a.ifname, 'type', 'veth', ...peer]);
    if (opts.mtu !== undefined) {
      await run(['ip', '-n', nsA, 'link', 'set', 'dev', a.ifname, 'mtu', String(opts.mtu)]);
      await run(['ip', '-n', nsB, 'link', 'set', 'dev', b.ifname, 'mtu', String(opts.mtu)]);
    }
  }

  /** Attaches an interface to a bridge in the same namespace. */
  async attachToBridge(ns: string, ifname: string, bridge: string): Promise<void> {
    await run(['ip', '-n', this.ns(ns), 'link', 'set', 'dev', ifname, 'master', bridge]);
  }

  async addAddress(ns: string, ifname: string, cidr: string): Promise<void> {
    await run(['ip', '-n', this.ns(ns), 'addr', 'add', cidr, 'dev', ifname]);
  }

  async linkUp(ns: string, ifname: string): Promise<void> {
    await run(['ip', '-n', this.ns(ns), 'link', 'set', 'dev', ifname, 'up']);
  }

  /** Runs a command inside a namespace of the group. */
  exec(ns: string, argv: readonly string[], opts: Omit<RunOptions, 'netns'> = {}): Promise<RunResult> {
    return run(argv, { ...opts, netns: this.ns(ns) });
  }

  /** Starts a long-running process inside a namespace; {@link destroy} stops it if nobody else does. */
  spawn(ns: string, argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    const logFd = opts.logFile === undefined ? undefined : openSync(opts.logFile, 'a');
    try {
      // `ip netns exec` execs the command, so the child's pid is the command's own.
      const child = spawnChild('ip', ['netns', 'exec', this.ns(ns), ...argv], {
        stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd],
      });
      this.children.add(child);
      child.once('exit', () => this.children.delete(child));
      child.once('error', () => this.children.delete(child));
      return child;
    } finally {
      if (logFd !== undefined) closeSync(logFd);
    }
  }

  /** Stops one spawned process (SIGTERM, then SIGKILL) and waits for it. */
  async stop(child: ChildProcess): Promise<void> {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await stopPids([child.pid]);
      // A process stuck in the kernel survives even SIGKILL for a while; do not hang on it.
      await Promise.race([exited, sleep(TERM_GRACE_MS)]);
    }
    this.children.delete(child);
  }

  /** Stops every process of the group and deletes its namespaces (and so their links). Idempotent. */
  async destroy(): Promise<void> {
    for (const child of [...this.children]) await this.stop(child);
    const failures: unknown[] = [];
    for (const ns of [...this.namespaces]) {
      try {
        await deleteNamespace(ns);
        this.namespaces.delete(ns);
      } catch (error) {
        failures.push(error);
      }
    }
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    if (failures.length > 0)
      throw new AggregateError(failures, `group ${this.prefix}: namespaces left behind`);
    this.release();
  }

  /** Runs `cleanup` (e.g. removing a temp dir) when the group is destroyed, after its processes stop. */
  onDestroy(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  /** The same as {@link destroy}, blocking, for `exit` and signal handlers. */
  destroySync(): void {
    for (const child of this.children) if (child.pid !== undefined) signal(child.pid, 'SIGKILL');
    for (const ns of this.namespaces) {
      const pids = runSyncBestEffort(['ip', 'netns', 'pids', ns]).stdout.split('\n').filter(Boolean);
      for (const pid of pids) signal(Number(pid), 'SIGKILL');
      runSyncBestEffort(['ip', 'netns', 'del', ns]);
    }
    this.namespaces.clear();
    this.children.clear();
    for (const cleanup of this.cleanups.splice(0)) {
      try {
        cleanup();
      } catch {
        // best effort while the process is exiting
      }
    }
    this.release();
  }

  private release(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    rmSync(ownerFile(this.prefix), { force: true });
    liveGroups.delete(this);
    removeSafetyNet();
  }
}

/**
 * containerd (Debian's 1.6) with its CRI plugin, started by a test inside one of its node
 * namespaces with its own root, state, socket, runc root and CNI directories, so that nothing of
 * the machine's own containerd setup is used or touched. Files the test puts into the work
 * directory (CNI plugins, conflists, IPAM data) go away with it. Tests drive it through
 * {@link CriClient} exactly as kubelet would; the CNI plugins it calls run in the node namespace.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { mountsBelow } from '../../src/lab/mounts.js';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { type RunOptions, type RunResult, run, runSyncBestEffort } from '../../src/util/exec.js';
import { waitFor } from './agent.js';
import { CriClient, type PodSandboxConfig } from './cri/client.js';
import { buildPauseImage, PAUSE_IMAGE } from './cri/pause-image.js';
import type { NetnsGroup } from './netns.js';

const K8S_NAMESPACE = 'k8s.io';
const CGROUP_ROOT = '/sys/fs/cgroup';
const WORK_DIR_PREFIX = 'weft-cri-';
const PID_FILE = 'containerd.pid';
/** A work dir without a pid file younger than this may belong to a run that is starting up. */
const STARTUP_GRACE_MS = 60_000;
const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

function configToml(dir: string, cniBinDir: string, cniConfDir: string): string {
  const q = JSON.stringify; // a JSON string is a valid TOML basic string for these paths
  return `version = 2
root = ${q(join(dir, 'root'))}
state = ${q(join(dir, 'state'))}

[grpc]
  address = ${q(join(dir, 'containerd.sock'))}

[ttrpc]
  address = ${q(join(dir, 'containerd.sock.ttrpc'))}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(dir, 'opt'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(PAUSE_IMAGE)}
  # Without CAP_SYS_RESOURCE (as on the test machines) runc cannot set the sandbox's -998.
  restrict_oom_score_adj = true
  # Sandbox network namespaces stay in /var/run/netns, as with kubelet: weft's agent does the
  # plumbing in its own mount namespace and sees them only there, where mounts propagate.
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = ${q(cniBinDir)}
    conf_dir = ${q(cniConfDir)}
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      Root = ${q(join(dir, 'runc'))}
`;
}

/** Removes a cgroupfs parent and its (by now empty) children from every v1 hierarchy. */
function removeCgroups(parent: string): void {
  for (const hierarchy of readdirSync(CGROUP_ROOT)) {
    const dir = join(CGROUP_ROOT, hierarchy, parent);
    if (!existsSync(dir)) continue;
    try {
      for (const child of readdirSync(dir, { withFileTypes: true })) {
        if (child.isDirectory()) rmdirSync(join(dir, child.name));
      }
      rmdirSync(dir);
    } catch {
      // A cgroup still holding a process; the process was killed, the kernel frees it soon.
    }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Pids of the runc shims and sandbox processes a containerd started (from its state files). */
function taskPids(bundles: readonly string[]): number[] {
  const pids: number[] = [];
  for (const bundle of bundles) {
    for (const file of ['init.pid', 'shim.pid']) {
      const path = join(bundle, file);
      if (existsSync(path)) pids.push(Number(readFileSync(path, 'utf8').trim()));
    }
  }
  return pids.filter((pid) => Number.isInteger(pid) && pid > 1);
}

/** The OCI bundle directories of the tasks (sandboxes) a containerd runs or left behind. */
function taskBundles(workDir: string): string[] {
  const tasks = join(workDir, 'state', 'io.containerd.runtime.v2.task', K8S_NAMESPACE);
  return existsSync(tasks) ? readdirSync(tasks).map((id) => join(tasks, id)) : [];
}

/** Network namespace mounts (under /var/run/netns) named in the bundles' OCI specs. */
function sandboxNetnsPaths(bundles: readonly string[]): string[] {
  const paths: string[] = [];
  for (const bundle of bundles) {
    try {
      const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as {
        linux?: { namespaces?: Array<{ type: string; path?: string }> };
      };
      const path = spec.linux?.namespaces?.find((n) => n.type === 'network')?.path;
      if (path?.startsWith('/var/run/netns/cni-')) paths.push(path);
    } catch {
      // no spec written yet
    }
  }
  return paths;
}

/**
 * Kills what a (stopped) containerd left running, removes its sandboxes' network namespaces,
 * unmounts and deletes its work dir and cgroups.
 */
function removeWorkDir(workDir: string): void {
  const bundles = taskBundles(workDir);
  for (const pid of taskPids(bundles)) signal(pid, 'SIGKILL');
  for (const netns of sandboxNetnsPaths(bundles)) {
    runSyncBestEffort(['umount', netns]);
    rmSync(netns, { force: true });
  }
  for (const point of mountsBelow(workDir)) runSyncBestEffort(['umount', '-l', point]);
  rmSync(workDir, { recursive: true, force: true });
  removeCgroups(`/${basename(workDir)}`);
}

/** The containerd pid recorded in a work dir, if that process still runs this work dir's config. */
function liveDaemon(workDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(workDir, PID_FILE), 'utf8'));
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(join(workDir, 'config.toml')) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export class Containerd {
  readonly socket: string;
  readonly logFile: string;
  /** Where the CRI plugin finds CNI plugin executables (`cni.bin_dir`); the test installs them. */
  readonly cniBinDir: string;
  /** Where it loads the first conflist from (`cni.conf_dir`); it reloads the directory live. */
  readonly cniConfDir: string;
  readonly cri: CriClient;
  /** cgroupfs parent of every sandbox started through {@link sandboxConfig}, removed at the end. */
  readonly cgroupParent: string;
  private child: ChildProcess | undefined;
  private removed = false;

  private constructor(
    readonly workDir: string,
    readonly netns: string,
  ) {
    this.socket = join(workDir, 'containerd.sock');
    this.logFile = join(workDir, 'containerd.log');
    this.cniBinDir = join(workDir, 'cni', 'bin');
    this.cniConfDir = join(workDir, 'cni', 'net.d');
    // removeWorkDir() derives the same name from the work dir.
    this.cgroupParent = `/${basename(workDir)}`;
    this.cri = new CriClient(this.socket);
  }

  /**
   * Starts containerd in node namespace `node` of `group`, imports the pause image and waits until
   * the CRI answers. The group's destruction removes everything left behind, even after a crash.
   */
  static async start(group: NetnsGroup, node: string): Promise<Containerd> {
    const workDir = mkdtempSync(join(tmpdir(), `${WORK_DIR_PREFIX}${group.prefix}-`));
    const containerd = new Containerd(workDir, group.ns(node));
    group.onDestroy(() => containerd.removeSync());
    mkdirSync(containerd.cniBinDir, { recursive: true });
    mkdirSync(containerd.cniConfDir, { recursive: true });
    writeFileSync(
      join(workDir, 'config.toml'),
      configToml(workDir, containerd.cniBinDir, containerd.cniConfDir),
    );
    const logFd = openSync(containerd.logFile, 'a');
    try {
      // nsenter changes only the network namespace: containerd's mounts (rootfs, shm, sandbox
      // netns) stay visible to the test, which can enter and clean them up.
      containerd.child = spawn(
        'nsenter',
        [`--net=/run/netns/${containerd.netns}`, 'containerd', '--config', join(workDir, 'config.toml')],
        { stdio: ['ignore', logFd, logFd] },
      );
    } finally {
      closeSync(logFd);
    }
    writeFileSync(join(workDir, PID_FILE), String(containerd.child.pid));
    try {
      await containerd.waitUntilServing();
      const archive = await buildPauseImage(workDir);
      await containerd.ctr(['images', 'import', archive]);
    } catch (error) {
      await containerd.stop();
      throw error;
    }
    return containerd;
  }

  /**
   * Removes work dirs of containerds whose test run died without cleaning up (killed or crashed):
   * their left-over sandbox processes, mounts, files and cgroups. Live runs are left alone.
   */
  static sweepStale(): string[] {
    const swept: string[] = [];
    for (const name of readdirSync(tmpdir())) {
      if (!name.startsWith(WORK_DIR_PREFIX)) continue;
      const dir = join(tmpdir(), name);
      if (liveDaemon(dir) !== undefined) continue;
      const starting =
        !existsSync(join(dir, PID_FILE)) && Date.now() - statSync(dir).mtimeMs < STARTUP_GRACE_MS;
      if (starting) continue;
      removeWorkDir(dir);
      swept.push(dir);
    }
    return swept;
  }

  /** Writes a conflist into the conf dir (atomically: containerd reloads the directory live). */
  writeConflist(fileName: string, conflist: object): Promise<void> {
    return writeFileAtomic(join(this.cniConfDir, fileName), JSON.stringify(conflist, null, 2), 0o644);
  }

  /** A pod sandbox config as kubelet would send it for pod `name` in namespace "default". */
  sandboxConfig(name: string): PodSandboxConfig {
    return {
      metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 },
      hostname: name,
      labels: { 'io.kubernetes.pod.name': name },
      linux: { cgroupParent: this.cgroupParent },
    };
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Runs `argv` inside a sandbox's network namespace (`netnsPath` as the CRI reports it). */
  execInSandbox(netnsPath: string, argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(['nsenter', `--net=${netnsPath}`, ...argv], opts);
  }

  /** Runs `ctr` against this containerd in the CRI's namespace. */
  ctr(args: readonly string[]): Promise<{ stdout: string }> {
    return run(['ctr', '--address', this.socket, '--namespace', K8S_NAMESPACE, ...args]);
  }

  /**
   * Stops and removes every sandbox through the CRI (their CNI DELs included), stops containerd,
   * then removes whatever is left: shims, sandbox processes, mounts and the work directory.
   */
  async stop(): Promise<void> {
    if (this.removed) return;
    if (this.isRunning()) {
      try {
        for (const sandbox of await this.cri.listPodSandbox()) {
          await this.cri.stopPodSandbox(sandbox.id);
          await this.cri.removePodSandbox(sandbox.id);
        }
      } catch {
        // Left-overs are removed the hard way below.
      }
    }
    this.cri.close();
    await this.stopDaemon();
    this.removeSync();
  }

  private isRunning(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  private async waitUntilServing(): Promise<void> {
    await waitFor(
      async () => {
        if (!this.isRunning()) throw new Error(`containerd exited:\n${this.log().slice(-3000)}`);
        const conditions = await this.cri.conditions().catch(() => []);
        return conditions.some((c) => c.type === 'RuntimeReady' && c.status);
      },
      START_TIMEOUT_MS,
      `containerd did not serve the CRI within ${START_TIMEOUT_MS} ms:\n${this.log().slice(-3000)}`,
    );
  }

  private async stopDaemon(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.isRunning()) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Blocking teardown for crashes and the group's `exit` handler: kill, unmount, delete. */
  private removeSync(): void {
    if (this.removed) return;
    this.removed = true;
    if (this.child?.pid !== undefined && this.isRunning()) signal(this.child.pid, 'SIGKILL');
    removeWorkDir(this.workDir);
  }
}

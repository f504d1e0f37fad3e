/**
 * podman for one lab node, with its own containers.conf and storage.conf so the system's podman
 * configuration is never used or changed: runc (crun fails on this kernel's hybrid cgroups),
 * cgroupfs, vfs storage, the CNI backend with the node's own plugin and network config dirs, and
 * the lab's shared read-only image store. podman runs inside the node's network namespace
 * (`nsenter --net`, which keeps the mount namespace, so podman's own netns bind mounts stay
 * visible), so the CNI plugins it calls attach pods to that node's bridge.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RunOptions, type RunResult, run } from '../util/exec.js';

/** Hard limits here are below podman's root defaults, and raising them needs CAP_SYS_RESOURCE. */
const ULIMITS = ['nofile=1024:1024', 'nproc=4096:4096'];

export interface PodmanPaths {
  /** containers.conf, storage.conf, storage, runroot and tmp live here. */
  dir: string;
  cniBinDir: string;
  cniConfDir: string;
  /** graphroot of the shared image store (read-only for nodes); none for the store itself. */
  imageStore?: string;
}

const toml = (value: string | string[]) =>
  Array.isArray(value) ? `[${value.map((v) => JSON.stringify(v)).join(', ')}]` : JSON.stringify(value);

export function writePodmanConfig(paths: PodmanPaths, defaultNetwork?: string): void {
  const { dir } = paths;
  mkdirSync(dir, { recursive: true });
  mkdirSync(paths.cniBinDir, { recursive: true });
  mkdirSync(paths.cniConfDir, { recursive: true });
  const containers = [
    '[containers]',
    `default_ulimits = ${toml(ULIMITS)}`,
    '[network]',
    'network_backend = "cni"',
    `cni_plugin_dirs = ${toml([paths.cniBinDir])}`,
    `network_config_dir = ${toml(paths.cniConfDir)}`,
    ...(defaultNetwork === undefined ? [] : [`default_network = ${toml(defaultNetwork)}`]),
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `events_logfile_path = ${toml(join(dir, 'events.log'))}`,
    'runtime = "runc"',
    `tmp_dir = ${toml(join(dir, 'tmp'))}`,
  ];
  const storage = [
    '[storage]',
    'driver = "vfs"',
    `runroot = ${toml(join(dir, 'run'))}`,
    `graphroot = ${toml(join(dir, 'storage'))}`,
    ...(paths.imageStore === undefined
      ? []
      : ['[storage.options]', `additionalimagestores = ${toml([paths.imageStore])}`]),
  ];
  writeFileSync(join(dir, 'containers.conf'), `${containers.join('\n')}\n`);
  writeFileSync(join(dir, 'storage.conf'), `${storage.join('\n')}\n`);
}

export interface PodNetwork {
  ip: string;
  prefixLength: number;
  gateway: string;
}

export class Podman {
  constructor(
    readonly paths: PodmanPaths,
    /** Network namespace podman runs in; none for the image store. */
    readonly ns?: string,
  ) {}

  private get env(): Record<string, string> {
    return {
      CONTAINERS_CONF: join(this.paths.dir, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(this.paths.dir, 'storage.conf'),
    };
  }

  /** Runs `podman <args>` with this node's configuration, in its namespace. */
  run(args: readonly string[], opts: Omit<RunOptions, 'env' | 'netns'> = {}): Promise<RunResult> {
    const argv =
      this.ns === undefined
        ? ['podman', ...args]
        : ['nsenter', `--net=/run/netns/${this.ns}`, 'podman', ...args];
    return run(argv, { timeoutMs: 120_000, ...opts, env: this.env });
  }

  /** Starts a detached container named `name` with `--hostname name`; returns its ID. */
  async start(name: string, image: string, command: readonly string[]): Promise<string> {
    const { stdout } = await this.run(['run', '-d', '--name', name, '--hostname', name, image, ...command]);
    return stdout.trim().split('\n').pop() ?? '';
  }

  /** The address the CNI result gave the container on its (only) network. */
  async network(name: string): Promise<PodNetwork> {
    const { stdout } = await this.run(['inspect', name, '--format', '{{json .NetworkSettings.Networks}}']);
    const networks = Object.values(
      JSON.parse(stdout) as Record<string, { IPAddress: string; IPPrefixLen: number; Gateway: string }>,
    );
    const first = networks[0];
    if (first === undefined || first.IPAddress === '')
      throw new Error(`container ${name} has no network address`);
    return { ip: first.IPAddress, prefixLength: first.IPPrefixLen, gateway: first.Gateway };
  }

  exec(
    name: string,
    command: readonly string[],
    opts: Omit<RunOptions, 'env' | 'netns'> = {},
  ): Promise<RunResult> {
    return this.run(['exec', name, ...command], opts);
  }

  /** Removes containers at once (no stop grace: lab pods hold no state). */
  async remove(names: readonly string[]): Promise<void> {
    if (names.length > 0) await this.run(['rm', '-f', '-t', '0', ...names], { allowFail: true });
  }

  async removeAll(): Promise<void> {
    await this.run(['rm', '-a', '-f', '-t', '0'], { allowFail: true });
  }
}

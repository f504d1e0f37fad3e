/**
 * `agent install-cni`: puts the plugin where the runtime looks for it and the network
 * configuration where it reads it, every file atomically (temp + rename, as flannel's init
 * container does), so a runtime never execs or parses a half-written file.
 *
 * The node may have no Node.js (kind nodes do not), so the plugin ships with its own: `weft` is a
 * three-line /bin/sh launcher that runs `weft-node` (a copy of the agent's Node binary) on
 * `weft-cni.cjs` (the shim bundled into one file). A copy rather than a Node single-executable
 * build: the bundle stays a plain script that upgrades without rebuilding a 100 MB binary, and the
 * copy is skipped when the node binary is already there unchanged.
 */
import { chmod, copyFile, mkdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import { PLUGIN_TYPE } from './request.js';

export const CONFLIST_NAME = '10-weft.conflist';
export const NETWORK_NAME = 'weft';
const NODE_COPY = 'weft-node';
const SHIM_COPY = 'weft-cni.cjs';

export interface InstallOptions {
  binDir: string;
  confDir: string;
  socket: string;
  delQueueDir: string;
  mtu?: number | undefined;
  /** The Node binary to ship (the running one). */
  nodeBinary: string;
  /** The bundled shim (dist/cni-shim/weft-cni.cjs). */
  shimBundle: string;
}

export function conflist(options: Pick<InstallOptions, 'socket' | 'delQueueDir' | 'mtu'>): unknown {
  return {
    cniVersion: '1.0.0',
    name: NETWORK_NAME,
    plugins: [
      {
        type: PLUGIN_TYPE,
        socket: options.socket,
        delQueueDir: options.delQueueDir,
        ...(options.mtu !== undefined ? { mtu: options.mtu } : {}),
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  };
}

/** Runs the node copy on the bundle, both found next to the launcher whatever the mount path. */
export function launcherScript(): string {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
  return ['#!/bin/sh', 'd=${0%/*}', `exec "$d/${NODE_COPY}" "$d/${SHIM_COPY}" "$@"`, ''].join('\n');
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a), stat(b).catch(() => undefined)]);
  return sb !== undefined && sa.size === sb.size && Math.trunc(sa.mtimeMs) === Math.trunc(sb.mtimeMs);
}

/** Copies to a temp name beside the target, then renames: a running exec keeps the old inode. */
async function installCopy(source: string, target: string, mode: number): Promise<void> {
  const tmp = `${target}.${process.pid}.tmp`;
  try {
    await copyFile(source, tmp);
    await chmod(tmp, mode);
    const s = await stat(source);
    await utimes(tmp, s.atime, s.mtime);
    await rename(tmp, target);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

export interface InstallReport {
  plugin: string;
  conflist: string;
  nodeCopied: boolean;
}

export async function installCni(options: InstallOptions): Promise<InstallReport> {
  await mkdir(options.binDir, { recursive: true, mode: 0o755 });
  await mkdir(options.confDir, { recursive: true, mode: 0o755 });
  const nodeTarget = join(options.binDir, NODE_COPY);
  const nodeCopied = !(await sameFile(options.nodeBinary, nodeTarget));
  if (nodeCopied) await installCopy(options.nodeBinary, nodeTarget, 0o755);
  await installCopy(options.shimBundle, join(options.binDir, SHIM_COPY), 0o644);
  const plugin = join(options.binDir, PLUGIN_TYPE);
  await writeFileAtomic(plugin, launcherScript(), 0o755);
  const conf = join(options.confDir, CONFLIST_NAME);
  await writeFileAtomic(conf, `${JSON.stringify(conflist(options), null, 2)}\n`, 0o644);
  return { plugin, conflist: conf, nodeCopied };
}

/**
 * `agent install-cni`: puts the plugin where the runtime looks for it and the network
 * configuration where it reads it, every file atomically (temp + rename, as flannel's init
 * container does), so a runtime never execs or parses a half-written file.
 *
 * The plugin is one static executable (cni-shim/weft-cni.c): it runs on nodes without Node.js or
 * any particular libc, such as kind's.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import { PLUGIN_TYPE } from './request.js';

export const CONFLIST_NAME = '10-weft.conflist';
export const NETWORK_NAME = 'weft';

/** What earlier versions installed beside the plugin (a Node binary and a bundled script). */
const SUPERSEDED_FILES = ['weft-node', 'weft-cni.cjs'];

export interface InstallOptions {
  binDir: string;
  confDir: string;
  socket: string;
  delQueueDir: string;
  mtu?: number | undefined;
  /** The plugin executable (dist/cni-shim/weft-cni). */
  plugin: string;
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

export interface InstallReport {
  plugin: string;
  conflist: string;
}

export async function installCni(options: InstallOptions): Promise<InstallReport> {
  await mkdir(options.binDir, { recursive: true, mode: 0o755 });
  await mkdir(options.confDir, { recursive: true, mode: 0o755 });
  const plugin = join(options.binDir, PLUGIN_TYPE);
  // A new inode renamed over the old one: a runtime exec'ing the old plugin right now keeps it.
  await writeFileAtomic(plugin, await readFile(options.plugin), 0o755);
  for (const file of SUPERSEDED_FILES) await rm(join(options.binDir, file), { force: true });
  const conf = join(options.confDir, CONFLIST_NAME);
  await writeFileAtomic(conf, `${JSON.stringify(conflist(options), null, 2)}\n`, 0o644);
  return { plugin, conflist: conf };
}

/**
 * CNI network configuration for one lab node's podman: weft's own plugin (installed by
 * `agent install-cni`), or Debian's reference `bridge` + `host-local` (the comparison run).
 */
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../util/exec.js';

export const REFERENCE_PLUGIN_DIR = '/usr/lib/cni';
export const BRIDGE = 'weave';
const CNI_VERSION = '1.0.0';

/** Links Debian's reference plugins (bridge, host-local, loopback, portmap, …) into `binDir`. */
export function linkReferencePlugins(binDir: string): void {
  if (!existsSync(join(REFERENCE_PLUGIN_DIR, 'bridge'))) {
    throw new Error(`${REFERENCE_PLUGIN_DIR}/bridge is missing: install containernetworking-plugins`);
  }
  for (const plugin of readdirSync(REFERENCE_PLUGIN_DIR)) {
    const link = join(binDir, plugin);
    if (!existsSync(link)) symlinkSync(join(REFERENCE_PLUGIN_DIR, plugin), link);
  }
}

export interface HostLocalNetwork {
  name: string;
  /** The node's pod subnet, all of it handed out by host-local. */
  subnet: string;
  mtu: number;
  dataDir: string;
}

/** Writes a bridge + host-local conflist into `confDir` (replacing any other conflist there). */
export function writeHostLocalConflist(confDir: string, net: HostLocalNetwork): void {
  clearConfDir(confDir);
  const range = { subnet: net.subnet };
  const conflist = {
    cniVersion: CNI_VERSION,
    name: net.name,
    plugins: [
      {
        type: 'bridge',
        bridge: BRIDGE,
        isGateway: true,
        ipMasq: false,
        mtu: net.mtu,
        ipam: { type: 'host-local', dataDir: net.dataDir, ranges: [[range]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'loopback' },
    ],
  };
  writeFileSync(join(confDir, `10-${net.name}.conflist`), `${JSON.stringify(conflist, null, 2)}\n`);
}

function clearConfDir(confDir: string): void {
  for (const file of readdirSync(confDir)) rmSync(join(confDir, file), { force: true });
}

/** `agent install-cni` for one node: plugin `weft` into binDir, `10-weft.conflist` into confDir. */
export async function installWeftCni(
  agentEntry: string,
  paths: { binDir: string; confDir: string; socket: string; stateDir: string },
): Promise<void> {
  clearConfDir(paths.confDir);
  await run([
    process.execPath,
    agentEntry,
    'install-cni',
    '--bin-dir',
    paths.binDir,
    '--conf-dir',
    paths.confDir,
    '--socket',
    paths.socket,
    '--state-dir',
    paths.stateDir,
  ]);
}

/** The network name of the (single) conflist in `confDir`: podman's default network. */
export function networkName(confDir: string): string {
  const file = readdirSync(confDir).find((f) => f.endsWith('.conflist'));
  if (file === undefined) throw new Error(`no .conflist in ${confDir}`);
  return (JSON.parse(readFileSync(join(confDir, file), 'utf8')) as { name: string }).name;
}

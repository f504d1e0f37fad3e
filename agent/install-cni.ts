import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { delQueueDirOf } from '../src/cni/agent-cni.js';
import { installCni } from '../src/cni/install.js';
import { DEFAULT_SOCKET, isValidMtu, MAX_MTU, MIN_MTU } from '../src/cni/request.js';
import { clusterDefaults } from '../src/config/cluster-config.js';
import { ConfigError } from '../src/config/static-peers.js';

export const installCniUsage = `  install-cni     install the CNI plugin and write 10-weft.conflist (atomically)
                    [--bin-dir /opt/cni/bin] [--conf-dir /etc/cni/net.d] [--socket ${DEFAULT_SOCKET}]
                    [--mtu N] [--state-dir DIR (its cni-del-queue holds DELs while the agent is down)]
`;

/** The static plugin executable `npm run build:shim` compiles from cni-shim/weft-cni.c. */
const PLUGIN_EXECUTABLE = fileURLToPath(new URL('../cni-shim/weft-cni', import.meta.url));

export async function runInstallCni(values: Record<string, string | boolean | undefined>): Promise<number> {
  if (!existsSync(PLUGIN_EXECUTABLE))
    throw new ConfigError(`${PLUGIN_EXECUTABLE} is missing: run "npm run build"`);
  const mtu = values.mtu === undefined ? undefined : Number(values.mtu);
  if (mtu !== undefined && !isValidMtu(mtu))
    throw new ConfigError(`--mtu ${values.mtu} is not an integer in ${MIN_MTU}..${MAX_MTU}`);
  const report = await installCni({
    binDir: (values['bin-dir'] as string | undefined) ?? '/opt/cni/bin',
    confDir: (values['conf-dir'] as string | undefined) ?? '/etc/cni/net.d',
    socket: (values.socket as string | undefined) ?? DEFAULT_SOCKET,
    delQueueDir: delQueueDirOf((values['state-dir'] as string | undefined) ?? clusterDefaults.stateDir),
    mtu,
    plugin: PLUGIN_EXECUTABLE,
  });
  process.stdout.write(`installed ${report.plugin}\nwrote ${report.conflist}\n`);
  return 0;
}

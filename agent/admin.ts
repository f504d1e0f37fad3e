import { type AdminPostHandler, AdminServer } from '../src/api/admin-server.js';
import { type NodeReport, peerTraffic, type StatusReport } from '../src/api/status-report.js';
import type { Logger } from '../src/util/log.js';
import { weftVersion } from '../src/util/version.js';
import type { Dataplane } from './dataplane.js';

export interface ModeEndpoints {
  /** The mode-specific part of `/v1/status`. */
  status(): NodeReport;
  post?: Record<string, AdminPostHandler>;
}

/** Starts the admin API: `/v1/status` joins the mode's report with the data plane's. */
export async function startAdmin(
  socket: string,
  dataplane: Dataplane,
  bridgeName: string,
  mode: ModeEndpoints,
  log: Logger,
): Promise<AdminServer> {
  const status = (): StatusReport => {
    const settings = dataplane.settings;
    return {
      version: weftVersion,
      ...mode.status(),
      dataplane: {
        mode: dataplane.description,
        tun: settings.tunName,
        bridge: bridgeName,
        mtu: settings.mtu,
        vni: settings.vni,
        listen: `${settings.underlayAddress}:${settings.dataPort}`,
        counters: dataplane.counters.snapshot(),
        peers: peerTraffic(dataplane.routeTable),
      },
    };
  };
  const admin = new AdminServer(
    socket,
    { get: { '/v1/status': status }, post: mode.post ?? {} },
    log.child({ component: 'admin' }),
  );
  await admin.start();
  return admin;
}

import { join } from 'node:path';
import type { AdminPostHandler } from '../api/admin-server.js';
import type { IpamDriver } from '../control/ipam-driver.js';
import { NetlinkPodLinks } from '../plumbing/pod-links.js';
import type { Logger } from '../util/log.js';
import { replayDelQueue } from './del-queue.js';
import { cniEndpoints } from './endpoints.js';
import { type CniIpam, CniService, type NodeNetworkState } from './service.js';

/** The DEL queue lives in the state directory: `/var/lib/weft/cni-del-queue` by default. */
export function delQueueDirOf(stateDir: string): string {
  return join(stateDir, 'cni-del-queue');
}

export function ipamForCni(driver: IpamDriver): CniIpam {
  return {
    allocate: (id) => driver.allocate(id),
    release: (id) => driver.release(id),
    gc: (valid) => driver.gc(valid),
    addressOf: (id) => driver.node.addressOf(id),
    allocationIds: () => driver.node.allocationList().map((a) => a.containerId),
  };
}

/**
 * The agent's CNI service: replays DELs queued while it was down (before any new request can
 * race them), then returns the admin endpoints to register. Every request replays the queue again
 * first: a shim that found no socket between this replay and the admin server's listen queued its
 * DEL after the replay, and would otherwise wait for the next restart.
 */
export async function startCni(options: {
  driver: IpamDriver;
  stateDir: string;
  bridge: string;
  node: () => Promise<NodeNetworkState>;
  log: Logger;
}): Promise<Record<string, AdminPostHandler>> {
  const log = options.log.child({ component: 'cni' });
  const service = new CniService({
    ipam: ipamForCni(options.driver),
    bridge: options.bridge,
    links: new NetlinkPodLinks(),
    node: options.node,
    log,
  });
  const queue = delQueueDirOf(options.stateDir);
  const replay = async () => {
    const outcome = await replayDelQueue(queue, (request) => service.replayDel(request));
    if (outcome.replayed.length > 0 || outcome.failed.length > 0 || outcome.abandonedTemps.length > 0)
      log.info(
        {
          queue,
          replayed: outcome.replayed.length,
          failed: outcome.failed,
          abandonedTemps: outcome.abandonedTemps,
        },
        'replayed queued CNI DELs',
      );
  };
  await replay();
  const replayBeforeRequest = () =>
    replay().catch((error: unknown) => log.warn({ err: error, queue }, 'cannot replay queued CNI DELs'));
  return cniEndpoints(service, coalesced(replayBeforeRequest));
}

/** `work` run by one caller at a time; callers that arrive meanwhile share the run in flight. */
function coalesced(work: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= work().finally(() => {
      running = undefined;
    });
    return running;
  };
}

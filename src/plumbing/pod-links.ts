/**
 * Creating and removing a pod's link to the node (pod-network.ts says what it looks like). The real
 * implementation talks rtnetlink through the native addon, off the event loop; CniService sees only
 * the {@link PodLinks} interface.
 */
import { type NetlinkError, type WeftDpAddon, weftDp } from '../native/addon.js';
import { concurrencyLimit } from '../util/concurrency-limit.js';
import type { PodLinkSpec } from './pod-network.js';

/** The pod's /32 route on the node, through the bridge. */
export interface HostRoute {
  address: string;
  bridge: string;
}

export interface PodLinks {
  /** Creates the pod's link as `spec` says; on failure leaves neither veth nor host route behind. */
  attach(spec: PodLinkSpec): Promise<void>;
  /** Removes the host end (the pod end goes with it) and the host route; false if the link was gone. */
  detach(hostIf: string, route?: HostRoute): Promise<boolean>;
}

/** A veth that exists already: an ADD retried after a half-done one. */
function isLeftOver(error: unknown): boolean {
  const { step, code } = error as Partial<NetlinkError>;
  return step === 'create-veth' && code === 'EEXIST';
}

/**
 * Netlink operations (each on a thread of its own) in flight at once. The kernel serializes link
 * changes anyway, but a veth delete then waits tens of milliseconds for the device's references to
 * drop, and those waits overlap: 50 deletes take half as long 4 at a time as one at a time.
 */
const NETLINK_CONCURRENCY = 8;

export class NetlinkPodLinks implements PodLinks {
  private readonly limit = concurrencyLimit(NETLINK_CONCURRENCY);

  /** The addon is loaded on first use, so that constructing this costs nothing where it is unused. */
  constructor(private readonly addon: () => Pick<WeftDpAddon, 'podAttach' | 'podDetach'> = weftDp) {}

  async attach(spec: PodLinkSpec): Promise<void> {
    try {
      await this.limit(() => this.addon().podAttach(spec));
      return;
    } catch (error) {
      if (!isLeftOver(error)) return this.undo(spec, error);
    }
    // Start from nothing. EEXIST again (the pod already has an interface of that name) fails below.
    await this.detach(spec.hostIf);
    try {
      await this.limit(() => this.addon().podAttach(spec));
    } catch (error) {
      return this.undo(spec, error);
    }
  }

  detach(hostIf: string, route?: HostRoute): Promise<boolean> {
    return this.limit(() => this.addon().podDetach(hostIf, route));
  }

  /** The steps stop at the first failure: removing the veth and the route undoes whatever was done. */
  private async undo(spec: PodLinkSpec, error: unknown): Promise<never> {
    await this.detach(spec.hostIf, { address: spec.address, bridge: spec.bridge }).catch(() => undefined);
    throw error;
  }
}

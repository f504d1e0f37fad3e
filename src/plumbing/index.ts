/**
 * The node plumbing the agent needs around its TUN device, acting on the network namespace the
 * agent process runs in. Every step checks the current state first, so setting up over an
 * existing setup (an agent restart) succeeds and changes nothing.
 */
import { parseIpv4Network } from '../util/ipv4.js';
import { canonicalCidr, parseIpv4Cidr } from './cidr.js';
import { deleteLink, ensureBridge, ensureLinkSettings, getLink } from './link.js';
import { MAX_MTU, MIN_OVERLAY_MTU } from './mtu.js';
import { removeRoute, syncDeviceRoutes } from './route.js';
import { enableIpForwarding, setRpFilter } from './sysctl.js';

export type { Ipv4Cidr } from './cidr.js';
export { canonicalCidr, hostAddress, parseIpv4Cidr } from './cidr.js';
export type { IpAddress, IpLink, IpRoute } from './ipjson.js';
export type { BridgeSpec, LinkSettings } from './link.js';
export { deleteLink, ensureBridge, ensureLinkSettings, getLink, listLinks } from './link.js';
export { findInterfaceWithAddress, overlayMtu, underlayMtuOf, VXLAN_GPE_OVERHEAD } from './mtu.js';
export type { RouteSpec, RouteSyncPlan } from './route.js';
export { ensureRoute, listDeviceRoutes, removeRoute, syncDeviceRoutes } from './route.js';
export type { RpFilterMode } from './sysctl.js';
export { enableIpForwarding, ipForwardingEnabled, readRpFilter, readSysctl, setRpFilter } from './sysctl.js';

export interface NodePlumbingConfig {
  /** Bridge the pods' veths attach to, `weave`. */
  bridge: string;
  /** The node's gateway address on the bridge, with the node's pod prefix, e.g. 10.32.1.1/24. */
  gatewayCidr: string;
  /** The agent's TUN device; it must exist (the agent creates it). */
  tunName: string;
  /** The whole pod range, routed into the TUN, e.g. 10.32.0.0/12. */
  clusterCidr: string;
  /** Pod MTU: underlay MTU minus encapsulation, for bridge and TUN. */
  mtu: number;
  /** TUN queue length; the default 500 drops bursts (about 10000 is needed, see the baselines). */
  txqueuelen: number;
}

export function validateNodePlumbingConfig(config: NodePlumbingConfig): void {
  const gateway = parseIpv4Cidr(config.gatewayCidr);
  const cluster = parseIpv4Cidr(config.clusterCidr);
  if (!config.gatewayCidr.includes('/') || gateway.prefixLength > 30) {
    throw new RangeError(
      `gateway ${config.gatewayCidr} needs the pod prefix length (at most /30), e.g. 10.32.1.1/24`,
    );
  }
  if (`${gateway.address}/${gateway.prefixLength}` === gateway.network) {
    throw new RangeError(`gateway ${config.gatewayCidr} is the network address of its prefix`);
  }
  parseIpv4Network(config.clusterCidr); // throws if host bits are set, naming the network meant
  if (
    gateway.prefixLength < cluster.prefixLength ||
    canonicalCidr(`${gateway.address}/${cluster.prefixLength}`) !== cluster.network
  ) {
    throw new RangeError(
      `gateway ${config.gatewayCidr} is not inside the cluster range ${config.clusterCidr}`,
    );
  }
  if (!Number.isInteger(config.mtu) || config.mtu < MIN_OVERLAY_MTU || config.mtu > MAX_MTU) {
    throw new RangeError(`MTU ${config.mtu} is outside ${MIN_OVERLAY_MTU}..${MAX_MTU}`);
  }
  if (!Number.isInteger(config.txqueuelen) || config.txqueuelen < 1) {
    throw new RangeError(`txqueuelen ${config.txqueuelen} must be a positive integer`);
  }
}

export class NodePlumbing {
  private config: NodePlumbingConfig | undefined;

  /**
   * Bridge with the gateway, forwarding, TUN settings, rp_filter and the cluster route. The local
   * pod prefix stays on the bridge: its connected route is more specific than the cluster route.
   */
  async setUp(config: NodePlumbingConfig): Promise<void> {
    validateNodePlumbingConfig(config);
    if ((await getLink(config.tunName)) === undefined)
      throw new Error(`TUN device ${config.tunName} does not exist`);
    this.config = config;
    await enableIpForwarding();
    await ensureBridge({ name: config.bridge, mtu: config.mtu, gatewayCidr: config.gatewayCidr });
    await ensureLinkSettings(config.tunName, { mtu: config.mtu, txqueuelen: config.txqueuelen, up: true });
    await setRpFilter(config.tunName, 2);
    // The TUN has no address of its own. With the gateway as source, traffic the node itself sends
    // into the overlay carries an overlay address, so replies come back through the overlay.
    await syncDeviceRoutes(config.tunName, [
      { cidr: config.clusterCidr, src: parseIpv4Cidr(config.gatewayCidr).address },
    ]);
  }

  /**
   * Removes the cluster route and the bridge (with its address and connected route). The TUN
   * belongs to the agent, and ip_forward stays on because other software on the node may rely on
   * it. `config` is for a process that did not call setUp itself (cleanup after a crash).
   */
  async tearDown(config: NodePlumbingConfig | undefined = this.config): Promise<void> {
    if (config === undefined) return;
    if ((await getLink(config.tunName)) !== undefined) await removeRoute(config.clusterCidr, config.tunName);
    await deleteLink(config.bridge);
    this.config = undefined;
  }
}

/** MTUs of the overlay: what the underlay allows and what is left for pods after encapsulation. */
import { run } from '../util/exec.js';
import { type IpAddress, parseAddresses } from './ipjson.js';

/** Outer IPv4 header (20, no options) + UDP (8) + VXLAN-GPE header (8); the inner packet is raw IP. */
export const VXLAN_GPE_OVERHEAD = 36;
/** Every IPv4 host must accept 576-byte datagrams (RFC 791); a smaller pod MTU breaks ordinary stacks. */
export const MIN_OVERLAY_MTU = 576;
/** The largest IPv4 datagram. */
export const MAX_MTU = 65535;

/** The MTU pods get when their packets travel VXLAN-GPE-encapsulated over `underlayMtu`. */
export function overlayMtu(underlayMtu: number): number {
  if (!Number.isInteger(underlayMtu) || underlayMtu > MAX_MTU) {
    throw new RangeError(`underlay MTU ${underlayMtu} is not an integer up to ${MAX_MTU}`);
  }
  const mtu = underlayMtu - VXLAN_GPE_OVERHEAD;
  if (mtu < MIN_OVERLAY_MTU) {
    throw new RangeError(
      `underlay MTU ${underlayMtu} leaves ${mtu} bytes after ${VXLAN_GPE_OVERHEAD} bytes of VXLAN-GPE ` +
        `encapsulation; pods need at least ${MIN_OVERLAY_MTU}, so the underlay needs at least ` +
        `${MIN_OVERLAY_MTU + VXLAN_GPE_OVERHEAD}`,
    );
  }
  return mtu;
}

/** The interface holding `address` and its MTU, from parsed `ip -json addr` output. */
export function findInterfaceWithAddress(
  addresses: readonly IpAddress[],
  address: string,
): { ifname: string; mtu: number } {
  const found = addresses.find((a) => a.family === 'inet' && a.local === address);
  if (found === undefined) throw new Error(`no interface holds the IPv4 address ${address}`);
  return { ifname: found.ifname, mtu: found.mtu };
}

/** The MTU of the interface in this namespace that holds the node's underlay address. */
export async function underlayMtuOf(address: string): Promise<{ ifname: string; mtu: number }> {
  const { stdout } = await run(['ip', '-json', 'addr', 'show']);
  return findInterfaceWithAddress(parseAddresses(stdout), address);
}

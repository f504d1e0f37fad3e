import { acceptsPartialChecksums } from '../dataplane/features.js';
import type { PeerRoute, RouteTableSpec } from '../dataplane/route-table.js';
import { cidrInterval } from '../ipam/address.js';
import { ownedRanges, parseAddress, parseCidr, type Ring } from '../ipam/index.js';

/** What the data plane needs to know about a peer from the topology. */
export interface PeerAddress {
  name: string;
  underlayAddress: string;
  dataPort: number;
  /** Data-plane features the peer announced. */
  features?: readonly string[];
}

export interface DerivedRoutes {
  spec: RouteTableSpec;
  /** Owners of ranges whose underlay address is not known yet: their pods are unreachable for now. */
  unroutable: string[];
}

/**
 * The data plane's route table from the IPAM ring (who owns what) and the topology (where each
 * owner is). A pure function, so that every ring or topology change yields a fresh table that
 * replaces the old one whole.
 */
export function deriveRoutes(self: string, ring: Ring | null, peers: readonly PeerAddress[]): DerivedRoutes {
  if (ring === null) return { spec: { localCidrs: [], peers: [] }, unroutable: [] };
  const where = new Map(peers.map((p) => [p.name, p]));
  const routes: PeerRoute[] = [];
  const unroutable: string[] = [];
  let localCidrs: string[] = [];
  for (const { peer, cidrs } of ownedRanges(ring)) {
    if (peer === self) {
      localCidrs = cidrs;
      continue;
    }
    const address = where.get(peer);
    if (!address) {
      unroutable.push(peer);
      continue;
    }
    routes.push({
      name: peer,
      underlayAddress: address.underlayAddress,
      port: address.dataPort,
      cidrs,
      partialChecksums: acceptsPartialChecksums(address.features),
    });
  }
  return { spec: { localCidrs, peers: routes }, unroutable };
}

export interface BridgeLayout {
  /** The bridge's address: the gateway with the prefix of the owned block that holds it. */
  gatewayCidr: string;
  /** This node's other blocks, routed to the bridge explicitly. */
  extraCidrs: string[];
}

/** Where the gateway sits among this node's blocks; undefined until the node owns space. */
export function bridgeLayout(
  localCidrs: readonly string[],
  gateway: string | undefined,
): BridgeLayout | undefined {
  if (gateway === undefined) return undefined;
  const address = parseAddress(gateway);
  const home = localCidrs.find((cidr) => {
    const range = cidrInterval(parseCidr(cidr));
    return address >= range.start && address < range.end;
  });
  if (home === undefined) return undefined;
  return {
    gatewayCidr: `${gateway}/${home.split('/')[1]}`,
    extraCidrs: localCidrs.filter((cidr) => cidr !== home),
  };
}

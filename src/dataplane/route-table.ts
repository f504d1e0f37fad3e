import { ipv4ToUint32, isIpv4, parseIpv4Network } from '../util/ipv4.js';

/** One remote node as the data plane sees it: where to send, and which pod addresses it owns. */
export interface PeerRoute {
  name: string;
  /** The peer's underlay IPv4 address: where its encapsulated traffic comes from and goes to. */
  underlayAddress: string;
  /** The peer's data-plane UDP port. */
  port: number;
  /** Pod address ranges owned by this peer (IPv4 CIDRs). */
  cidrs: string[];
  /** The peer completes inner checksums we leave partial (it announced the 'partial-csum' feature). */
  partialChecksums?: boolean;
}

export interface RouteTableSpec {
  /** Pod address ranges served by this node's own bridge. */
  localCidrs: string[];
  peers: PeerRoute[];
}

/** {@link RouteTable.lookup} result for addresses served by this node. */
export const LOCAL = -2;
/** {@link RouteTable.lookup} result for addresses nobody owns. */
export const NO_OWNER = -1;

/** Per-peer traffic counter slots, four per peer in {@link RouteTable.peerStats}. */
export const PeerStat = { TxPackets: 0, TxBytes: 1, RxPackets: 2, RxBytes: 3 } as const;
const PEER_STAT_SLOTS = 4;

export class RouteTableError extends Error {
  override name = 'RouteTableError';
}

interface Interval {
  start: number;
  end: number;
  owner: number;
  cidr: string;
}

/**
 * An immutable snapshot mapping pod addresses to their owner. The control plane builds a new
 * table and swaps it in whole; the forwarder reads whichever table is current, so a lookup never
 * sees a half-applied update.
 *
 * Ranges are kept as sorted, non-overlapping intervals, so a lookup is a binary search: O(log n)
 * in the number of ranges, with no allocation. The same lookup serves both directions: on send it
 * picks the destination's peer, on receive it checks that the inner source belongs to the sender.
 */
export class RouteTable {
  readonly peerNames: readonly string[];
  readonly peerAddrs: Uint32Array;
  readonly peerPorts: Uint16Array;
  /** 1 for peers that take partial inner checksums ({@link PeerRoute.partialChecksums}). */
  readonly peerPartial: Uint8Array;
  /** Traffic counters per peer index, {@link PeerStat} slots each. Carried over by name on replacement. */
  readonly peerStats: Float64Array;
  private readonly starts: Uint32Array;
  private readonly ends: Uint32Array;
  private readonly owners: Int32Array;
  private readonly senderIndex: Map<number, number>;

  private constructor(
    readonly spec: RouteTableSpec,
    intervals: Interval[],
  ) {
    const peers = spec.peers;
    this.peerNames = peers.map((p) => p.name);
    this.peerAddrs = Uint32Array.from(peers, (p) => ipv4ToUint32(p.underlayAddress));
    this.peerPorts = Uint16Array.from(peers, (p) => p.port);
    this.peerPartial = Uint8Array.from(peers, (p) => (p.partialChecksums === true ? 1 : 0));
    this.peerStats = new Float64Array(peers.length * PEER_STAT_SLOTS);
    this.starts = Uint32Array.from(intervals, (r) => r.start);
    this.ends = Uint32Array.from(intervals, (r) => r.end);
    this.owners = Int32Array.from(intervals, (r) => r.owner);
    this.senderIndex = new Map(Array.from(this.peerAddrs, (addr, i) => [addr, i]));
  }

  static empty(): RouteTable {
    return RouteTable.build({ localCidrs: [], peers: [] });
  }

  /** Validates the spec (CIDRs, no overlapping ranges, unique peers) and builds the lookup arrays. */
  static build(spec: RouteTableSpec): RouteTable {
    const intervals: Interval[] = [];
    for (const cidr of spec.localCidrs) intervals.push({ ...parseCidr(cidr), owner: LOCAL, cidr });
    const names = new Set<string>();
    const addresses = new Set<string>();
    spec.peers.forEach((peer, index) => {
      if (names.has(peer.name)) throw new RouteTableError(`peer ${peer.name} is listed twice`);
      if (addresses.has(peer.underlayAddress)) {
        throw new RouteTableError(`underlay address ${peer.underlayAddress} is used by two peers`);
      }
      if (!Number.isInteger(peer.port) || peer.port < 1 || peer.port > 65535) {
        throw new RouteTableError(`peer ${peer.name}: port ${peer.port} is not a UDP port`);
      }
      names.add(peer.name);
      addresses.add(peer.underlayAddress);
      if (!isIpv4(peer.underlayAddress)) {
        throw new RouteTableError(`peer ${peer.name}: underlay address ${peer.underlayAddress} is not IPv4`);
      }
      for (const cidr of peer.cidrs) intervals.push({ ...parseCidr(cidr), owner: index, cidr });
    });
    intervals.sort((a, b) => a.start - b.start);
    for (let i = 1; i < intervals.length; i++) {
      const prev = intervals[i - 1] as Interval;
      const cur = intervals[i] as Interval;
      if (cur.start <= prev.end) {
        throw new RouteTableError(
          `${cur.cidr} (${ownerName(spec, cur.owner)}) overlaps ${prev.cidr} (${ownerName(spec, prev.owner)})`,
        );
      }
    }
    return new RouteTable(spec, intervals);
  }

  /**
   * A new table for `spec` that keeps this table's per-peer counters for peers that are still
   * present (matched by name), so replacing the table does not reset statistics.
   */
  replace(spec: RouteTableSpec): RouteTable {
    const next = RouteTable.build(spec);
    next.peerNames.forEach((name, j) => {
      const i = this.peerNames.indexOf(name);
      if (i < 0) return;
      next.peerStats.set(
        this.peerStats.subarray(i * PEER_STAT_SLOTS, (i + 1) * PEER_STAT_SLOTS),
        j * PEER_STAT_SLOTS,
      );
    });
    return next;
  }

  /** Owner of an IPv4 address (unsigned 32-bit): a peer index, {@link LOCAL} or {@link NO_OWNER}. */
  lookup(address: number): number {
    const starts = this.starts;
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((starts[mid] as number) <= address) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0 || address > (this.ends[found] as number)) return NO_OWNER;
    return this.owners[found] as number;
  }

  /** Peer index of the node whose underlay address is `address`, or {@link NO_OWNER}. */
  peerBySender(address: number): number {
    return this.senderIndex.get(address) ?? NO_OWNER;
  }

  get peerCount(): number {
    return this.peerNames.length;
  }

  countTx(peer: number, bytes: number, packets = 1): void {
    const base = peer * PEER_STAT_SLOTS;
    addTo(this.peerStats, base + PeerStat.TxPackets, packets);
    addTo(this.peerStats, base + PeerStat.TxBytes, bytes);
  }

  countRx(peer: number, bytes: number): void {
    const base = peer * PEER_STAT_SLOTS;
    addTo(this.peerStats, base + PeerStat.RxPackets, 1);
    addTo(this.peerStats, base + PeerStat.RxBytes, bytes);
  }

  peerTraffic(peer: number): { txPackets: number; txBytes: number; rxPackets: number; rxBytes: number } {
    const s = this.peerStats;
    const base = peer * PEER_STAT_SLOTS;
    return {
      txPackets: s[base + PeerStat.TxPackets] as number,
      txBytes: s[base + PeerStat.TxBytes] as number,
      rxPackets: s[base + PeerStat.RxPackets] as number,
      rxBytes: s[base + PeerStat.RxBytes] as number,
    };
  }
}

function addTo(values: Float64Array, index: number, amount: number): void {
  values[index] = (values[index] as number) + amount;
}

function parseCidr(cidr: string): { start: number; end: number } {
  try {
    const { start, prefix } = parseIpv4Network(cidr);
    return { start, end: start + 2 ** (32 - prefix) - 1 };
  } catch (error) {
    throw new RouteTableError((error as Error).message);
  }
}

function ownerName(spec: RouteTableSpec, owner: number): string {
  return owner === LOCAL ? 'this node' : `peer ${spec.peers[owner]?.name}`;
}

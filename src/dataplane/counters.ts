/** Why the data plane dropped a packet. Every drop is counted under exactly one reason. */
export const DropReason = {
  /** Receive: not a valid VXLAN-GPE datagram, or the inner IP packet is damaged or truncated. */
  Malformed: 0,
  /** Receive: a valid datagram for another VNI. */
  WrongVni: 1,
  /** Receive: the sender's underlay address is not a known peer. */
  UnknownSender: 2,
  /** Receive: the inner source address is not in the sending peer's ranges. */
  SpoofedSource: 3,
  /** Send: no peer owns the destination; receive: the destination is not served by this node. */
  NoRoute: 4,
  /** Receive: the inner packet's TTL / hop limit is exhausted. */
  TtlExpired: 5,
  /** Send: the inner packet exceeds the overlay MTU; receive: the datagram exceeds the receive slot. */
  Oversize: 6,
  /** Send: the UDP socket refused the datagram (buffer full, peer unreachable). */
  SendFailed: 7,
  /** Receive: the TUN device refused the packet (queue full). */
  TunWriteFailed: 8,
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

export type DropReasonName =
  | 'malformed'
  | 'wrong_vni'
  | 'unknown_sender'
  | 'spoofed_source'
  | 'no_route'
  | 'ttl_expired'
  | 'oversize'
  | 'send_failed'
  | 'tun_write_failed';

export const dropReasonNames: Record<DropReason, DropReasonName> = {
  [DropReason.Malformed]: 'malformed',
  [DropReason.WrongVni]: 'wrong_vni',
  [DropReason.UnknownSender]: 'unknown_sender',
  [DropReason.SpoofedSource]: 'spoofed_source',
  [DropReason.NoRoute]: 'no_route',
  [DropReason.TtlExpired]: 'ttl_expired',
  [DropReason.Oversize]: 'oversize',
  [DropReason.SendFailed]: 'send_failed',
  [DropReason.TunWriteFailed]: 'tun_write_failed',
};

const DROP_REASON_COUNT = Object.keys(dropReasonNames).length;

const Slot = {
  /** Inner packets read from the TUN and sent encapsulated. */
  EncapPackets: 0,
  EncapBytes: 1,
  /** Inner packets received encapsulated and written to the TUN. */
  DecapPackets: 2,
  DecapBytes: 3,
  /** Read batches from the TUN and from the socket, to see how well batching works. */
  TunReadBatches: 4,
  UdpRecvBatches: 5,
  DropBase: 6,
} as const;

const COUNTER_SLOTS = Slot.DropBase + DROP_REASON_COUNT;

export interface CounterSnapshot {
  encapsulated: { packets: number; bytes: number };
  decapsulated: { packets: number; bytes: number };
  batches: { tunReads: number; udpReceives: number };
  dropped: Record<DropReasonName, number>;
  droppedTotal: number;
}

/** Data-plane totals in one Float64Array; the forwarder is the single writer. */
export class DataplaneCounters {
  readonly values: Float64Array;

  constructor() {
    this.values = new Float64Array(COUNTER_SLOTS);
  }

  encapsulated(packets: number, bytes: number): void {
    this.add(Slot.EncapPackets, packets);
    this.add(Slot.EncapBytes, bytes);
  }

  decapsulated(packets: number, bytes: number): void {
    this.add(Slot.DecapPackets, packets);
    this.add(Slot.DecapBytes, bytes);
  }

  tunReadBatch(): void {
    this.add(Slot.TunReadBatches, 1);
  }

  udpRecvBatch(): void {
    this.add(Slot.UdpRecvBatches, 1);
  }

  drop(reason: DropReason, packets = 1): void {
    this.add(Slot.DropBase + reason, packets);
  }

  dropped(reason: DropReason): number {
    return this.values[Slot.DropBase + reason] as number;
  }

  snapshot(): CounterSnapshot {
    const v = this.values;
    const dropped = {} as Record<DropReasonName, number>;
    let droppedTotal = 0;
    for (const [reason, name] of Object.entries(dropReasonNames)) {
      const count = v[Slot.DropBase + Number(reason)] as number;
      dropped[name] = count;
      droppedTotal += count;
    }
    return {
      encapsulated: { packets: v[Slot.EncapPackets] as number, bytes: v[Slot.EncapBytes] as number },
      decapsulated: { packets: v[Slot.DecapPackets] as number, bytes: v[Slot.DecapBytes] as number },
      batches: { tunReads: v[Slot.TunReadBatches] as number, udpReceives: v[Slot.UdpRecvBatches] as number },
      dropped,
      droppedTotal,
    };
  }

  private add(slot: number, amount: number): void {
    this.values[slot] = (this.values[slot] as number) + amount;
  }
}

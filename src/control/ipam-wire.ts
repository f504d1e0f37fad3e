import {
  BROADCAST,
  IPAM_PROTOCOL_VERSION,
  type IpamMessage,
  type Outbound,
  parseIpamMessage,
} from '../ipam/index.js';

/**
 * IPAM on the wire (protocol v2): a message for particular peers carries their names in `to`. The driver
 * (ipam-driver.ts) sends it as a libp2p request/response exchange to each recipient when they are few and
 * all directly connected (a space request always goes to its donor that way); otherwise it is a gossip
 * broadcast on the IPAM channel, which peers not named in `to` drop unread. Requests to peers without a
 * connection needed a new connection each, which took seconds under a boot storm and made Paxos rounds
 * time out; the broadcast reuses the mesh every node already has. IPAM's safety never depended on
 * delivery, only on saving first.
 */

/** Upper bound on `to`: a Paxos prepare goes to every known peer at once. */
export const MAX_RECIPIENTS = 4096;
const MAX_PEER_NAME = 256;

export interface Packet {
  /** Recipients, or null for everyone. */
  readonly to: readonly string[] | null;
  readonly type: IpamMessage['type'];
  readonly payload: Uint8Array;
}

export type Unpacked =
  | { readonly kind: 'message'; readonly message: IpamMessage }
  /** Addressed to other peers. */
  | { readonly kind: 'elsewhere' }
  | { readonly kind: 'invalid'; readonly error: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * One packet per distinct message, in the order the messages were first queued: the same message to
 * several peers (Paxos prepare and accept) travels once, and a broadcast covers any copy addressed
 * to a single peer.
 */
export function packOutbox(outbox: readonly Outbound[]): Packet[] {
  const byContent = new Map<string, { message: IpamMessage; to: Set<string> | null }>();
  for (const { to, message } of outbox) {
    const key = JSON.stringify(message);
    const group = byContent.get(key);
    if (group === undefined) byContent.set(key, { message, to: to === BROADCAST ? null : new Set([to]) });
    else if (to === BROADCAST) group.to = null;
    else group.to?.add(to);
  }
  const packets: Packet[] = [];
  for (const { message, to } of byContent.values()) {
    if (to === null) {
      packets.push({ to: null, type: message.type, payload: encode(message) });
      continue;
    }
    const names = [...to];
    for (let i = 0; i < names.length; i += MAX_RECIPIENTS) {
      const chunk = names.slice(i, i + MAX_RECIPIENTS);
      packets.push({ to: chunk, type: message.type, payload: encode({ ...message, to: chunk }) });
    }
  }
  return packets;
}

/** Decodes a packet received by `self`; messages for other peers are not validated. */
export function unpack(payload: Uint8Array, self: string): Unpacked {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(payload));
  } catch {
    return { kind: 'invalid', error: 'not JSON' };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { kind: 'invalid', error: 'not a JSON object' };
  }
  const { to, ...message } = json as Record<string, unknown>;
  if (typeof message.v === 'number' && message.v !== IPAM_PROTOCOL_VERSION) {
    return {
      kind: 'invalid',
      error: `speaks IPAM protocol v${message.v}, this agent v${IPAM_PROTOCOL_VERSION}: run one agent version cluster-wide`,
    };
  }
  if (to !== undefined) {
    if (!isRecipientList(to)) return { kind: 'invalid', error: '`to` is not a list of peer names' };
    if (!to.includes(self)) return { kind: 'elsewhere' };
  }
  const parsed = parseIpamMessage(message);
  return parsed.ok ? { kind: 'message', message: parsed.message } : { kind: 'invalid', error: parsed.error };
}

function isRecipientList(value: unknown): value is string[] {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.length <= MAX_RECIPIENTS &&
    value.every((name) => typeof name === 'string' && name.length > 0 && name.length <= MAX_PEER_NAME)
  );
}

function encode(value: object): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

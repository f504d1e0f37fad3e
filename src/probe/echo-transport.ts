/** What one ICMP echo with the don't-fragment bit set came back as. */
export type EchoOutcome =
  | { kind: 'reply'; rttMs: number }
  | { kind: 'timeout' }
  /** Too big for the path: refused locally (EMSGSIZE) or a router's "fragmentation needed". */
  | { kind: 'too-big'; nextHopMtu: number | null }
  | { kind: 'error'; message: string };

/**
 * Sends ICMP echo requests of an exact IPv4 size with DF set. The raw-socket implementation needs
 * root; unit tests use the fake in `fake/fake-echo.ts`.
 */
export interface EchoTransport {
  /** `totalSize`: the whole IPv4 packet in bytes (20 header + 8 ICMP + payload). */
  echo(address: string, totalSize: number, timeoutMs: number): Promise<EchoOutcome>;
  close(): void;
}

/** IPv4 header (20) + ICMP echo header (8). */
export const ECHO_OVERHEAD = 28;
/** Smallest probe: the header plus 56 bytes of payload, as ping(8) sends. */
export const SMALL_ECHO_SIZE = ECHO_OVERHEAD + 56;

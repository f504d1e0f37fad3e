import type { EchoOutcome, EchoTransport } from '../echo-transport.js';

export interface FakePath {
  /** Largest packet that gets through; larger ones meet `tooBig`. */
  mtu: number;
  rttMs: number;
  /** How an oversize probe ends: a router's answer (with or without the next-hop MTU) or silence. */
  tooBig: 'frag-needed' | 'frag-needed-no-mtu' | 'silent';
}

/** An in-memory network of paths for unit tests; unknown addresses time out. */
export class FakeEchoTransport implements EchoTransport {
  readonly paths = new Map<string, FakePath>();
  readonly sent: Array<{ address: string; totalSize: number }> = [];
  closed = false;

  async echo(address: string, totalSize: number): Promise<EchoOutcome> {
    this.sent.push({ address, totalSize });
    const path = this.paths.get(address);
    if (!path) return { kind: 'timeout' };
    if (totalSize <= path.mtu) return { kind: 'reply', rttMs: path.rttMs };
    if (path.tooBig === 'silent') return { kind: 'timeout' };
    return { kind: 'too-big', nextHopMtu: path.tooBig === 'frag-needed' ? path.mtu : null };
  }

  close(): void {
    this.closed = true;
  }
}

import { randomInt } from 'node:crypto';
import raw from 'raw-socket';
import type { EchoOutcome, EchoTransport } from './echo-transport.js';
import { buildEchoRequest, parseIcmpAnswer } from './icmp.js';

const IPPROTO_IP = 0;
const IP_MTU_DISCOVER = 10;
/** Set DF and ignore the cached path MTU, so the probe measures the path itself. */
const IP_PMTUDISC_PROBE = 3;

interface Pending {
  address: string;
  sentAt: bigint;
  resolve: (outcome: EchoOutcome) => void;
  timer: NodeJS.Timeout;
}

/**
 * ICMP echo over a raw IPv4 socket (needs root or CAP_NET_RAW). One socket serves every probe;
 * answers are matched by this socket's random echo identifier, the sequence number and the probed
 * address (another host echoing our id and sequence back is not the peer answering).
 */
export class RawEchoTransport implements EchoTransport {
  private readonly socket: raw.Socket;
  private readonly id = randomInt(0, 0x10000);
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  constructor() {
    this.socket = raw.createSocket({ protocol: raw.Protocol.ICMP, bufferSize: 65_536 });
    this.socket.setOption(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
    this.socket.on('message', (packet: Buffer) => this.receive(packet));
    this.socket.on('error', () => undefined);
  }

  echo(address: string, totalSize: number, timeoutMs: number): Promise<EchoOutcome> {
    const seq = this.nextSeq();
    const packet = buildEchoRequest(this.id, seq, totalSize - 20);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.finish(seq, { kind: 'timeout' }), timeoutMs);
      this.pending.set(seq, { address, sentAt: process.hrtime.bigint(), resolve, timer });
      this.socket.send(packet, 0, packet.length, address, (error: Error | null) => {
        if (!error) return;
        const tooBig = /message too long|EMSGSIZE/i.test(error.message);
        this.finish(
          seq,
          tooBig ? { kind: 'too-big', nextHopMtu: null } : { kind: 'error', message: error.message },
        );
      });
    });
  }

  close(): void {
    for (const seq of [...this.pending.keys()]) this.finish(seq, { kind: 'error', message: 'prober closed' });
    this.socket.close();
  }

  private receive(packet: Buffer): void {
    const answer = parseIcmpAnswer(packet);
    if (answer === undefined || answer.id !== this.id) return;
    const pending = this.pending.get(answer.seq);
    if (!pending || answer.peer !== pending.address) return;
    switch (answer.kind) {
      case 'echo-reply':
        this.finish(answer.seq, {
          kind: 'reply',
          rttMs: Number(process.hrtime.bigint() - pending.sentAt) / 1e6,
        });
        return;
      case 'frag-needed':
        this.finish(answer.seq, { kind: 'too-big', nextHopMtu: answer.nextHopMtu });
        return;
      case 'unreachable':
        this.finish(answer.seq, { kind: 'error', message: `destination unreachable (code ${answer.code})` });
    }
  }

  private finish(seq: number, outcome: EchoOutcome): void {
    const pending = this.pending.get(seq);
    if (!pending) return;
    this.pending.delete(seq);
    clearTimeout(pending.timer);
    pending.resolve(outcome);
  }

  private nextSeq(): number {
    for (;;) {
      this.seq = (this.seq + 1) & 0xffff;
      if (!this.pending.has(this.seq)) return this.seq;
    }
  }
}

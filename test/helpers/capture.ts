/** Packet captures with tcpdump inside a test's namespaces, parsed without extra dependencies. */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { NetnsGroup } from './netns.js';

export interface UdpPacket {
  /** Source IPv4 address, dotted. */
  source: string;
  dstPort: number;
  payload: Buffer;
}

/** Starts tcpdump writing pcap to stdout and resolves once it is capturing; the pcap arrives when it exits. */
export async function startCapture(
  group: NetnsGroup,
  ns: string,
  argv: string[],
): Promise<{ child: ChildProcess; pcap: Promise<Buffer> }> {
  const child = group.spawn(ns, ['tcpdump', '-U', '-w', '-', ...argv]);
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
  const pcap = once(child, 'exit').then(() => Buffer.concat(chunks));
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`tcpdump exited (${code}): ${stderr}`)));
  });
  return { child, pcap };
}

/** Every IPv4/UDP packet of a pcap stream (Ethernet link type), in order; other packets are skipped. */
export function udpPackets(pcap: Buffer): UdpPacket[] {
  const magic = pcap.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d)
    throw new Error(`not a little-endian pcap: ${magic.toString(16)}`);
  if (pcap.readUInt32LE(20) !== 1) throw new Error('not an Ethernet capture');
  const packets: UdpPacket[] = [];
  for (let at = 24; at + 16 <= pcap.length; ) {
    const capturedLength = pcap.readUInt32LE(at + 8);
    const frame = pcap.subarray(at + 16, at + 16 + capturedLength);
    at += 16 + capturedLength;
    if (frame.length < 14 + 28 || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    if (ip[9] !== 17) continue;
    const udp = ip.subarray(((ip[0] as number) & 0x0f) * 4);
    packets.push({
      source: [...ip.subarray(12, 16)].join('.'),
      dstPort: udp.readUInt16BE(2),
      payload: udp.subarray(8),
    });
  }
  return packets;
}

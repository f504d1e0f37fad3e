import type { NetnsGroup } from '../../helpers/netns.js';
import type { TopologyPod } from '../../helpers/topology.js';

const PORT = 7777;
const LISTEN_MS = 4000;

/** Receives for LISTEN_MS and prints how many datagrams were intact (content derived from their number) and how many not. */
const RECEIVER = `
const size = Number(process.argv[1]);
const s = require('node:dgram').createSocket('udp4');
let ok = 0, bad = 0;
s.on('message', (m) => {
  const n = m.length >= 4 ? m.readUInt32BE(0) : 0;
  let good = m.length === size;
  for (let i = 4; good && i < m.length; i++) if (m[i] !== ((n + i) & 255)) good = false;
  if (good) ok++; else bad++;
});
s.bind(${PORT}, () => { s.setRecvBufferSize(8 << 20); console.log('ready'); });
setTimeout(() => { console.log(JSON.stringify({ ok, bad })); process.exit(0); }, ${LISTEN_MS});
`;

/** Sends count datagrams of size bytes in bursts of 100, back to back, to argv[1]. */
const SENDER = `
const [to, count, size] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const s = require('node:dgram').createSocket('udp4');
let n = 0;
const burst = () => {
  for (let k = 0; k < 100 && n < count; k++, n++) {
    const b = Buffer.alloc(size);
    b.writeUInt32BE(n, 0);
    for (let i = 4; i < size; i++) b[i] = (n + i) & 255;
    s.send(b, ${PORT}, to);
  }
  if (n < count) setTimeout(burst, 2); else setTimeout(() => s.close(), 100);
};
burst();
`;

export interface BurstResult {
  /** Datagrams received whole and with the right bytes. */
  ok: number;
  /** Datagrams received damaged (wrong size or bytes). */
  bad: number;
}

/**
 * Sends `count` numbered UDP datagrams of `size` bytes from one pod to another in back-to-back
 * bursts (so the data plane sees runs of same-size datagrams of one flow) and reports what arrived.
 */
export async function udpBurst(
  group: NetnsGroup,
  from: TopologyPod,
  to: TopologyPod,
  count: number,
  size: number,
): Promise<BurstResult> {
  const receiver = group.spawn(to.shortName, [process.execPath, '-e', RECEIVER, String(size)]);
  let output = '';
  receiver.stderr?.resume();
  receiver.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => receiver.once('exit', resolve));
  while (!output.includes('ready')) {
    if (receiver.exitCode !== null) throw new Error(`UDP receiver exited with ${receiver.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await group.exec(from.shortName, [process.execPath, '-e', SENDER, to.ip, String(count), String(size)]);
  await exited;
  const last = output.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as BurstResult;
}

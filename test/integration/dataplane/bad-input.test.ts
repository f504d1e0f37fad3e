import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AgentProcess, startAgentOn } from '../../helpers/agent.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { gpeDatagram, ipv4Packet } from '../../helpers/packets.js';
import { describeAsRoot } from '../../helpers/privileges.js';
import { buildTwoNodeTopology, type TwoNodeTopology } from '../../helpers/topology.js';

const DATAGRAMS = 120_000;
/** An extra address on node 2's underlay that is no peer of node 1. */
const STRANGER = '192.168.199.77';

/**
 * Sends random and mutated datagrams at the agent's data port from a known peer and from a
 * stranger. Paced in bursts; every datagram must end up counted: as a drop by reason, as a
 * (mutated but still valid) delivery, or in the kernel's own socket-buffer overflow counter.
 */
const senderScript = `
import dgram from 'node:dgram';
const [target, port, count, valid, from] = process.argv.slice(2);
const template = Buffer.from(valid, 'hex');
const socket = dgram.createSocket('udp4');
await new Promise((r) => socket.bind({ address: from, port: 0 }, r));
let seed = 42;
const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
function next(i) {
  switch (i % 4) {
    case 0: { const b = Buffer.alloc(rand() % 1600); for (let j = 0; j < b.length; j++) b[j] = rand() & 255; return b; }
    case 1: { const b = Buffer.from(template); const n = 1 + (rand() % 3); for (let k = 0; k < n; k++) b[rand() % b.length] = rand() & 255; return b; }
    case 2: { const b = Buffer.from(template); b[0] = rand() & 255; b[3] = rand() & 255; return b; }
    default: return template.subarray(0, rand() % template.length);
  }
}
let sent = 0;
while (sent < Number(count)) {
  const burst = [];
  for (let k = 0; k < 200 && sent < Number(count); k++, sent++) {
    burst.push(new Promise((r) => socket.send(next(sent), Number(port), target, r)));
  }
  await Promise.all(burst);
  await new Promise((r) => setTimeout(r, 1));
}
socket.close();
console.log(JSON.stringify({ sent }));
`;

describeAsRoot('bad input at the data port', () => {
  let group: NetnsGroup;
  let topo: TwoNodeTopology;
  let agent: AgentProcess;
  const script = join(tmpdir(), `weft-fuzz-sender-${process.pid}.mjs`);

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('bad');
    topo = await buildTwoNodeTopology(group, { podMtu: 1464 });
    await group.addAddress('n2', 'ul0', `${STRANGER}/24`);
    agent = await startAgentOn(group, topo, 0);
    await startAgentOn(group, topo, 1);
    writeFileSync(script, senderScript);
  });

  afterAll(async () => {
    await group?.destroy();
    rmSync(script, { force: true });
  });

  async function udpRcvbufErrors(): Promise<number> {
    const snmp = (await group.exec('n1', ['cat', '/proc/net/snmp'])).stdout.split('\n');
    const [names, values] = snmp.filter((l) => l.startsWith('Udp:'));
    const index = (names ?? '').split(/\s+/).indexOf('RcvbufErrors');
    return Number((values ?? '').split(/\s+/)[index]);
  }

  it(`counts ${DATAGRAMS.toLocaleString()} random and mutated datagrams as drops and keeps forwarding`, async () => {
    const [p1, p2] = topo.pods;
    const valid = gpeDatagram(ipv4Packet({ source: p2.ip, destination: p1.ip, protocol: 17 }), 1);
    const before = await agent.status();
    const overflowBefore = await udpRcvbufErrors();
    let sent = 0;
    for (const from of [topo.nodes[1].underlayIp, STRANGER]) {
      const result = await group.exec(
        'n2',
        [
          process.execPath,
          script,
          topo.nodes[0].underlayIp,
          '4790',
          String(DATAGRAMS / 2),
          valid.toString('hex'),
          from,
        ],
        { timeoutMs: 120_000 },
      );
      sent += JSON.parse(result.stdout).sent as number;
    }
    expect(sent).toBe(DATAGRAMS);
    // Let the agent drain its socket.
    await new Promise((r) => setTimeout(r, 500));

    const after = await agent.status();
    const overflow = (await udpRcvbufErrors()) - overflowBefore;
    const c0 = before.dataplane.counters;
    const c1 = after.dataplane.counters;
    const dropped = c1.droppedTotal - c0.droppedTotal;
    const delivered = c1.decapsulated.packets - c0.decapsulated.packets;
    console.log({ sent, dropped, delivered, overflow, reasons: c1.dropped });
    expect(agent.child.exitCode).toBeNull();
    expect(dropped + delivered + overflow).toBe(DATAGRAMS);
    expect(c1.dropped.unknown_sender - c0.dropped.unknown_sender).toBeGreaterThan(
      DATAGRAMS / 2 - overflow - 1,
    );
    expect(c1.dropped.malformed).toBeGreaterThan(DATAGRAMS / 4);
    expect(c1.dropped.wrong_vni).toBeGreaterThan(0);

    // Still forwarding real traffic.
    await group.exec(p1.shortName, ['ping', '-c', '2', '-W', '2', p2.ip]);
  });
});

import { z } from 'zod';
import { VXLAN_GPE_OVERHEAD } from '../../plumbing/mtu.js';
import type { StatusReport } from '../status-report.js';
import { dataplaneSchema, pathProbeSchema, STATUS_SCHEMA_VERSION } from '../status-schema.js';
import { bytes, count, labelled, millis, table } from './format.js';

export const dataplaneViewSchema = z.object({
  schemaVersion: z.literal(STATUS_SCHEMA_VERSION),
  dataplane: dataplaneSchema,
  paths: z.array(pathProbeSchema),
  /** Peers whose measured path MTU is below what a full overlay packet needs. */
  pmtuWarnings: z.array(z.string()),
});

export type DataplaneView = z.infer<typeof dataplaneViewSchema>;

export function dataplaneView(report: StatusReport): DataplaneView {
  const dp = report.dataplane;
  const needed = dp.mtu + VXLAN_GPE_OVERHEAD;
  const pmtuWarnings = dp.peers.flatMap((p) => {
    const pmtu = report.paths.find((x) => x.address === p.underlayAddress)?.pmtu;
    return pmtu != null && pmtu < needed
      ? [
          `path MTU to ${p.name} is ${pmtu} B but full overlay packets need ${needed} B: lower --mtu to ${pmtu - VXLAN_GPE_OVERHEAD}`,
        ]
      : [];
  });
  return { schemaVersion: STATUS_SCHEMA_VERSION, dataplane: dp, paths: report.paths, pmtuWarnings };
}

export function renderDataplane(view: DataplaneView): string {
  const dp = view.dataplane;
  const c = dp.counters;
  const pathOf = (address: string) => view.paths.find((p) => p.address === address);
  const total = dp.peers.reduce(
    (sum, p) => ({
      txPackets: sum.txPackets + p.txPackets,
      txBytes: sum.txBytes + p.txBytes,
      rxPackets: sum.rxPackets + p.rxPackets,
      rxBytes: sum.rxBytes + p.rxBytes,
    }),
    { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 },
  );
  const peerRows = dp.peers.map((p) => {
    const path = pathOf(p.underlayAddress);
    return [
      p.name,
      `${p.underlayAddress}:${p.port}`,
      path === undefined ? '-' : path.reachable ? millis(path.rttMs) : 'no reply',
      path?.pmtu == null ? '-' : `${path.pmtu} B`,
      count(p.txPackets),
      bytes(p.txBytes),
      count(p.rxPackets),
      bytes(p.rxBytes),
    ];
  });
  peerRows.push([
    'total',
    '',
    '',
    '',
    count(total.txPackets),
    bytes(total.txBytes),
    count(total.rxPackets),
    bytes(total.rxBytes),
  ]);
  const lines = [
    labelled([
      ['Mode', `${dp.mode}${dp.running ? '' : ' (NOT RUNNING)'}`],
      ['TUN', `${dp.tun}, MTU ${dp.mtu}`],
      ['Bridge', dp.bridge],
      ['Socket', `udp ${dp.listen}, VXLAN-GPE VNI ${dp.vni}`],
      ['Encapsulated', `${count(c.encapsulated.packets)} packets, ${bytes(c.encapsulated.bytes)}`],
      ['Decapsulated', `${count(c.decapsulated.packets)} packets, ${bytes(c.decapsulated.bytes)}`],
      ['Batches', `${count(c.batches.tunReads)} TUN reads, ${count(c.batches.udpReceives)} socket receives`],
      ['Dropped', `${count(c.droppedTotal)} packets`],
    ]),
    '',
    table(
      ['DROP REASON', 'PACKETS'],
      Object.entries(c.dropped).map(([reason, n]) => [reason, count(n)]),
    ),
    '',
    table(['PEER', 'UNDERLAY', 'ICMP RTT', 'PMTU', 'TX PKTS', 'TX BYTES', 'RX PKTS', 'RX BYTES'], peerRows),
  ];
  if (view.pmtuWarnings.length > 0) lines.push('', ...view.pmtuWarnings.map((w) => `warning: ${w}`));
  return `${lines.join('\n')}\n`;
}

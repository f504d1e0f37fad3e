import type { StatusReport } from './status-report.js';

/** `agent status` for people: aligned columns, units, this node first. */
export function renderStatus(report: StatusReport): string {
  const dp = report.dataplane;
  const c = dp.counters;
  const lines = [
    `        Version: weft ${report.version}`,
    `           Node: ${report.node.name} (${report.node.underlayAddress})`,
    `  Cluster range: ${report.clusterCidr}`,
    `     Pod ranges: ${report.node.podCidrs.join(', ')}`,
    `     Data plane: ${dp.mode}, ${dp.tun} ⇄ udp ${dp.listen}, VNI ${dp.vni}, MTU ${dp.mtu}`,
    `   Encapsulated: ${count(c.encapsulated.packets)} packets, ${bytes(c.encapsulated.bytes)}`,
    `   Decapsulated: ${count(c.decapsulated.packets)} packets, ${bytes(c.decapsulated.bytes)}`,
    `        Dropped: ${count(c.droppedTotal)} packets${dropDetail(c.dropped)}`,
    '',
    table(
      ['PEER', 'UNDERLAY', 'POD RANGES', 'TX PKTS', 'TX BYTES', 'RX PKTS', 'RX BYTES'],
      dp.peers.map((p) => [
        p.name,
        `${p.underlayAddress}:${p.port}`,
        p.cidrs.join(','),
        count(p.txPackets),
        bytes(p.txBytes),
        count(p.rxPackets),
        bytes(p.rxBytes),
      ]),
    ),
  ];
  const cp = report.controlPlane;
  if (cp) {
    const reachable = cp.peers.filter((p) => p.state === 'reachable').length;
    lines.splice(
      3,
      0,
      `        Peer ID: ${cp.peerId}`,
      `     Encryption: ${cp.encryption ? 'cluster secret (private network)' : 'off'}`,
      `          Peers: ${cp.peers.length} (${reachable} reachable, ${cp.peers.length - reachable} unreachable)`,
      `    Connections: ${connectionSummary(cp.connections)}`,
      `           IPAM: ${cp.ipam.summary}, ${plural(cp.ipam.allocations, 'pod')}, ${count(cp.ipam.freeAddresses)} addresses free`,
    );
    lines.push(
      '',
      table(
        ['NODE', 'UNDERLAY', 'STATE', 'RTT', 'ADDRESSES', 'SHARE'],
        cp.ipam.owners.map((o) => {
          const peer = cp.peers.find((p) => p.name === o.peer);
          const self = o.peer === report.node.name;
          return [
            self ? `${o.peer} (this node)` : o.peer,
            self ? report.node.underlayAddress : (peer?.underlayAddress ?? '?'),
            self ? 'self' : (peer?.state ?? (o.reachable ? 'reachable' : 'unknown')),
            peer?.rttMs == null ? '-' : `${peer.rttMs.toFixed(1)} ms`,
            count(o.addresses),
            `${o.percent.toFixed(1)} %`,
          ];
        }),
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

function connectionSummary(connections: ReadonlyArray<{ state: string }>): string {
  const byState = new Map<string, number>();
  for (const c of connections) byState.set(c.state, (byState.get(c.state) ?? 0) + 1);
  return byState.size === 0 ? 'none' : [...byState].map(([state, n]) => `${n} ${state}`).join(', ');
}

function dropDetail(dropped: Record<string, number>): string {
  const nonZero = Object.entries(dropped).filter(([, n]) => n > 0);
  return nonZero.length === 0 ? '' : ` (${nonZero.map(([reason, n]) => `${reason} ${count(n)}`).join(', ')})`;
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const format = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [format(header), ...rows.map(format)].join('\n');
}

function plural(n: number, noun: string): string {
  return `${count(n)} ${noun}${n === 1 ? '' : 's'}`;
}

export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

import type { StatusReport } from './status-report.js';
import { CONNECTION_STATES } from './status-schema.js';
import { count, labelled, plural } from './views/format.js';
import { ipamView } from './views/ipam.js';

export { bytes, count, table } from './views/format.js';

/** `agent status`: the summary a person reads first. The other views are in ./views/. */
export function renderStatus(report: StatusReport): string {
  const dp = report.dataplane;
  const c = dp.counters;
  const cp = report.controlPlane;
  const readiness = report.readiness;
  const lines: Array<[string, string]> = [
    ['Version', `weft ${report.version}`],
    ['Status', readiness.ready ? 'ready' : `NOT READY: ${readiness.reasons.join('; ')}`],
    ['Node', `${report.node.name} (${report.node.underlayAddress})`],
  ];
  if (cp) {
    const reachable = cp.peers.filter((p) => p.state === 'reachable').length;
    lines.push(
      ['Peer ID', cp.peerId],
      ['Encryption', cp.encryption ? 'cluster secret (private network)' : 'off'],
      ['Peers', `${cp.peers.length} (${reachable} reachable, ${cp.peers.length - reachable} unreachable)`],
      ['Connections', connectionSummary(cp.connections)],
      ['IPAM', cp.ipam.summary],
    );
  } else {
    lines.push(
      ['Control plane', 'none: static peers and ranges from --peers-file'],
      ['Peers', `${dp.peers.length} (static)`],
    );
  }
  const podCidrs = report.node.podCidrs.length === 0 ? 'none yet' : report.node.podCidrs.join(', ');
  lines.push(
    ['Cluster range', report.clusterCidr],
    [
      'Pod ranges',
      cp
        ? `${podCidrs} (${plural(cp.ipam.allocations, 'pod')}, ${count(cp.ipam.freeAddresses)} free)`
        : podCidrs,
    ],
    ['Data plane', `${dp.mode}${dp.running ? '' : ' (NOT RUNNING)'}`],
    ['', `${dp.tun} ⇄ udp ${dp.listen}, VNI ${dp.vni}, MTU ${dp.mtu}`],
    ['Encapsulated', `${count(c.encapsulated.packets)} packets`],
    ['Decapsulated', `${count(c.decapsulated.packets)} packets`],
    ['Dropped', `${count(c.droppedTotal)} packets${dropDetail(c.dropped)}`],
  );
  const out = [labelled(lines).replace(/^ {15}: /m, ' '.repeat(17))];
  const hint = ipamView(report).hint;
  if (hint) out.push('', hint);
  out.push('', 'More: agent status peers | connections | ipam | dataplane, agent report (JSON)');
  return `${out.join('\n')}\n`;
}

function connectionSummary(connections: ReadonlyArray<{ state: string }>): string {
  if (connections.length === 0) return '0';
  const parts = CONNECTION_STATES.map(
    (state) => [state, connections.filter((c) => c.state === state).length] as const,
  )
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${n} ${state}`);
  return `${connections.length} (${parts.join(', ')})`;
}

function dropDetail(dropped: Record<string, number>): string {
  const nonZero = Object.entries(dropped).filter(([, n]) => n > 0);
  return nonZero.length === 0 ? '' : ` (${nonZero.map(([reason, n]) => `${reason} ${count(n)}`).join(', ')})`;
}

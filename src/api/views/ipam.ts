import { z } from 'zod';
import type { StatusReport } from '../status-report.js';
import { STATUS_SCHEMA_VERSION } from '../status-schema.js';
import { addressCount, cidrList, count, percent, table } from './format.js';

export const ipamShareSchema = z.object({
  /** A node name, or null for the part of a static cluster range nobody was given. */
  peer: z.string().nullable(),
  self: z.boolean(),
  addresses: z.number(),
  percent: z.number(),
  cidrs: z.array(z.string()),
  reachable: z.boolean(),
  /** Pods with an address: known for this node only. */
  active: z.number().nullable(),
});

export const ipamViewSchema = z.object({
  schemaVersion: z.literal(STATUS_SCHEMA_VERSION),
  /** `static` in static mode; otherwise the IPAM state. */
  state: z.enum(['static', 'idle', 'awaiting-consensus', 'ready', 'out-of-space']),
  summary: z.string(),
  clusterRange: z.string(),
  totalAddresses: z.number(),
  shares: z.array(ipamShareSchema),
  unreachablePercent: z.number(),
  /** What to do about ranges held by unreachable peers, or null. */
  hint: z.string().nullable(),
});

export type IpamView = z.infer<typeof ipamViewSchema>;

/** Who owns how much of the cluster range; this node first, like `weave status ipam`. */
export function ipamView(report: StatusReport): IpamView {
  const ipam = report.controlPlane?.ipam;
  const shares = ipam ? ringShares(report) : staticShares(report);
  const total = ipam ? ipam.totalAddresses : addressCount([report.clusterCidr]);
  const unreachable = shares.filter((s) => s.peer !== null && !s.reachable);
  const unreachablePercent = unreachable.reduce((sum, s) => sum + s.percent, 0);
  return {
    schemaVersion: STATUS_SCHEMA_VERSION,
    state: ipam ? ipam.state : 'static',
    summary: ipam ? ipam.summary : 'static ranges from the peer file',
    clusterRange: ipam?.clusterRange ?? report.clusterCidr,
    totalAddresses: total,
    shares,
    unreachablePercent,
    hint:
      unreachable.length === 0
        ? null
        : `${percent(unreachablePercent)} of the range is owned by unreachable peers; if they are dead run: ${unreachable
            .map((s) => `agent rmpeer ${s.peer}`)
            .join('; ')}`,
  };
}

function ringShares(report: StatusReport): IpamView['shares'] {
  const ipam = report.controlPlane?.ipam;
  return (ipam?.owners ?? []).map((o) => {
    const self = o.peer === report.node.name;
    return {
      peer: o.peer,
      self,
      addresses: o.addresses,
      percent: o.percent,
      cidrs: o.cidrs,
      reachable: self || o.reachable,
      active: self ? (ipam?.allocations ?? 0) : null,
    };
  });
}

function staticShares(report: StatusReport): IpamView['shares'] {
  const total = addressCount([report.clusterCidr]);
  const share = (peer: string, cidrs: string[], self: boolean) => {
    const addresses = addressCount(cidrs);
    return {
      peer,
      self,
      addresses,
      percent: (100 * addresses) / total,
      cidrs,
      reachable: true,
      active: null,
    };
  };
  const shares: IpamView['shares'] = [
    share(report.node.name, report.node.podCidrs, true),
    ...[...report.dataplane.peers]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((p) => share(p.name, p.cidrs, false)),
  ];
  const given = shares.reduce((sum, s) => sum + s.addresses, 0);
  if (given < total)
    shares.push({
      peer: null,
      self: false,
      addresses: total - given,
      percent: (100 * (total - given)) / total,
      cidrs: [],
      reachable: true,
      active: null,
    });
  return shares;
}

export function renderIpam(view: IpamView): string {
  const rows = view.shares.map((s) => [
    s.peer === null ? '(not assigned)' : s.self ? `${s.peer} (this node)` : s.peer,
    count(s.addresses),
    percent(s.percent),
    cidrList(s.cidrs),
    s.peer !== null && !s.reachable ? 'unreachable!' : s.active !== null ? `${count(s.active)} active` : '',
  ]);
  const lines = [
    `Status: ${view.summary}`,
    `Range:  ${view.clusterRange} (${count(view.totalAddresses)} addresses)`,
    '',
    view.shares.length === 0
      ? 'No ring yet: nobody owns any part of the range.'
      : table(['OWNER', 'ADDRESSES', 'SHARE', 'RANGES', ''], rows),
  ];
  if (view.hint) lines.push('', view.hint);
  return `${lines.join('\n')}\n`;
}

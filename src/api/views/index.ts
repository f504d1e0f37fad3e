import type { z } from 'zod';
import type { StatusReport } from '../status-report.js';
import { statusReportSchema } from '../status-schema.js';
import { renderStatus } from '../status-view.js';
import { connectionsView, connectionsViewSchema, renderConnections } from './connections.js';
import { dataplaneView, dataplaneViewSchema, renderDataplane } from './dataplane.js';
import { ipamView, ipamViewSchema, renderIpam } from './ipam.js';
import { peersView, peersViewSchema, renderPeers } from './peers.js';

/** One view of the status: the JSON model (`--json`, with its schema) and its text rendering. */
export interface StatusView<M> {
  model(report: StatusReport): M;
  schema: z.ZodType<M>;
  render(model: M): string;
}

function view<M>(
  model: (r: StatusReport) => M,
  schema: z.ZodType<M>,
  render: (m: M) => string,
): StatusView<M> {
  return { model, schema, render };
}

export const statusViews = {
  summary: view((r) => r, statusReportSchema, renderStatus),
  peers: view(peersView, peersViewSchema, renderPeers),
  connections: view(connectionsView, connectionsViewSchema, renderConnections),
  ipam: view(ipamView, ipamViewSchema, renderIpam),
  dataplane: view(dataplaneView, dataplaneViewSchema, renderDataplane),
};

export type StatusViewName = keyof typeof statusViews;

export function isStatusViewName(name: string): name is StatusViewName {
  return Object.hasOwn(statusViews, name);
}

/** The text or JSON (pretty, newline-terminated) of one view. */
export function showView(name: StatusViewName, report: StatusReport, json: boolean): string {
  const v = statusViews[name] as StatusView<unknown>;
  const model = v.model(report);
  return json ? `${JSON.stringify(model, null, 2)}\n` : v.render(model);
}

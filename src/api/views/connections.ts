import { z } from 'zod';
import type { StatusReport } from '../status-report.js';
import { CONNECTION_STATES, connectionSchema, STATUS_SCHEMA_VERSION } from '../status-schema.js';
import { table } from './format.js';

export const connectionsViewSchema = z.object({
  schemaVersion: z.literal(STATUS_SCHEMA_VERSION),
  /** False in static mode: there is no control plane to connect. */
  controlPlane: z.boolean(),
  connections: z.array(connectionSchema),
});

export type ConnectionsView = z.infer<typeof connectionsViewSchema>;

/** Established first, then the ones that need attention, each by address. */
export function connectionsView(report: StatusReport): ConnectionsView {
  const connections = [...(report.controlPlane?.connections ?? [])].sort(
    (a, b) =>
      CONNECTION_STATES.indexOf(a.state) - CONNECTION_STATES.indexOf(b.state) ||
      (a.address < b.address ? -1 : 1),
  );
  return { schemaVersion: STATUS_SCHEMA_VERSION, controlPlane: report.controlPlane !== null, connections };
}

export function renderConnections(view: ConnectionsView): string {
  if (!view.controlPlane)
    return 'No control-plane connections: static mode (--peers-file), peers and ranges come from the file.\n';
  if (view.connections.length === 0) return 'No connections and no peers to dial (no --peers given?).\n';
  return `${table(
    ['', 'ADDRESS', 'STATE', 'DETAIL'],
    view.connections.map((c) => [c.direction === 'outbound' ? '->' : '<-', c.address, c.state, c.detail]),
  )}\n`;
}

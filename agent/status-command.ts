import { getFromAgent } from '../src/api/admin-client.js';
import type { StatusReport } from '../src/api/status-report.js';
import { isStatusViewName, showView, statusViews } from '../src/api/views/index.js';

/** The agent answered but is not ready (IPAM awaiting consensus, data plane down): views still print. */
export const EXIT_NOT_READY = 5;

export class StatusUsageError extends Error {}

/** `agent status [VIEW] [--json]`: prints the view; exit 5 (with the reasons on stderr) when not ready. */
export async function statusCommand(
  socket: string,
  view: string | undefined,
  json: boolean,
): Promise<number> {
  const name = view ?? 'summary';
  if (!isStatusViewName(name) || (view !== undefined && name === 'summary'))
    throw new StatusUsageError(
      `unknown status view: ${view}; one of ${Object.keys(statusViews)
        .filter((v) => v !== 'summary')
        .join(', ')}`,
    );
  const report = (await getFromAgent(socket, '/v1/status')) as StatusReport;
  process.stdout.write(showView(name, report, json));
  if (report.readiness?.ready === false) {
    process.stderr.write(`agent: not ready: ${report.readiness.reasons.join('; ')}\n`);
    return EXIT_NOT_READY;
  }
  return 0;
}

/** `agent report`: the whole status model as JSON, ready or not. */
export async function reportCommand(socket: string): Promise<number> {
  const report = await getFromAgent(socket, '/v1/status');
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return 0;
}

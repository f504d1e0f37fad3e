import type { StatusReport } from '../api/status-report.js';
import type { EndpointHandler } from './http-endpoint.js';

/**
 * Kubernetes probes. `/healthz`: the agent builds its status (the event loop and the state it
 * reports work). `/readyz`: 200 once the data plane forwards and IPAM is ready, else 503 with why.
 */
export function healthRoutes(report: () => StatusReport): Record<string, EndpointHandler> {
  return {
    '/healthz': () => {
      report();
      return { status: 200, contentType: 'text/plain', body: 'ok\n' };
    },
    '/readyz': () => {
      const { readiness } = report();
      return readiness.ready
        ? { status: 200, contentType: 'text/plain', body: 'ready\n' }
        : { status: 503, contentType: 'text/plain', body: `not ready: ${readiness.reasons.join('; ')}\n` };
    },
  };
}

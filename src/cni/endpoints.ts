import { type AdminPostHandler, AdminRequestError } from '../api/admin-server.js';
import { CniCode, CniError } from './errors.js';
import { CNI_API_PREFIX } from './request.js';
import type { CniService } from './service.js';

function httpStatusOf(code: number): number {
  switch (code) {
    case CniCode.tryAgainLater:
    case CniCode.notAvailable:
      return 503;
    case CniCode.unknownContainer:
      return 404;
    case CniCode.plumbingFailed:
      return 500;
    default:
      return 400;
  }
}

/**
 * `POST /v1/cni/add|del|check|gc|status`. Every path takes the same body; the command comes from
 * its CNI_COMMAND, which must match the path. A CNI failure answers with the spec's code in
 * `cniCode` (and `details`) next to the usual `error` message.
 */
export function cniEndpoints(
  service: CniService,
  beforeEachRequest: () => Promise<void> = async () => {},
): Record<string, AdminPostHandler> {
  const endpoint =
    (command: string): AdminPostHandler =>
    async (body) => {
      try {
        const env = (body as { env?: { CNI_COMMAND?: unknown } } | undefined)?.env;
        if (env?.CNI_COMMAND !== command) {
          throw new CniError(
            CniCode.invalidEnvironment,
            `${CNI_API_PREFIX}/${command.toLowerCase()} takes CNI_COMMAND=${command}`,
          );
        }
        await beforeEachRequest();
        return await service.handle(body);
      } catch (error) {
        if (!(error instanceof CniError)) throw error;
        throw new AdminRequestError(httpStatusOf(error.code), error.message, {
          cniCode: error.code,
          ...(error.details !== undefined ? { details: error.details } : {}),
        });
      }
    };
  return Object.fromEntries(
    ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'].map((command) => [
      `${CNI_API_PREFIX}/${command.toLowerCase()}`,
      endpoint(command),
    ]),
  );
}

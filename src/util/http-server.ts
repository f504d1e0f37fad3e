import type { Server } from 'node:http';
import type { ListenOptions } from 'node:net';
import type { Logger } from './log.js';

/**
 * Listens on `target`, rejecting if that fails. Once listening, the rejecting listener goes and later
 * server errors are logged as `what` (left attached, it would have swallowed them).
 */
export function startListening(
  server: Server,
  target: ListenOptions,
  log: Logger,
  what: string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      server.on('error', (err) => log.error({ err }, `${what} server error`));
      resolve();
    });
  });
}

/** Closes the server now, open keep-alive connections too, so stopping never waits for a client. */
export function closeNow(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

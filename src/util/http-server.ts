import type { Server } from 'node:http';

/** Closes the server now, open keep-alive connections too, so stopping never waits for a client. */
export function closeNow(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
}

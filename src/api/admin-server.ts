import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../util/log.js';

export type AdminHandler = () => unknown | Promise<unknown>;

export class AdminSocketInUseError extends Error {
  override name = 'AdminSocketInUseError';
}

/**
 * The agent's admin API: JSON over HTTP on a unix socket that only root can open. `agent
 * status` and (later) the CNI shim talk to it. Routes are GET paths mapped to handlers.
 */
export class AdminServer {
  private server: Server | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly routes: Record<string, AdminHandler>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await mkdir(dirname(this.socketPath), { recursive: true, mode: 0o755 });
    await removeStaleSocket(this.socketPath);
    const server = createServer((request, response) => {
      const handler = request.method === 'GET' ? this.routes[request.url ?? ''] : undefined;
      if (!handler) {
        response.writeHead(404, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: `no such endpoint: ${request.method} ${request.url}` }));
        return;
      }
      Promise.resolve()
        .then(handler)
        .then((body) => {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify(body));
        })
        .catch((error: unknown) => {
          this.log.error({ err: error, url: request.url }, 'admin request failed');
          response.writeHead(500, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ error: (error as Error).message }));
        });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    await chmod(this.socketPath, 0o600);
    this.server = server;
    this.log.info({ socket: this.socketPath }, 'admin API listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(this.socketPath).catch(() => undefined);
  }
}

/** Removes a socket file left by an agent that died, but refuses if an agent still answers on it. */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch(() => undefined);
  if (!stat) return;
  if (!stat.isSocket())
    throw new AdminSocketInUseError(
      `${path} exists and is not a socket; remove it or choose another --admin-socket`,
    );
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new AdminSocketInUseError(`another agent is already listening on ${path}`);
  await unlink(path);
}

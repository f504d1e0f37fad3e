import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { closeNow, startListening } from '../util/http-server.js';
import type { Logger } from '../util/log.js';

export type AdminGetHandler = () => unknown | Promise<unknown>;
export type AdminPostHandler = (body: unknown) => unknown | Promise<unknown>;

/** Called when a request starts; the returned function when it has been answered (for metrics). */
export type AdminRequestObserver = (method: string, path: string) => (status: number, body: unknown) => void;

export interface AdminRoutes {
  get: Record<string, AdminGetHandler>;
  post?: Record<string, AdminPostHandler>;
}

/** Thrown by a handler to answer with a specific HTTP status and message. */
export class AdminRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** More fields for the error body, e.g. a CNI error code. */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const MAX_BODY_BYTES = 1024 * 1024;

export class AdminSocketInUseError extends Error {
  override name = 'AdminSocketInUseError';
}

/**
 * The agent's admin API: JSON over HTTP on a unix socket that only root can open. `agent
 * status` and (later) the CNI shim talk to it. GET handlers report, POST handlers take a JSON body.
 */
export class AdminServer {
  private server: Server | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly routes: AdminRoutes,
    private readonly log: Logger,
    private readonly observe?: AdminRequestObserver,
  ) {}

  async start(): Promise<void> {
    await mkdir(dirname(this.socketPath), { recursive: true, mode: 0o755 });
    await removeStaleSocket(this.socketPath);
    const server = createServer((request, response) => {
      const path = request.url ?? '';
      const answered = this.observe?.(request.method ?? '', path);
      const reply = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(body));
        answered?.(status, body);
      };
      const get = request.method === 'GET' ? this.routes.get[path] : undefined;
      const post = request.method === 'POST' ? this.routes.post?.[path] : undefined;
      if (!get && !post) {
        reply(404, { error: `no such endpoint: ${request.method} ${path}` });
        return;
      }
      readJsonBody(request)
        .then((body) => (get ? get() : post?.(body)))
        .then((body) => reply(200, body ?? {}))
        .catch((error: unknown) => {
          if (error instanceof AdminRequestError) {
            reply(error.status, { ...error.extra, error: error.message });
            return;
          }
          this.log.error({ err: error, url: path }, 'admin request failed');
          reply(500, { error: (error as Error).message });
        });
    });
    await startListening(server, { path: this.socketPath }, this.log, 'admin API');
    await chmod(this.socketPath, 0o600);
    this.server = server;
    this.log.info({ socket: this.socketPath }, 'admin API listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await closeNow(server);
    await unlink(this.socketPath).catch(() => undefined);
  }
}

/**
 * The request's JSON body (undefined if empty). Read with stream events rather than an async
 * iterator: the iterator's promise per chunk was a visible share of the CNI request path.
 */
function readJsonBody(request: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      const wasTooLarge = size > MAX_BODY_BYTES;
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      // Answered at once, while the client still sends; the rest is read and dropped.
      else if (!wasTooLarge) reject(new AdminRequestError(413, 'request body too large'));
    });
    request.on('error', reject);
    request.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      if (size === 0) {
        resolve(undefined);
        return;
      }
      try {
        resolve(
          JSON.parse((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8')),
        );
      } catch {
        reject(new AdminRequestError(400, 'request body is not valid JSON'));
      }
    });
  });
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

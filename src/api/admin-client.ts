import { request } from 'node:http';

export class AgentUnreachableError extends Error {
  override name = 'AgentUnreachableError';
  constructor(
    message: string,
    /** The socket error (ENOENT, ECONNREFUSED, …); undefined for a timeout or a garbled reply. */
    readonly errno: string | undefined = undefined,
  ) {
    super(message);
  }
}

/** The agent understood the request and refused it (bad input, not ready, …). */
export class AgentRequestError extends Error {
  override name = 'AgentRequestError';
  constructor(
    readonly status: number,
    message: string,
    /** The agent's whole error body. */
    readonly body: unknown = undefined,
  ) {
    super(message);
  }
}

/** GETs a JSON document from the agent's admin socket, with errors a person can act on. */
export function getFromAgent(socketPath: string, path: string, timeoutMs = 5000): Promise<unknown> {
  return callAgent(socketPath, 'GET', path, undefined, timeoutMs);
}

/** POSTs a JSON body to the agent's admin socket and returns its JSON answer. */
export function postToAgent(
  socketPath: string,
  path: string,
  body: unknown,
  timeoutMs = 30_000,
): Promise<unknown> {
  return callAgent(socketPath, 'POST', path, body, timeoutMs);
}

function callAgent(
  socketPath: string,
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, timeout: timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          reject(new AgentUnreachableError(`the agent sent a reply that is not JSON: ${text.slice(0, 200)}`));
          return;
        }
        if (response.statusCode !== 200) {
          const message = (body as { error?: string } | null)?.error ?? `HTTP ${response.statusCode}`;
          reject(new AgentRequestError(response.statusCode ?? 0, message, body));
          return;
        }
        resolve(body);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (error: NodeJS.ErrnoException) =>
      reject(new AgentUnreachableError(explain(socketPath, error), error.code)),
    );
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function explain(socketPath: string, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
      return `the agent is not running: no admin socket at ${socketPath}`;
    case 'ECONNREFUSED':
      return `the agent is not running: nothing listens on ${socketPath} (a stale socket)`;
    case 'EACCES':
      return `permission denied on ${socketPath}: run as root`;
    default:
      return `cannot reach the agent on ${socketPath}: ${error.message}`;
  }
}

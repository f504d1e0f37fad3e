import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { z } from 'zod';
import type { KubeEndpoint } from './kube-endpoint.js';
import { kubeApiError, type RbacNeed } from './kube-errors.js';
import { bookmarkSchema, statusSchema, type WatchEvent, watchLineSchema } from './kube-objects.js';

const REQUEST_TIMEOUT_MS = 30_000;
/** Idle keep-alive connections are closed well before any server or load balancer would drop them. */
const IDLE_CONNECTION_MS = 15_000;

export interface KubeRequest {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** Path under the server URL, e.g. /api/v1/nodes. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** The permission this call needs: a 403 names it. */
  readonly rbac: RbacNeed;
}

/**
 * JSON requests and watch streams to the Kubernetes API over node:http(s): one keep-alive agent
 * carrying the endpoint's TLS trust and client certificate, the Authorization header per request
 * (a token file may have rotated). A non-2xx answer becomes a KubeApiError with the Status's reason.
 */
export class KubeHttp {
  private readonly agent: http.Agent;

  constructor(
    private readonly endpoint: KubeEndpoint,
    private readonly requestTimeoutMs = REQUEST_TIMEOUT_MS,
  ) {
    const { tls } = endpoint;
    this.agent =
      endpoint.server.protocol === 'https:'
        ? new https.Agent({
            keepAlive: true,
            timeout: IDLE_CONNECTION_MS,
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            rejectUnauthorized: tls.rejectUnauthorized,
            servername: tls.servername,
          })
        : new http.Agent({ keepAlive: true, timeout: IDLE_CONNECTION_MS });
  }

  /** One request; its JSON answer checked against `schema`. */
  async json<T>(request: KubeRequest, schema: z.ZodType<T>): Promise<T> {
    const response = await this.open(request, this.requestTimeoutMs);
    const text = await readText(response).catch((error: Error) => {
      throw new Error(`${describe(request)}: ${error.message}`, { cause: error });
    });
    const parsed = schema.safeParse(parseJson(text));
    if (!parsed.success) {
      throw new Error(`${describe(request)}: unexpected answer from the API server: ${text.slice(0, 200)}`);
    }
    return parsed.data;
  }

  /**
   * A watch: calls `onEvent` for every line of the stream until the server ends it (resolves) or it
   * breaks (rejects: connection lost, nothing received for `idleMs`, a malformed line, or an ERROR
   * event, which becomes a KubeApiError with the Status's code, e.g. 410 Gone).
   */
  async watch<T>(
    request: KubeRequest,
    schema: z.ZodType<T>,
    onEvent: (event: WatchEvent<T>) => void,
    options: { idleMs: number; signal: AbortSignal },
  ): Promise<void> {
    const response = await this.open(request, options.idleMs, options.signal);
    for await (const line of lines(request, response)) onEvent(watchEvent(request, line, schema));
  }

  /** Closes idle keep-alive connections (and any still open). */
  close(): void {
    this.agent.destroy();
  }

  private async open(
    request: KubeRequest,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    const first = await this.send(request, timeoutMs, signal).catch((error: unknown) => {
      // A kept-alive connection the server closed just as we reused it: a read is safe to send again.
      if (!(error instanceof StaleConnectionError) || request.method !== 'GET') throw error;
      return this.send(request, timeoutMs, signal);
    });
    if (first.statusCode !== 401 || !this.endpoint.credentials.refresh()) return this.checked(request, first);
    // A token file that changed since we read it (a rotation): one more try with the new token.
    first.resume();
    return this.checked(request, await this.send(request, timeoutMs, signal));
  }

  /** The response if 2xx; otherwise its Status as a KubeApiError. */
  private async checked(request: KubeRequest, response: IncomingMessage): Promise<IncomingMessage> {
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) return response;
    const text = await readText(response).catch(() => '');
    const parsed = statusSchema.safeParse(parseJson(text));
    const apiStatus = parsed.success ? parsed.data : {};
    throw kubeApiError(
      status,
      apiStatus.reason ?? response.statusMessage,
      apiStatus.message ?? text.slice(0, 200),
      describe(request),
      request.rbac,
    );
  }

  private send(request: KubeRequest, timeoutMs: number, signal?: AbortSignal): Promise<IncomingMessage> {
    const { server, credentials } = this.endpoint;
    const url = new URL(`${server.pathname.replace(/\/$/, '')}${request.path}`, server);
    for (const [key, value] of Object.entries(request.query ?? {})) url.searchParams.set(key, value);
    const body = request.body === undefined ? undefined : JSON.stringify(request.body);
    const headers: Record<string, string> = { accept: 'application/json' };
    const authorization = credentials.authorization();
    if (authorization !== undefined) headers.authorization = authorization;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const send = server.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      let answer: IncomingMessage | undefined;
      const req = send(url, { method: request.method, agent: this.agent, headers, signal }, (response) => {
        answer = response;
        resolve(response);
      });
      // Socket inactivity: no answer, or (for a watch) a stream gone silent past the server's own timeout.
      req.setTimeout(timeoutMs, () => {
        const error = new Error(`nothing from the API server for ${timeoutMs} ms`);
        answer?.destroy(error);
        req.destroy(error);
      });
      req.on('error', (error: NodeJS.ErrnoException) => {
        const stale = req.reusedSocket && answer === undefined && error.code === 'ECONNRESET';
        const Failure = stale ? StaleConnectionError : Error;
        reject(new Failure(`${describe(request)}: ${error.message}`, { cause: error }));
      });
      req.end(body);
    });
  }
}

class StaleConnectionError extends Error {}

/** The stream's lines; a broken stream is an error naming the request. */
async function* lines(request: KubeRequest, response: IncomingMessage): AsyncGenerator<string> {
  response.setEncoding('utf8');
  let buffered = '';
  try {
    for await (const chunk of response as AsyncIterable<string>) {
      buffered += chunk;
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line !== '') yield line;
      }
    }
  } catch (error) {
    throw new Error(`${describe(request)} (watch): ${(error as Error).message}`, { cause: error });
  }
}

function watchEvent<T>(request: KubeRequest, line: string, schema: z.ZodType<T>): WatchEvent<T> {
  const malformed = () => new Error(`${describe(request)}: malformed watch event: ${line.slice(0, 200)}`);
  const event = watchLineSchema.safeParse(parseJson(line));
  if (!event.success) throw malformed();
  const { type, object } = event.data;
  if (type === 'ERROR') {
    const status = statusSchema.safeParse(object);
    const { code, reason, message } = status.success ? status.data : {};
    throw kubeApiError(code ?? 500, reason, message, `${describe(request)} (watch)`, request.rbac);
  }
  if (type === 'BOOKMARK') {
    const bookmark = bookmarkSchema.safeParse(object);
    if (!bookmark.success) throw malformed();
    return { type, resourceVersion: bookmark.data.metadata.resourceVersion };
  }
  const parsed = schema.safeParse(object);
  if (!parsed.success) throw malformed();
  return { type, object: parsed.data };
}

function describe(request: KubeRequest): string {
  return `${request.method} ${request.path}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function readText(response: IncomingMessage): Promise<string> {
  response.setEncoding('utf8');
  let text = '';
  for await (const chunk of response as AsyncIterable<string>) text += chunk;
  return text;
}

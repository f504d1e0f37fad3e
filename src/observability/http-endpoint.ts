import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from '../config/listen-address.js';
import { closeNow, startListening } from '../util/http-server.js';
import type { Logger } from '../util/log.js';

export interface EndpointResponse {
  status: number;
  contentType: string;
  body: string;
}

export type EndpointHandler = () => EndpointResponse | Promise<EndpointResponse>;

/** A small read-only HTTP server (health probes, Prometheus): GET only, fixed paths. */
export class HttpEndpoint {
  private server: Server | undefined;

  constructor(
    private readonly listen: ListenAddress,
    private readonly routes: Record<string, EndpointHandler>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const server = createServer((request, response) => {
      const path = (request.url ?? '').split('?')[0] ?? '';
      const handler = this.routes[path];
      const send = ({ status, contentType, body }: EndpointResponse) => {
        response.writeHead(status, { 'content-type': contentType });
        response.end(request.method === 'HEAD' ? undefined : body);
      };
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        send({ status: 405, contentType: 'text/plain', body: 'only GET\n' });
        return;
      }
      if (!handler) {
        send({ status: 404, contentType: 'text/plain', body: `no such endpoint: ${path}\n` });
        return;
      }
      Promise.resolve()
        .then(handler)
        .then(send, (error: unknown) => {
          this.log.error({ err: error, path }, 'endpoint failed');
          send({ status: 500, contentType: 'text/plain', body: `${(error as Error).message}\n` });
        });
    });
    await startListening(
      server,
      { port: this.listen.port, host: this.listen.host },
      this.log,
      'HTTP endpoint',
    );
    this.server = server;
    const address = server.address() as AddressInfo;
    this.log.info(
      { listen: `${address.address}:${address.port}`, paths: Object.keys(this.routes) },
      'HTTP endpoint listening',
    );
  }

  /** The bound port (useful when listening on port 0). */
  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await closeNow(server);
  }
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A Kubernetes API stand-in: just enough of the API server for weft's Node discovery and peer registry,
 * with the semantics those rely on.
 *
 * Why not a real API server: none can run on this machine. kube-apiserver and etcd are not packaged for
 * Debian 12 here, the Go module proxy (to build them, or envtest) is unreachable, and there is no Docker
 * engine for kind or a control-plane image. kubectl is client-only (see the shared runtime notes §5).
 *
 * Semantics kept: one global resourceVersion that every write increments (as etcd's revision); lists
 * carry it; `?watch=true&resourceVersion=N` streams every later event as JSON lines and keeps the stream
 * open; a ConfigMap replace carrying a stale metadata.resourceVersion gets 409 Conflict (Status reason
 * Conflict), a create of an existing one 409 AlreadyExists, a read of a missing one 404 NotFound.
 *
 * Test controls: counters of requests and conflicts, a gate that holds requests matching a predicate
 * until released (to line up concurrent writers or to freeze an agent mid-request; a held request
 * whose client goes away is dropped, never applied).
 */

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    [k: string]: unknown;
  };
  [key: string]: unknown;
}

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
  revision: number;
}

export interface StandinRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: KubeObject | undefined;
}

interface Gate {
  matches: (request: StandinRequest) => boolean;
  held: Array<() => void>;
  /** Released automatically once this many requests are held (a barrier), if set. */
  releaseAt: number | undefined;
}

export class KubeApiStandin {
  private revision = 1;
  private readonly nodes = new Map<string, KubeObject>();
  private readonly configMaps = new Map<string, KubeObject>();
  private readonly nodeEvents: WatchEvent[] = [];
  private readonly watchers = new Set<{ from: number; res: ServerResponse }>();
  private readonly gates = new Set<Gate>();
  private readonly servers: Server[] = [];
  readonly counters = { requests: 0, conflicts: 0, configMapWrites: 0, watches: 0 };
  readonly log: string[] = [];

  /** Listens on TCP (port 0: any free port) and returns the base URL. */
  async listen(host = '127.0.0.1', port = 0): Promise<string> {
    const server = this.newServer();
    await new Promise<void>((resolve) => server.listen(port, host, resolve));
    const address = server.address() as AddressInfo;
    return `http://${host}:${address.port}`;
  }

  /** Also serves on a unix socket (reachable from any network namespace). */
  async listenUnix(path: string): Promise<void> {
    const server = this.newServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
  }

  async close(): Promise<void> {
    for (const gate of this.gates) for (const release of gate.held) release();
    for (const watcher of this.watchers) watcher.res.end();
    this.watchers.clear();
    await Promise.all(
      this.servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
  }

  // ---- state, as an administrator (kubelet, kubectl) would change it --------------------------------

  addNode(name: string, internalIP: string | undefined): KubeObject {
    const node: KubeObject = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, uid: `uid-${name}-${this.revision}` },
      status: {
        addresses: internalIP
          ? [
              { type: 'InternalIP', address: internalIP },
              { type: 'Hostname', address: name },
            ]
          : [],
      },
    };
    return this.writeNode(this.nodes.has(name) ? 'MODIFIED' : 'ADDED', node);
  }

  deleteNode(name: string): boolean {
    const node = this.nodes.get(name);
    if (node === undefined) return false;
    this.nodes.delete(name);
    this.publish('DELETED', {
      ...node,
      metadata: { ...node.metadata, resourceVersion: String(++this.revision) },
    });
    return true;
  }

  /** Ends every open watch stream, as an API server does when a watch times out. */
  dropWatches(): void {
    for (const watcher of this.watchers) watcher.res.end();
    this.watchers.clear();
  }

  nodeNames(): string[] {
    return [...this.nodes.keys()].sort();
  }

  configMap(namespace: string, name: string): KubeObject | undefined {
    return this.configMaps.get(`${namespace}/${name}`);
  }

  /** Overwrites a ConfigMap's data as an administrator would (bumps its resourceVersion). */
  putConfigMapData(namespace: string, name: string, data: Record<string, string>): void {
    const existing = this.configMap(namespace, name);
    this.configMaps.set(`${namespace}/${name}`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { ...(existing?.metadata ?? { name, namespace }), resourceVersion: String(++this.revision) },
      data,
    });
  }

  /**
   * Holds every request matching `matches` until the returned release() (or until `releaseAt` are held).
   * `held()` says how many wait now.
   */
  gate(
    matches: (request: StandinRequest) => boolean,
    releaseAt?: number,
  ): { release: () => void; held: () => number } {
    const gate: Gate = { matches, held: [], releaseAt };
    this.gates.add(gate);
    const release = () => {
      this.gates.delete(gate);
      for (const go of gate.held.splice(0)) go();
    };
    return { release, held: () => gate.held.length };
  }

  // ---- HTTP ---------------------------------------------------------------------------------------------

  private newServer(): Server {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        this.sendStatus(res, 500, 'InternalError', (error as Error).message);
      });
    });
    this.servers.push(server);
    return server;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin');
    const raw = await readBody(req);
    const request: StandinRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      body: raw.length > 0 ? (JSON.parse(raw) as KubeObject) : undefined,
    };
    this.counters.requests++;
    this.log.push(`${request.method} ${request.path}${url.search}`);
    for (const gate of this.gates) {
      if (!gate.matches(request)) continue;
      await new Promise<void>((resolve) => {
        gate.held.push(resolve);
        // A client that goes away while held no longer counts as held.
        const gone = () => {
          const index = gate.held.indexOf(resolve);
          if (index >= 0) gate.held.splice(index, 1);
          resolve();
        };
        req.socket.once('close', gone);
        if (gate.releaseAt !== undefined && gate.held.length >= gate.releaseAt) {
          this.gates.delete(gate);
          for (const go of gate.held.splice(0)) go();
        }
      });
      break;
    }
    // A client that went away while held (an agent killed mid-request) never gets its write applied.
    if (req.socket.destroyed) return;
    this.route(request, res);
  }

  private route(request: StandinRequest, res: ServerResponse): unknown {
    const { method, path, query, body } = request;
    if (path === '/api/v1/nodes' && method === 'GET') {
      if (query.get('watch') === 'true')
        return this.watchNodes(Number(query.get('resourceVersion') ?? 0), res);
      return this.sendJson(res, 200, {
        apiVersion: 'v1',
        kind: 'NodeList',
        metadata: { resourceVersion: String(this.revision) },
        items: [...this.nodes.values()],
      });
    }
    const node = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path);
    if (node && method === 'GET') {
      const found = this.nodes.get(node[1] as string);
      return found
        ? this.sendJson(res, 200, found)
        : this.sendStatus(res, 404, 'NotFound', `nodes "${node[1]}" not found`);
    }
    const cmList = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps$/.exec(path);
    if (cmList && method === 'POST' && body) {
      const key = `${cmList[1]}/${body.metadata.name}`;
      if (this.configMaps.has(key)) {
        this.counters.conflicts++;
        return this.sendStatus(
          res,
          409,
          'AlreadyExists',
          `configmaps "${body.metadata.name}" already exists`,
        );
      }
      return this.storeConfigMap(res, key, body, 201);
    }
    const cm = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps\/([^/]+)$/.exec(path);
    if (cm) {
      const key = `${cm[1]}/${cm[2]}`;
      const existing = this.configMaps.get(key);
      if (method === 'GET') {
        return existing
          ? this.sendJson(res, 200, existing)
          : this.sendStatus(res, 404, 'NotFound', `configmaps "${cm[2]}" not found`);
      }
      if (method === 'PUT' && body) {
        if (!existing) return this.sendStatus(res, 404, 'NotFound', `configmaps "${cm[2]}" not found`);
        const wanted = body.metadata.resourceVersion;
        if (wanted !== undefined && wanted !== '' && wanted !== existing.metadata.resourceVersion) {
          this.counters.conflicts++;
          return this.sendStatus(
            res,
            409,
            'Conflict',
            `Operation cannot be fulfilled on configmaps "${cm[2]}": the object has been modified; please apply your changes to the latest version and try again`,
          );
        }
        return this.storeConfigMap(res, key, body, 200);
      }
    }
    this.sendStatus(res, 404, 'NotFound', `the stand-in does not serve ${method} ${path}`);
  }

  private storeConfigMap(res: ServerResponse, key: string, body: KubeObject, code: number): void {
    const [namespace] = key.split('/');
    const stored: KubeObject = {
      ...body,
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { ...body.metadata, namespace, resourceVersion: String(++this.revision) },
    };
    this.configMaps.set(key, stored);
    this.counters.configMapWrites++;
    this.sendJson(res, code, stored);
  }

  private writeNode(type: 'ADDED' | 'MODIFIED', node: KubeObject): KubeObject {
    const stored = { ...node, metadata: { ...node.metadata, resourceVersion: String(++this.revision) } };
    this.nodes.set(stored.metadata.name, stored);
    this.publish(type, stored);
    return stored;
  }

  private publish(type: WatchEvent['type'], object: KubeObject): void {
    const event: WatchEvent = { type, object, revision: Number(object.metadata.resourceVersion) };
    this.nodeEvents.push(event);
    for (const watcher of this.watchers) {
      if (event.revision > watcher.from) watcher.res.write(`${JSON.stringify({ type, object })}\n`);
    }
  }

  private watchNodes(from: number, res: ServerResponse): void {
    this.counters.watches++;
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    for (const event of this.nodeEvents) {
      if (event.revision > from) res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
    }
    const watcher = { from, res };
    this.watchers.add(watcher);
    res.on('close', () => this.watchers.delete(watcher));
  }

  private sendJson(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
    if (res.headersSent) return;
    this.sendJson(res, code, { apiVersion: 'v1', kind: 'Status', status: 'Failure', message, reason, code });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A kubeconfig file's text pointing at `server` (plain HTTP, a dummy token). */
export function standinKubeconfig(server: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'standin', cluster: { server } }],
    users: [{ name: 'agent', user: { token: 'standin' } }],
    contexts: [{ name: 'standin', context: { cluster: 'standin', user: 'agent', namespace: 'kube-system' } }],
    'current-context': 'standin',
  });
}

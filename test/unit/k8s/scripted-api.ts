import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../src/util/exec.js';

/**
 * A local HTTP(S) server whose every answer the test writes (`handler`), recording what the client sent;
 * for the client's own behaviour (auth, TLS, chunking, errors) rather than the API's semantics.
 */
export interface ScriptedApi {
  readonly url: string;
  /** What the client sent, with the arrival time (performance.now()). */
  readonly requests: Array<{
    method: string;
    url: URL;
    authorization: string | undefined;
    body: string;
    at: number;
  }>;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, body: string) => void;

export async function scriptedApi(
  handler: Handler,
  tls?: { key: string; cert: string; ca?: string; requestCert?: boolean },
): Promise<ScriptedApi> {
  const requests: ScriptedApi['requests'] = [];
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://scripted');
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({
        method: req.method ?? '',
        url,
        authorization: req.headers.authorization,
        body,
        at: performance.now(),
      });
      handler(req, res, url, body);
    });
  };
  const server: Server = tls
    ? createHttpsServer({ ...tls, rejectUnauthorized: tls.requestCert === true }, listener)
    : createHttpServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  sendJson(res, code, { apiVersion: 'v1', kind: 'Status', status: 'Failure', code, reason, message });
}

export interface TestPki {
  readonly dir: string;
  readonly caCert: string;
  /** A CA that signed nothing here: trusting only it must fail. */
  readonly otherCaCert: string;
  readonly serverKey: string;
  readonly serverCert: string;
  readonly clientKey: string;
  readonly clientCert: string;
  remove(): void;
}

/** A throw-away CA (openssl from Debian), a server certificate for 127.0.0.1 and a client certificate. */
export async function makeTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-pki-'));
  const path = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'];
  for (const ca of ['ca', 'other-ca']) {
    await run([
      'openssl',
      'req',
      '-x509',
      ...ec,
      '-keyout',
      path(`${ca}.key`),
      '-out',
      path(`${ca}.crt`),
      '-subj',
      `/CN=${ca}`,
    ]);
  }
  const issue = (name: string, subject: string, extension: string) =>
    run([
      'openssl',
      'req',
      '-x509',
      ...ec,
      '-CA',
      path('ca.crt'),
      '-CAkey',
      path('ca.key'),
      '-keyout',
      path(`${name}.key`),
      '-out',
      path(`${name}.crt`),
      '-subj',
      subject,
      '-addext',
      extension,
    ]);
  await issue('server', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1');
  await issue('client', '/CN=weft-agent', 'extendedKeyUsage=clientAuth');
  const read = (name: string) => readFileSync(path(name), 'utf8');
  return {
    dir,
    caCert: read('ca.crt'),
    otherCaCert: read('other-ca.crt'),
    serverKey: read('server.key'),
    serverCert: read('server.crt'),
    clientKey: read('client.key'),
    clientCert: read('client.crt'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A kubeconfig (YAML, as kubectl writes it) for one cluster and user; returns its path. */
export function writeKubeconfig(
  dir: string,
  cluster: Record<string, unknown>,
  user: Record<string, unknown>,
  file = 'kubeconfig',
): string {
  const path = join(dir, file);
  const indent = (fields: Record<string, unknown>) =>
    Object.entries(fields)
      .map(([key, value]) => `      ${key}: ${JSON.stringify(value)}`)
      .join('\n');
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
${indent(cluster)}
contexts:
  - name: test
    context: { cluster: test, user: agent }
current-context: test
users:
  - name: agent
    user:
${indent(user)}
`,
  );
  return path;
}

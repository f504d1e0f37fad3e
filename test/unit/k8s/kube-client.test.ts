import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ConfigError } from '../../../src/config/static-peers.js';
import { KubeCore } from '../../../src/k8s/kube-core.js';
import {
  inClusterEndpoint,
  type KubeEndpoint,
  kubeconfigEndpoint,
  loadKubeEndpoint,
  TokenFile,
} from '../../../src/k8s/kube-endpoint.js';
import { KubeApiError, KubeConflictError, type RbacNeed } from '../../../src/k8s/kube-errors.js';
import { KubeHttp } from '../../../src/k8s/kube-http.js';
import { DEFAULT_REGISTRY_NAME } from '../../../src/k8s/registry-store.js';
import {
  makeTestPki,
  type ScriptedApi,
  scriptedApi,
  sendJson,
  sendStatus,
  type TestPki,
  writeKubeconfig,
} from './scripted-api.js';

// The hand-written Kubernetes client against local HTTP(S) servers that answer as the test says.
const nodeList = { kind: 'NodeList', metadata: { resourceVersion: '7' }, items: [] };
let pki: TestPki;
let cleanup: Array<() => unknown> = [];

beforeAll(async () => {
  pki = await makeTestPki();
});
afterAll(() => pki?.remove());
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

async function serve(...args: Parameters<typeof scriptedApi>): Promise<ScriptedApi> {
  const api = await scriptedApi(...args);
  cleanup.push(() => api.close());
  return api;
}

function coreFor(endpoint: KubeEndpoint): KubeCore {
  const core = new KubeCore(new KubeHttp(endpoint));
  cleanup.push(() => core.close());
  return core;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const tlsServer = () => ({ key: pki.serverKey, cert: pki.serverCert });

/** The error a call fails with (the test fails if it succeeds). */
function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error as Error,
  );
}

describe('Kubernetes client: endpoint and credentials', () => {
  it('sends the token; after a 401 reads a rotated token file and tries once more; a refused token is a clear error', async () => {
    let accepted = 'Bearer one';
    const api = await serve((req, res) =>
      req.headers.authorization === accepted
        ? sendJson(res, 200, nodeList)
        : sendStatus(res, 401, 'Unauthorized', 'Unauthorized'),
    );
    const tokenPath = join(pki.dir, 'token');
    writeFileSync(tokenPath, 'one\n');
    const core = coreFor(
      await kubeconfigEndpoint(writeKubeconfig(pki.dir, { server: api.url }, { tokenFile: 'token' })),
    );
    expect((await core.listNodes()).metadata.resourceVersion).toBe('7');
    expect(api.requests.map((r) => r.authorization)).toEqual(['Bearer one']);

    writeFileSync(tokenPath, 'two\n');
    accepted = 'Bearer two';
    await core.listNodes();
    expect(api.requests.map((r) => r.authorization)).toEqual(['Bearer one', 'Bearer one', 'Bearer two']);

    // The file has not changed: no second try, and the error says what to look at.
    accepted = 'Bearer three';
    const refused = await rejection(core.listNodes());
    expect(api.requests).toHaveLength(4);
    expect(refused).toBeInstanceOf(KubeApiError);
    expect((refused as KubeApiError).status).toBe(401);
    expect(refused.message).toMatch(/GET \/api\/v1\/nodes: 401 Unauthorized: .*rejected the credentials/);

    const fixed = coreFor(
      await kubeconfigEndpoint(writeKubeconfig(pki.dir, { server: api.url }, { token: 'three' }, 'static')),
    );
    await fixed.listNodes();
    expect(api.requests.at(-1)?.authorization).toBe('Bearer three');
  });

  it('re-reads a token file once a minute without being told', () => {
    const path = join(pki.dir, 'rotating');
    writeFileSync(path, 'first');
    let now = 0;
    const token = new TokenFile(path, () => now);
    writeFileSync(path, 'second');
    now = 59_000;
    expect(token.authorization()).toBe('Bearer first');
    now = 60_000;
    expect(token.authorization()).toBe('Bearer second');
  });

  it('verifies the API server against the configured CA, and only that CA', async () => {
    const api = await serve((_req, res) => sendJson(res, 200, nodeList), tlsServer());
    const withCa = (cluster: Record<string, unknown>, file: string) =>
      kubeconfigEndpoint(writeKubeconfig(pki.dir, { server: api.url, ...cluster }, { token: 't' }, file));
    await expect(
      coreFor(await withCa({ 'certificate-authority-data': b64(pki.caCert) }, 'a')).listNodes(),
    ).resolves.toMatchObject({ items: [] });
    // A file path relative to the kubeconfig, as kubectl resolves it.
    mkdirSync(join(pki.dir, 'sub'), { recursive: true });
    writeFileSync(join(pki.dir, 'sub', 'ca.pem'), pki.caCert);
    await expect(
      coreFor(await withCa({ 'certificate-authority': 'sub/ca.pem' }, 'b')).listNodes(),
    ).resolves.toBeDefined();
    await expect(
      coreFor(await withCa({ 'certificate-authority-data': b64(pki.otherCaCert) }, 'c')).listNodes(),
    ).rejects.toThrow(/certificate/);
    // No CA at all: the system store does not know the test CA either.
    await expect(coreFor(await withCa({}, 'd')).listNodes()).rejects.toThrow(/certificate/);
    await expect(
      coreFor(await withCa({ 'insecure-skip-tls-verify': true }, 'e')).listNodes(),
    ).resolves.toBeDefined();
  });

  it('presents a client certificate from the kubeconfig', async () => {
    const api = await serve(
      (req, res) => {
        const peer = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
        sendJson(res, 200, { ...nodeList, metadata: { resourceVersion: peer.subject?.CN ?? 'none' } });
      },
      { ...tlsServer(), ca: pki.caCert, requestCert: true },
    );
    const endpoint = await kubeconfigEndpoint(
      writeKubeconfig(
        pki.dir,
        { server: api.url, 'certificate-authority-data': b64(pki.caCert) },
        { 'client-certificate-data': b64(pki.clientCert), 'client-key-data': b64(pki.clientKey) },
        'client-cert',
      ),
    );
    expect((await coreFor(endpoint).listNodes()).metadata.resourceVersion).toBe('weft-agent');
    expect(api.requests.at(-1)?.authorization).toBeUndefined();
  });

  it('in a pod: the service host and port from the environment, token and CA from the service-account directory', async () => {
    const api = await serve((_req, res) => sendJson(res, 200, nodeList), tlsServer());
    const dir = join(pki.dir, 'serviceaccount');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'token'), 'sa-token');
    writeFileSync(join(dir, 'ca.crt'), pki.caCert);
    const env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: new URL(api.url).port };
    const endpoint = await loadKubeEndpoint({ env, serviceAccountDir: dir });
    expect(endpoint.source).toBe('in-cluster');
    await coreFor(endpoint).listNodes();
    expect(api.requests.at(-1)?.authorization).toBe('Bearer sa-token');
    expect(
      inClusterEndpoint({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir).server
        .host,
    ).toBe('[fd00::1]');

    expect(() => inClusterEndpoint({}, dir)).toThrow(/KUBERNETES_SERVICE_HOST.*--kubeconfig/);
    expect(() => inClusterEndpoint(env, join(pki.dir, 'missing'))).toThrow(ConfigError);
    // KUBECONFIG wins over the pod's service account, --kubeconfig over both.
    const fromEnv = writeKubeconfig(pki.dir, { server: 'https://env.example:6443' }, {}, 'env');
    expect(
      (await loadKubeEndpoint({ env: { ...env, KUBECONFIG: `${fromEnv}:/nope` }, serviceAccountDir: dir }))
        .source,
    ).toBe(fromEnv);
    expect(
      (await loadKubeEndpoint({ kubeconfig: join(pki.dir, 'a'), env: { KUBECONFIG: fromEnv } })).source,
    ).toBe(join(pki.dir, 'a'));
  });

  it('refuses kubeconfigs it cannot honour, naming what is wrong', async () => {
    const write = (text: string) => {
      const path = join(pki.dir, 'bad');
      writeFileSync(path, text);
      return kubeconfigEndpoint(path);
    };
    await expect(kubeconfigEndpoint(join(pki.dir, 'absent'))).rejects.toThrow(ConfigError);
    await expect(write(': : not yaml [')).rejects.toThrow(/not YAML/);
    await expect(write('clusters: []\ncontexts: []\n')).rejects.toThrow(/no current-context/);
    await expect(write('clusters: []\ncontexts: []\ncurrent-context: x\n')).rejects.toThrow(
      /x is not among its contexts/,
    );
    const exec = writeKubeconfig(pki.dir, { server: 'https://h:1' }, { exec: { command: 'aws' } }, 'exec');
    await expect(kubeconfigEndpoint(exec)).rejects.toThrow(/not exec/);
    const halfCert = writeKubeconfig(
      pki.dir,
      { server: 'https://h:1' },
      { 'client-certificate-data': b64(pki.clientCert) },
      'half',
    );
    await expect(kubeconfigEndpoint(halfCert)).rejects.toThrow(/needs its key/);
  });
});

describe('Kubernetes client: API errors', () => {
  it('a 409 on replace or create is a KubeConflictError carrying status, reason and message', async () => {
    const api = await serve((req, res) =>
      req.method === 'PUT'
        ? sendStatus(res, 409, 'Conflict', 'the object has been modified')
        : sendStatus(res, 409, 'AlreadyExists', 'configmaps "weft-peers" already exists'),
    );
    const core = coreFor(
      await kubeconfigEndpoint(writeKubeconfig(pki.dir, { server: api.url }, {}, 'plain')),
    );
    const body = { metadata: { name: 'weft-peers', resourceVersion: '3' }, data: { a: 'b' } };
    const conflict = await rejection(core.replaceConfigMap('kube-system', 'weft-peers', body));
    expect(conflict).toBeInstanceOf(KubeConflictError);
    expect(conflict).toMatchObject({
      status: 409,
      reason: 'Conflict',
      apiMessage: 'the object has been modified',
    });
    expect(JSON.parse(api.requests.at(-1)?.body ?? '')).toEqual(body);
    expect(api.requests.at(-1)?.url.pathname).toBe('/api/v1/namespaces/kube-system/configmaps/weft-peers');
    const exists = await rejection(core.createConfigMap('kube-system', body));
    expect(exists).toBeInstanceOf(KubeConflictError);
    expect(exists).toMatchObject({ status: 409, reason: 'AlreadyExists' });
  });

  it('a 403 names the RBAC rule that is missing; a malformed answer is an error, not a guess', async () => {
    let answer = (res: import('node:http').ServerResponse) =>
      sendStatus(
        res,
        403,
        'Forbidden',
        'configmaps "weft-peers" is forbidden: User "system:serviceaccount:kube-system:weft" cannot update resource "configmaps"',
      );
    const api = await serve((_req, res) => answer(res));
    const core = coreFor(
      await kubeconfigEndpoint(writeKubeconfig(pki.dir, { server: api.url }, {}, 'plain')),
    );
    const forbidden = await rejection(
      core.replaceConfigMap('kube-system', 'weft-peers', { metadata: { name: 'weft-peers' } }),
    );
    expect(forbidden).toBeInstanceOf(KubeApiError);
    expect(forbidden.message).toContain(
      'PUT /api/v1/namespaces/kube-system/configmaps/weft-peers: 403 Forbidden',
    );
    expect(forbidden.message).toContain('cannot update resource "configmaps"');
    expect(forbidden.message).toContain(
      'resources [configmaps], verbs [update] named weft-peers in namespace kube-system (a Role)',
    );
    const watch = await rejection(core.watchNodes('1', () => {}, { signal: new AbortController().signal }));
    expect(watch.message).toContain('resources [nodes], verbs [watch] (cluster-wide: a ClusterRole)');

    answer = (res) => sendJson(res, 200, { kind: 'NodeList', items: 'nope' });
    await expect(core.listNodes()).rejects.toThrow(/unexpected answer from the API server/);
  });

  it('sends a read again when the kept-alive connection it reused was reset; never a write', async () => {
    let served = 0;
    const configMap = { metadata: { name: 'weft-peers', resourceVersion: '1' } };
    const api = await serve((req, res, url) => {
      served++;
      // Every second request the connection is reset instead of answered (a server closing an idle one).
      if (served % 2 === 0) req.socket.resetAndDestroy();
      else sendJson(res, 200, url.pathname === '/api/v1/nodes' ? nodeList : configMap);
    });
    const core = coreFor(
      await kubeconfigEndpoint(writeKubeconfig(pki.dir, { server: api.url }, {}, 'plain')),
    );
    await core.listNodes(); // 1: answered
    await core.listNodes(); // 2: reset on the reused connection, 3: sent again and answered
    await core.readConfigMap('kube-system', 'weft-peers'); // 4: reset, 5: answered
    const write = await rejection(core.replaceConfigMap('kube-system', 'weft-peers', configMap)); // 6: reset
    expect(api.requests.map((r) => r.method)).toEqual(['GET', 'GET', 'GET', 'GET', 'GET', 'PUT']);
    expect(write.message).toMatch(/^PUT \/api\/v1\/namespaces\/kube-system\/configmaps\/weft-peers: /);
  });

  it('deploy/weft.yaml grants exactly the calls the client makes', async () => {
    const api = await serve((_req, res) => sendStatus(res, 403, 'Forbidden', 'no'));
    const core = coreFor(
      await kubeconfigEndpoint(writeKubeconfig(pki.dir, { server: api.url }, {}, 'plain')),
    );
    const ns = 'kube-system';
    const body = { metadata: { name: DEFAULT_REGISTRY_NAME } };
    const calls: Record<string, () => Promise<unknown>> = {
      listNodes: () => core.listNodes(),
      watchNodes: () => core.watchNodes('1', () => {}, { signal: new AbortController().signal }),
      readConfigMap: () => core.readConfigMap(ns, DEFAULT_REGISTRY_NAME),
      createConfigMap: () => core.createConfigMap(ns, body),
      replaceConfigMap: () => core.replaceConfigMap(ns, DEFAULT_REGISTRY_NAME, body),
    };
    const methods = Object.getOwnPropertyNames(KubeCore.prototype).filter(
      (m) => !['constructor', 'close'].includes(m),
    );
    expect(Object.keys(calls).sort()).toEqual(methods.sort());
    const needs: RbacNeed[] = [];
    for (const call of Object.values(calls)) needs.push(((await rejection(call())) as KubeApiError).rbac);

    // The rules the calls need, grouped as the manifest writes them, against the manifest's rules.
    const rulesFor = (scoped: RbacNeed[]) => {
      const rules = new Map<
        string,
        { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] }
      >();
      for (const need of scoped) {
        const key = `${need.resource}/${need.name ?? ''}`;
        const rule = rules.get(key) ?? {
          apiGroups: [''],
          resources: [need.resource],
          ...(need.name === undefined ? {} : { resourceNames: [need.name] }),
          verbs: [],
        };
        rule.verbs.push(need.verb);
        rules.set(key, rule);
      }
      return [...rules.values()]
        .map((r) => ({ ...r, verbs: r.verbs.sort() }))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    };
    const manifest = parseAllDocuments(readFileSync('deploy/weft.yaml', 'utf8')).map((d) => d.toJSON());
    const rulesOf = (kind: string) => {
      const found = manifest.find((d) => d?.kind === kind);
      return [...found.rules]
        .map((r) => ({ ...r, verbs: [...r.verbs].sort() }))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    };
    expect(rulesOf('ClusterRole')).toEqual(rulesFor(needs.filter((n) => n.namespace === undefined)));
    expect(rulesOf('Role')).toEqual(rulesFor(needs.filter((n) => n.namespace === 'kube-system')));
    expect(manifest.find((d) => d?.kind === 'Role').metadata.namespace).toBe('kube-system');
  });
});

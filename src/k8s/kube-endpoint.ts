import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config/static-peers.js';

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Bound service-account tokens rotate (kubelet refreshes the file); client-go re-reads it every minute. */
const TOKEN_REREAD_MS = 60_000;

/** Where the API server is, how to trust it and what to present to it. */
export interface KubeEndpoint {
  readonly server: URL;
  readonly tls: {
    readonly ca?: string | undefined;
    readonly cert?: string | undefined;
    readonly key?: string | undefined;
    readonly rejectUnauthorized: boolean;
    readonly servername?: string | undefined;
  };
  readonly credentials: Credentials;
  /** Where this came from, for messages: "in-cluster" or the kubeconfig's path. */
  readonly source: string;
}

export interface Credentials {
  /** The Authorization header's value, if these credentials use one. */
  authorization(): string | undefined;
  /** The server refused them: read them again; true if they changed (worth one more try). */
  refresh(): boolean;
}

const noCredentials: Credentials = { authorization: () => undefined, refresh: () => false };

/** A bearer token from a file, read again once a minute and after a 401 (bound tokens rotate). */
export class TokenFile implements Credentials {
  private token: string;
  private readAt: number;

  constructor(
    private readonly path: string,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.token = TokenFile.read(path);
    this.readAt = now();
  }

  authorization(): string {
    if (this.now() - this.readAt >= TOKEN_REREAD_MS) this.refresh();
    return `Bearer ${this.token}`;
  }

  refresh(): boolean {
    this.readAt = this.now();
    const before = this.token;
    try {
      this.token = TokenFile.read(this.path);
    } catch {
      // Keep the last token: a file being rotated may be missing for a moment.
    }
    return this.token !== before;
  }

  private static read(path: string): string {
    const token = readFileSync(path, 'utf8').trim();
    if (token === '') throw new Error(`${path} is empty`);
    return token;
  }
}

function bearer(token: string): Credentials {
  return { authorization: () => `Bearer ${token}`, refresh: () => false };
}

/**
 * The API endpoint: from `--kubeconfig`, else from the KUBECONFIG variable (its first file), else the
 * pod's service account (in-cluster). Anything missing or unusable is a ConfigError naming it.
 */
export async function loadKubeEndpoint(options: {
  kubeconfig?: string | undefined;
  env?: NodeJS.ProcessEnv;
  serviceAccountDir?: string;
}): Promise<KubeEndpoint> {
  const env = options.env ?? process.env;
  const kubeconfig = options.kubeconfig ?? env.KUBECONFIG?.split(':').find((path) => path !== '');
  if (kubeconfig !== undefined) return kubeconfigEndpoint(kubeconfig);
  return inClusterEndpoint(env, options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR);
}

export function inClusterEndpoint(env: NodeJS.ProcessEnv, serviceAccountDir: string): KubeEndpoint {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new ConfigError(
      'no Kubernetes API configuration: KUBERNETES_SERVICE_HOST/PORT are unset (not in a pod); give --kubeconfig or set KUBECONFIG',
    );
  }
  const tokenPath = `${serviceAccountDir}/token`;
  const caPath = `${serviceAccountDir}/ca.crt`;
  let credentials: TokenFile;
  let ca: string;
  try {
    credentials = new TokenFile(tokenPath);
    ca = readFileSync(caPath, 'utf8');
  } catch (error) {
    throw new ConfigError(
      `in-cluster Kubernetes configuration: ${(error as Error).message} (is the service account token mounted?)`,
    );
  }
  return {
    server: new URL(`https://${host.includes(':') ? `[${host}]` : host}:${port}`),
    tls: { ca, rejectUnauthorized: true },
    credentials,
    source: 'in-cluster',
  };
}

const clusterSchema = z.object({
  server: z.string(),
  'certificate-authority': z.string().optional(),
  'certificate-authority-data': z.string().optional(),
  'insecure-skip-tls-verify': z.boolean().optional(),
  'tls-server-name': z.string().optional(),
});
const userSchema = z.object({
  token: z.string().optional(),
  tokenFile: z.string().optional(),
  'client-certificate': z.string().optional(),
  'client-certificate-data': z.string().optional(),
  'client-key': z.string().optional(),
  'client-key-data': z.string().optional(),
  exec: z.unknown().optional(),
  'auth-provider': z.unknown().optional(),
  username: z.string().optional(),
});
const kubeconfigSchema = z.object({
  'current-context': z.string().optional(),
  clusters: z.array(z.object({ name: z.string(), cluster: clusterSchema })),
  contexts: z.array(
    z.object({ name: z.string(), context: z.object({ cluster: z.string(), user: z.string().optional() }) }),
  ),
  users: z.array(z.object({ name: z.string(), user: userSchema.nullish() })).optional(),
});

/** The current context of a kubeconfig file: its cluster's server and trust, its user's token or certificate. */
export async function kubeconfigEndpoint(path: string): Promise<KubeEndpoint> {
  const fail = (message: string) => new ConfigError(`kubeconfig ${path}: ${message}`);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw fail((error as Error).message);
  }
  // Loaded only here: an agent in a pod never parses YAML.
  const { parse } = await import('yaml');
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw fail(`not YAML: ${(error as Error).message}`);
  }
  const parsed = kubeconfigSchema.safeParse(document);
  if (!parsed.success) throw fail(z.prettifyError(parsed.error));
  const config = parsed.data;
  const contextName = config['current-context'];
  if (!contextName) throw fail('no current-context');
  const context = config.contexts.find((c) => c.name === contextName)?.context;
  if (context === undefined) throw fail(`current-context ${contextName} is not among its contexts`);
  const cluster = config.clusters.find((c) => c.name === context.cluster)?.cluster;
  if (cluster === undefined)
    throw fail(`context ${contextName} names cluster ${context.cluster}, which is not there`);
  const userEntry =
    context.user === undefined ? undefined : config.users?.find((u) => u.name === context.user);
  const user = userEntry?.user ?? undefined;
  if (context.user !== undefined && userEntry === undefined) {
    throw fail(`context ${contextName} names user ${context.user}, which is not there`);
  }
  if (user?.exec !== undefined || user?.['auth-provider'] !== undefined || user?.username !== undefined) {
    throw fail(
      `user ${context.user}: only token, tokenFile and client certificates are supported (not exec, auth-provider or basic auth)`,
    );
  }
  const base = dirname(path);
  const material = (data: string | undefined, file: string | undefined, what: string): string | undefined => {
    if (data !== undefined) return Buffer.from(data, 'base64').toString('utf8');
    if (file === undefined) return undefined;
    try {
      return readFileSync(resolve(base, file), 'utf8');
    } catch (error) {
      throw fail(`${what}: ${(error as Error).message}`);
    }
  };
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch {
    throw fail(`cluster ${context.cluster}: server ${cluster.server} is not a URL`);
  }
  const cert = material(
    user?.['client-certificate-data'],
    user?.['client-certificate'],
    'client certificate',
  );
  const key = material(user?.['client-key-data'], user?.['client-key'], 'client key');
  if ((cert === undefined) !== (key === undefined))
    throw fail(`user ${context.user}: a client certificate needs its key`);
  let credentials = noCredentials;
  if (user?.token !== undefined) credentials = bearer(user.token);
  else if (user?.tokenFile !== undefined) {
    try {
      credentials = new TokenFile(resolve(base, user.tokenFile));
    } catch (error) {
      throw fail(`tokenFile: ${(error as Error).message}`);
    }
  }
  return {
    server,
    tls: {
      ca: material(
        cluster['certificate-authority-data'],
        cluster['certificate-authority'],
        'certificate authority',
      ),
      cert,
      key,
      rejectUnauthorized: cluster['insecure-skip-tls-verify'] !== true,
      servername: cluster['tls-server-name'],
    },
    credentials,
    source: path,
  };
}

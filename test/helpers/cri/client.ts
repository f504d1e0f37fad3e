/**
 * A small CRI client (runtime.v1 RuntimeService over gRPC on a unix socket) for driving
 * containerd as kubelet does, built on the proto subset next to this file.
 */
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** From the repository root, like the agent's entry, so that benches built into dist/ find it too. */
const PROTO = resolve('test/helpers/cri/runtime.proto');
const DEFAULT_DEADLINE_MS = 60_000;

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export type SandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export interface SandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}

export interface PodSandboxConfig {
  metadata: SandboxMetadata;
  hostname?: string;
  logDirectory?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroupParent?: string;
    securityContext?: {
      namespaceOptions?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode };
      privileged?: boolean;
    };
  };
}

export interface VersionResponse {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

export interface PodSandboxStatus {
  id: string;
  metadata: SandboxMetadata;
  state: SandboxState;
  createdAt: string;
  network: { ip: string; additionalIps: Array<{ ip: string }> } | null;
  labels: Record<string, string>;
}

export interface PodSandbox {
  id: string;
  metadata: SandboxMetadata;
  state: SandboxState;
  labels: Record<string, string>;
}

/** What containerd reports about a sandbox in its verbose status (the fields the tests use). */
export interface SandboxInfo {
  pid: number;
  /** Path of the sandbox's network namespace, the CNI_NETNS its plugins got. */
  netnsPath: string;
  /** Addresses per interface in the CNI result containerd kept from the ADD. */
  cniAddresses: Record<string, string[]>;
}

interface CachedCniResult {
  Interfaces?: Record<string, { IPConfigs?: Array<{ IP: string }> | null }>;
}

/** A failed CRI call: the gRPC status code and the runtime's message. */
export class CriError extends Error {
  override readonly name = 'CriError';

  constructor(
    readonly rpc: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`${rpc}: ${grpc.status[code] ?? code}: ${details}`);
  }
}

type Unary = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response: unknown) => void,
) => void;

type RuntimeServiceClient = grpc.Client & Record<string, Unary>;

function loadRuntimeService(): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(PROTO, {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } };
  };
  return pkg.runtime.v1.RuntimeService;
}

interface NetnsEntry {
  type: string;
  path?: string;
}

export class CriClient {
  private readonly client: RuntimeServiceClient;

  constructor(
    socket: string,
    private readonly deadlineMs = DEFAULT_DEADLINE_MS,
  ) {
    const RuntimeService = loadRuntimeService();
    this.client = new RuntimeService(
      `unix://${socket}`,
      grpc.credentials.createInsecure(),
    ) as RuntimeServiceClient;
  }

  close(): void {
    this.client.close();
  }

  version(): Promise<VersionResponse> {
    return this.call('Version', { version: 'v1' });
  }

  async conditions(): Promise<RuntimeCondition[]> {
    const response = await this.call<{ status: { conditions: RuntimeCondition[] } }>('Status', {});
    return response.status.conditions;
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    const response = await this.call<{ podSandboxId: string }>('RunPodSandbox', { config });
    return response.podSandboxId;
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call('StopPodSandbox', { podSandboxId: id });
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call('RemovePodSandbox', { podSandboxId: id });
  }

  async podSandboxStatus(id: string): Promise<PodSandboxStatus> {
    const response = await this.call<{ status: PodSandboxStatus }>('PodSandboxStatus', {
      podSandboxId: id,
    });
    return response.status;
  }

  /** The sandbox's pid, network namespace path and CNI addresses from containerd's verbose status. */
  async sandboxInfo(id: string): Promise<SandboxInfo> {
    const response = await this.call<{ info: Record<string, string> }>('PodSandboxStatus', {
      podSandboxId: id,
      verbose: true,
    });
    const raw = response.info.info;
    if (raw === undefined) throw new Error(`PodSandboxStatus ${id}: no verbose info`);
    const info = JSON.parse(raw) as {
      pid: number;
      runtimeSpec?: { linux?: { namespaces?: NetnsEntry[] } };
      cniResult?: CachedCniResult;
    };
    const netns = info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network');
    if (netns?.path === undefined) throw new Error(`sandbox ${id}: no network namespace path`);
    const cniAddresses: Record<string, string[]> = {};
    for (const [ifname, iface] of Object.entries(info.cniResult?.Interfaces ?? {})) {
      cniAddresses[ifname] = (iface.IPConfigs ?? []).map((c) => c.IP);
    }
    return { pid: info.pid, netnsPath: netns.path, cniAddresses };
  }

  async listPodSandbox(labelSelector: Record<string, string> = {}): Promise<PodSandbox[]> {
    const response = await this.call<{ items: PodSandbox[] }>('ListPodSandbox', {
      filter: { labelSelector },
    });
    return response.items;
  }

  private call<T>(rpc: string, request: object): Promise<T> {
    const method = this.client[rpc];
    if (method === undefined) throw new Error(`RuntimeService has no ${rpc}`);
    const deadline = new Date(Date.now() + this.deadlineMs);
    return new Promise((resolve, reject) => {
      method.call(this.client, request, new grpc.Metadata(), { deadline }, (error, response) => {
        if (error) reject(new CriError(rpc, error.code, error.details));
        else resolve(response as T);
      });
    });
  }
}

/**
 * The agent's side of CNI: ADD, DEL, CHECK, GC and STATUS on this node, from the request the shim
 * forwarded. Addresses come from IPAM keyed by attachment (container ID + interface name), the
 * pod's link from the plumbing. Requests for different attachments run concurrently; requests for
 * the same attachment run one after another.
 */
import { type AllocateResult, GATEWAY_ID } from '../ipam/index.js';
import type { HostRoute, PodLinks } from '../plumbing/pod-links.js';
import {
  hostVethMac,
  hostVethName,
  inspectPod,
  isNetworkNamespace,
  listPodVeths,
  type PodLinkSpec,
  pinBridgeMac,
  podMacFor,
} from '../plumbing/pod-network.js';
import type { Logger } from '../util/log.js';
import type { ForwardedRequest } from './del-queue.js';
import { CniCode, CniError } from './errors.js';
import { attachmentKey, type CniRequest, isAttachmentKey, parseCniRequest } from './request.js';
import { buildAddResult, type CniResult, prevResultAddress } from './result.js';

/** The slice of the IPAM driver CNI needs. */
export interface CniIpam {
  allocate(id: string): Promise<AllocateResult>;
  release(id: string): Promise<string | undefined>;
  gc(validIds: Iterable<string>): Promise<Array<{ containerId: string; address: string }>>;
  addressOf(id: string): string | undefined;
  allocationIds(): string[];
}

/** Whether the node can take pods: its bridge carries the gateway. */
export type NodeNetworkState = { ready: true; mtu: number } | { ready: false; reason: string };

export interface CniServiceDeps {
  ipam: CniIpam;
  /** The bridge pods attach to (`weave`). */
  bridge: string;
  links: PodLinks;
  node: () => Promise<NodeNetworkState>;
  log: Logger;
}

export class CniService {
  private readonly locks = new Map<string, Promise<void>>();
  /** One pinning for all ADDs: a burst of first ADDs would otherwise each run `ip link set`. */
  private bridgePinned: Promise<void> | undefined;

  constructor(private readonly deps: CniServiceDeps) {}

  /** Parses what the shim forwarded (so both sides validate alike) and runs it. */
  handle(body: unknown): Promise<CniResult | Record<string, never>> {
    const { env, config } = (body ?? {}) as Partial<ForwardedRequest>;
    if (typeof env !== 'object' || env === null || typeof config !== 'object' || config === null)
      throw new CniError(CniCode.decodingFailure, 'request body needs {"env": {CNI_*}, "config": {…}}');
    const request = parseCniRequest(env, config);
    switch (request.command) {
      case 'ADD':
        return this.add(request);
      case 'DEL':
        return this.del(request).then(() => ({}));
      case 'CHECK':
        return this.check(request).then(() => ({}));
      case 'GC':
        return this.gc(request).then(() => ({}));
      case 'STATUS':
        return this.status().then(() => ({}));
      case 'VERSION':
        throw new CniError(CniCode.invalidEnvironment, 'VERSION is answered by the plugin, not the agent');
    }
  }

  async add(request: CniRequest): Promise<CniResult> {
    const node = await this.readyNode();
    const netns = isNetworkNamespace(request.netns);
    if (netns === 'missing')
      throw new CniError(CniCode.invalidEnvironment, `CNI_NETNS ${request.netns} does not exist`);
    if (netns === 'not-a-netns') {
      throw new CniError(
        CniCode.invalidEnvironment,
        `CNI_NETNS ${request.netns} is not a network namespace in the agent's mount namespace: ` +
          'mount the runtime’s netns directory into the agent with HostToContainer (rslave) propagation',
      );
    }
    const key = attachmentKey(request);
    return this.exclusive(key, async () => {
      const allocation = await this.deps.ipam.allocate(key);
      if (!allocation.ok) {
        const code =
          allocation.reason === 'invalid-container-id' ? CniCode.invalidEnvironment : CniCode.tryAgainLater;
        throw new CniError(code, `no address for ${key}: ${allocation.message}`);
      }
      const spec = this.linkSpec(request, node, allocation.address, allocation.gateway);
      try {
        this.bridgePinned ??= pinBridgeMac(this.deps.bridge).catch((error: unknown) => {
          this.bridgePinned = undefined;
          throw error;
        });
        await this.bridgePinned;
        await this.deps.links.attach(spec);
      } catch (error) {
        await this.deps.ipam.release(key);
        throw new CniError(CniCode.plumbingFailed, `cannot attach ${key}`, (error as Error).message);
      }
      this.deps.log.debug({ attachment: key, address: allocation.address }, 'CNI ADD');
      return buildAddResult(
        request.config.cniVersion,
        { ...spec, address: allocation.address, gateway: allocation.gateway },
        request.config.prevResult,
        request.config.dns,
      );
    });
  }

  /** Idempotent: an unknown attachment, a repeated DEL or one without a netns all succeed. */
  async del(request: CniRequest): Promise<void> {
    const key = attachmentKey(request);
    await this.exclusive(key, async () => {
      const address = this.deps.ipam.addressOf(key);
      try {
        await this.deps.links.detach(
          hostVethName(key),
          address === undefined ? undefined : { address, bridge: this.deps.bridge },
        );
      } catch (error) {
        throw new CniError(CniCode.plumbingFailed, `cannot detach ${key}`, (error as Error).message);
      }
      await this.deps.ipam.release(key);
      this.deps.log.debug({ attachment: key, address }, 'CNI DEL');
    });
  }

  async check(request: CniRequest): Promise<void> {
    const key = attachmentKey(request);
    const problems = await this.exclusive(key, async () => {
      const address = this.deps.ipam.addressOf(key);
      if (address === undefined)
        throw new CniError(CniCode.unknownContainer, `no attachment ${key} on this node`);
      const node = await this.readyNode();
      const expected =
        request.config.prevResult && prevResultAddress(request.config.prevResult, request.ifname);
      if (expected !== undefined && expected !== address) {
        throw new CniError(
          CniCode.plumbingFailed,
          `prevResult says ${request.ifname} has ${expected}, but ${key} holds ${address}`,
        );
      }
      const gateway = this.deps.ipam.addressOf(GATEWAY_ID) ?? '';
      return inspectPod(this.linkSpec(request, node, address, gateway));
    });
    if (problems.length > 0) throw new CniError(CniCode.plumbingFailed, `${key}: ${problems.join('; ')}`);
  }

  /**
   * Releases CNI allocations (and removes veths) of attachments not in the valid list. Best effort,
   * as the spec asks: a veth that cannot be removed does not stop the rest, and is reported after.
   */
  async gc(request: CniRequest): Promise<void> {
    const valid = request.config.validAttachments;
    if (valid === undefined)
      throw new CniError(CniCode.invalidNetworkConfig, 'GC needs "cni.dev/valid-attachments"');
    // An attachment with a request in flight (an ADD racing the runtime's snapshot) is not stale.
    const validKeys = new Set([...valid.map(attachmentKey), ...this.locks.keys()]);
    const keep = this.deps.ipam.allocationIds().filter((id) => !isAttachmentKey(id) || validKeys.has(id));
    const released = await this.deps.ipam.gc(keep);
    const failures: string[] = [];
    const detach = async (veth: string, route?: HostRoute) => {
      try {
        return await this.deps.links.detach(veth, route);
      } catch (error) {
        failures.push(`${veth}: ${(error as Error).message}`);
        return false;
      }
    };
    for (const { containerId, address } of released)
      await detach(hostVethName(containerId), { address, bridge: this.deps.bridge });
    const validVeths = new Set([...validKeys].map(hostVethName));
    let removed = 0;
    const veths = await listPodVeths();
    for (const key of this.locks.keys()) validVeths.add(hostVethName(key));
    for (const veth of veths) {
      if (validVeths.has(veth)) continue;
      if (await detach(veth)) removed++;
    }
    this.deps.log.info({ released: released.length, vethsRemoved: removed, failures }, 'CNI GC');
    if (failures.length > 0)
      throw new CniError(CniCode.plumbingFailed, 'GC could not remove every stale veth', failures.join('\n'));
  }

  async status(): Promise<void> {
    await this.readyNode(CniCode.notAvailable);
  }

  /** Replays a DEL the shim queued while the agent was down. */
  async replayDel(forwarded: ForwardedRequest): Promise<void> {
    const request = parseCniRequest(forwarded.env, forwarded.config);
    if (request.command !== 'DEL') throw new Error(`queued request is ${request.command}, not DEL`);
    await this.del(request);
  }

  private async readyNode(code: number = CniCode.tryAgainLater): Promise<{ mtu: number }> {
    const node = await this.deps.node();
    if (!node.ready) throw new CniError(code, `the weft agent cannot add pods yet: ${node.reason}`);
    return node;
  }

  private linkSpec(
    request: CniRequest,
    node: { mtu: number },
    address: string,
    gateway: string,
  ): PodLinkSpec {
    const key = attachmentKey(request);
    return {
      bridge: this.deps.bridge,
      hostIf: hostVethName(key),
      hostMac: hostVethMac(key),
      netns: request.netns,
      ifname: request.ifname,
      podMac: podMacFor(address),
      address,
      gateway,
      mtu: request.config.mtu ?? node.mtu,
    };
  }

  private async exclusive<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    let done!: () => void;
    const gate = new Promise<void>((resolve) => {
      done = resolve;
    });
    const mine = previous.then(() => gate);
    this.locks.set(key, mine);
    await previous;
    try {
      return await work();
    } finally {
      done();
      if (this.locks.get(key) === mine) this.locks.delete(key);
    }
  }
}

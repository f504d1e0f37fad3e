/**
 * A pod's link to the node: a veth pair whose host end is a port of the `weave` bridge and whose
 * other end sits in the pod's network namespace with a /32 address, the gateway on-link and a
 * default route through it (the node routes between pods, so a pod never depends on the node's
 * block sizes). The names and MACs it uses, CHECK's inspection and GC's listing live here; creating
 * and removing it is pod-links.ts.
 */
import { createHash } from 'node:crypto';
import { type Stats, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { NativePodLink } from '../native/addon.js';
import { run } from '../util/exec.js';
import { parseAddresses, parseIpv4Routes, parseLinks } from './ipjson.js';
import { getLink } from './link.js';
import { listIpv4Routes } from './route.js';

/** Host ends of pod veths are named `vwf` + 12 hex digits of a hash of the attachment. */
export const POD_VETH_PREFIX = 'vwf';

export type PodLinkSpec = NativePodLink;

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** A stable host-side name for an attachment, so DEL finds it without the pod's namespace. */
export function hostVethName(attachmentKey: string): string {
  return `${POD_VETH_PREFIX}${digest(attachmentKey).subarray(0, 6).toString('hex')}`;
}

/** Locally administered unicast MAC for the host end, stable per attachment. */
export function hostVethMac(attachmentKey: string): string {
  return macOf([0x0e, ...digest(attachmentKey).subarray(6, 11)]);
}

/** The pod's MAC from its address (0a:58:a:b:c:d, the convention of the reference plugins). */
export function podMacFor(address: string): string {
  return macOf([0x0a, 0x58, ...address.split('.').map(Number)]);
}

function macOf(bytes: number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function inNetns(netns: string, argv: string[]): string[] {
  return ['nsenter', `--net=${netns}`, ...argv];
}

/** What differs from the spec (empty when the pod's network is as ADD left it). */
export async function inspectPod(spec: PodLinkSpec): Promise<string[]> {
  const problems: string[] = [];
  const host = await getLink(spec.hostIf);
  if (host === undefined) return [`host interface ${spec.hostIf} is missing`];
  if (host.master !== spec.bridge) problems.push(`${spec.hostIf} is not a port of ${spec.bridge}`);
  if (!host.up) problems.push(`${spec.hostIf} is down`);
  if (host.mtu !== spec.mtu) problems.push(`${spec.hostIf} has MTU ${host.mtu}, want ${spec.mtu}`);
  const hostRoutes = await listIpv4Routes();
  if (!hostRoutes.some((r) => r.dst === `${spec.address}/32` && r.dev === spec.bridge))
    problems.push(`no host route ${spec.address}/32 dev ${spec.bridge}`);

  const links = await run(inNetns(spec.netns, ['ip', '-json', 'link', 'show', 'dev', spec.ifname]), {
    allowFail: true,
  });
  const pod = links.code === 0 ? parseLinks(links.stdout)[0] : undefined;
  if (pod === undefined) return [...problems, `${spec.ifname} is missing in ${spec.netns}`];
  if (!pod.up) problems.push(`${spec.ifname} is down`);
  if (pod.mtu !== spec.mtu) problems.push(`${spec.ifname} has MTU ${pod.mtu}, want ${spec.mtu}`);
  const addrs = parseAddresses(
    (await run(inNetns(spec.netns, ['ip', '-json', 'addr', 'show', 'dev', spec.ifname]))).stdout,
  );
  if (!addrs.some((a) => a.family === 'inet' && a.local === spec.address && a.prefixLength === 32))
    problems.push(`${spec.ifname} lacks ${spec.address}/32`);
  const routes = parseIpv4Routes(
    (await run(inNetns(spec.netns, ['ip', '-4', '-json', 'route', 'show', 'table', 'main']))).stdout,
  );
  if (!routes.some((r) => r.dst === `${spec.gateway}/32` && r.dev === spec.ifname))
    problems.push(`no on-link route to the gateway ${spec.gateway}`);
  if (!routes.some((r) => r.dst === 'default' && r.gateway === spec.gateway && r.dev === spec.ifname))
    problems.push(`no default route via ${spec.gateway}`);
  return problems;
}

/** The device of nsfs, the file system of namespace files; it never changes while the process runs. */
let nsfsDevice: number | undefined;

/**
 * Whether `path` is a network namespace as this process sees it: an nsfs file like
 * /proc/self/ns/net. A runtime's bind mount that did not propagate into the agent's mount
 * namespace shows up as the empty file under it. A stat takes microseconds: done in place, it
 * spares every ADD two trips through the threadpool, where they queued behind IPAM's fsyncs.
 */
export function isNetworkNamespace(path: string): 'yes' | 'missing' | 'not-a-netns' {
  let target: Stats;
  try {
    target = statSync(path);
  } catch {
    return 'missing';
  }
  nsfsDevice ??= statSync('/proc/self/ns/net').dev;
  return target.dev === nsfsDevice ? 'yes' : 'not-a-netns';
}

/** Host ends of pod veths present on the node (GC finds leaked ones among them). */
export async function listPodVeths(): Promise<string[]> {
  const { stdout } = await run(['ip', '-json', 'link', 'show', 'type', 'veth']);
  return parseLinks(stdout)
    .map((l) => l.name.split('@')[0] as string)
    .filter((name) => name.startsWith(POD_VETH_PREFIX));
}

/**
 * A bridge's MAC follows its lowest port's unless set explicitly, so pods coming and going would
 * change the gateway's MAC under other pods' ARP caches. Pin it to what it is now.
 */
export async function pinBridgeMac(bridge: string): Promise<void> {
  const assign = (await readFile(`/sys/class/net/${bridge}/addr_assign_type`, 'utf8')).trim();
  if (assign === '3') return; // NET_ADDR_SET
  const mac = (await readFile(`/sys/class/net/${bridge}/address`, 'utf8')).trim();
  await run(['ip', 'link', 'set', 'dev', bridge, 'address', mac]);
}

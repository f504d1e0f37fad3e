/**
 * A pod's link to the node: a veth pair whose host end is a port of the `weave` bridge and whose
 * other end sits in the pod's network namespace with a /32 address, the gateway on-link and a
 * default route through it (the node routes between pods, so a pod never depends on the node's
 * block sizes). One `ip link add` creates, configures and places both ends; one `ip -batch` inside
 * the namespace does the rest, so an ADD costs two short-lived processes.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CommandError, run } from '../util/exec.js';
import { parseAddresses, parseIpv4Routes, parseLinks } from './ipjson.js';
import { getLink } from './link.js';

/** Host ends of pod veths are named `vwf` + 12 hex digits of a hash of the attachment. */
export const POD_VETH_PREFIX = 'vwf';

export interface PodLinkSpec {
  bridge: string;
  hostIf: string;
  hostMac: string;
  /** Path of the pod's network namespace, e.g. /var/run/netns/cni-… */
  netns: string;
  ifname: string;
  podMac: string;
  address: string;
  gateway: string;
  mtu: number;
}

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

function isMissingDevice(error: CommandError | { stderr: string }): boolean {
  return /Cannot find device|does not exist/.test(error.stderr);
}

/** Deletes the host end (which takes the pod end with it); false if it was already gone. */
export async function detachPod(hostIf: string): Promise<boolean> {
  const argv = ['ip', 'link', 'del', 'dev', hostIf];
  const result = await run(argv, { allowFail: true });
  if (result.code === 0) return true;
  if (isMissingDevice(result)) return false;
  throw new CommandError(argv, result.code, result.stderr);
}

/** Creates the pair and configures the pod end; undoes the pair if the namespace part fails. */
export async function attachPod(spec: PodLinkSpec): Promise<void> {
  const mtu = String(spec.mtu);
  const host = [spec.hostIf, 'mtu', mtu, 'address', spec.hostMac, 'master', spec.bridge, 'up'];
  const peer = ['name', spec.ifname, 'mtu', mtu, 'address', spec.podMac, 'netns', spec.netns];
  const add = ['ip', 'link', 'add', ...host, 'type', 'veth', 'peer', ...peer];
  const first = await run(add, { allowFail: true });
  if (first.code !== 0) {
    if (!/File exists/.test(first.stderr)) throw new CommandError(add, first.code, first.stderr);
    // An ADD retried after a half-done one: start from nothing.
    await detachPod(spec.hostIf);
    await run(add);
  }
  const batch = [
    `link set dev ${spec.ifname} up`,
    `addr add ${spec.address}/32 dev ${spec.ifname}`,
    `route add ${spec.gateway} dev ${spec.ifname} scope link`,
    `route add default via ${spec.gateway} dev ${spec.ifname}`,
  ];
  try {
    await run(inNetns(spec.netns, ['ip', '-batch', '-']), { input: `${batch.join('\n')}\n` });
  } catch (error) {
    await detachPod(spec.hostIf).catch(() => undefined);
    throw error;
  }
}

/** What differs from the spec (empty when the pod's network is as ADD left it). */
export async function inspectPod(spec: PodLinkSpec): Promise<string[]> {
  const problems: string[] = [];
  const host = await getLink(spec.hostIf);
  if (host === undefined) return [`host interface ${spec.hostIf} is missing`];
  if (host.master !== spec.bridge) problems.push(`${spec.hostIf} is not a port of ${spec.bridge}`);
  if (!host.up) problems.push(`${spec.hostIf} is down`);
  if (host.mtu !== spec.mtu) problems.push(`${spec.hostIf} has MTU ${host.mtu}, want ${spec.mtu}`);

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

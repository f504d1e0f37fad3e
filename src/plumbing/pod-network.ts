/**
 * A pod's link to the node: a veth pair whose host end is a port of the `weave` bridge and whose
 * other end sits in the pod's network namespace with a /32 address, the gateway on-link and a
 * default route through it (the node routes between pods, so a pod never depends on the node's
 * block sizes). One `ip link add` creates, configures and places both ends; one `ip -batch` inside
 * the namespace does the rest, so an ADD costs two short-lived processes.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { CommandError, run } from '../util/exec.js';
import { parseAddresses, parseIpv4Routes, parseLinks } from './ipjson.js';
import { getLink } from './link.js';
import { listIpv4Routes } from './route.js';

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

/** `ip -batch` messages that only say the thing to remove is already gone. */
const ALREADY_GONE = /Cannot find device|No such process|does not exist|^Command failed/;

/**
 * Deletes the host end (which takes the pod end with it) and, given the pod's address, its host
 * route; false if the link was already gone. One `ip -force -batch` process for both.
 */
export async function detachPod(
  hostIf: string,
  route?: { address: string; bridge: string },
): Promise<boolean> {
  const lines = [`link del dev ${hostIf}`];
  if (route) lines.push(`route del ${route.address}/32 dev ${route.bridge}`);
  const argv = ['ip', '-force', '-batch', '-'];
  const result = await run(argv, { input: `${lines.join('\n')}\n`, allowFail: true });
  const unexpected = result.stderr
    .split('\n')
    .filter((line) => line.trim() !== '' && !ALREADY_GONE.test(line.trim()));
  if (unexpected.length > 0) throw new CommandError(argv, result.code, unexpected.join('\n'));
  return !/Cannot find device/.test(result.stderr);
}

/**
 * Creates the pair, routes the pod's /32 to the bridge (so the pod is reachable whatever the
 * node's blocks and the cluster route look like, even when one node owns the whole range; `proto
 * static` keeps the bridge's route sync from taking it for one of its own), then
 * configures the pod end; undoes everything if a step fails.
 */
export async function attachPod(spec: PodLinkSpec): Promise<void> {
  const mtu = spec.mtu;
  const host = `${spec.hostIf} mtu ${mtu} address ${spec.hostMac} master ${spec.bridge} up`;
  const peer = `name ${spec.ifname} mtu ${mtu} address ${spec.podMac} netns ${spec.netns}`;
  const hostBatch = `link add ${host} type veth peer ${peer}\nroute replace ${spec.address}/32 dev ${spec.bridge} proto static\n`;
  const hostArgv = ['ip', '-batch', '-'];
  const podBatch = [
    `link set dev ${spec.ifname} up`,
    `addr add ${spec.address}/32 dev ${spec.ifname}`,
    `route add ${spec.gateway} dev ${spec.ifname} scope link`,
    `route add default via ${spec.gateway} dev ${spec.ifname}`,
  ];
  const first = await run(hostArgv, { input: hostBatch, allowFail: true });
  if (first.code !== 0 && !/File exists/.test(first.stderr)) {
    // The link may exist although the route failed: `ip -batch` stops at the first failing line.
    await detachPod(spec.hostIf).catch(() => undefined);
    throw new CommandError(hostArgv, first.code, first.stderr);
  }
  try {
    if (first.code !== 0) {
      // An ADD retried after a half-done one: start from nothing.
      await detachPod(spec.hostIf);
      await run(hostArgv, { input: hostBatch });
    }
    await run(inNetns(spec.netns, ['ip', '-batch', '-']), { input: `${podBatch.join('\n')}\n` });
  } catch (error) {
    await detachPod(spec.hostIf, { address: spec.address, bridge: spec.bridge }).catch(() => undefined);
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

/**
 * Whether `path` is a network namespace as this process sees it: an nsfs file like
 * /proc/self/ns/net. A runtime's bind mount that did not propagate into the agent's mount
 * namespace shows up as the empty file under it.
 */
export async function isNetworkNamespace(path: string): Promise<'yes' | 'missing' | 'not-a-netns'> {
  const [target, own] = await Promise.all([stat(path).catch(() => undefined), stat('/proc/self/ns/net')]);
  if (target === undefined) return 'missing';
  return target.dev === own.dev ? 'yes' : 'not-a-netns';
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

/**
 * The lab's kernel objects: node namespaces plugged into an underlay switch (a bridge in a
 * namespace of its own), and the route tricks for partitions. Every namespace name starts with
 * `wl-<lab>-`, so nothing of anybody else's is ever touched.
 */
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from '../util/exec.js';
import { processStartTime } from './processes.js';

const SWITCH_BRIDGE = 'ul';
const UNDERLAY_IF = 'ul0';
/**
 * What a node namespace needs to route pods over the underlay (the lab's nodes and the tests'):
 * forwarding on, no reverse-path filter, no IPv6.
 */
const NODE_SYSCTL_ARGV: readonly string[] = [
  'sysctl',
  '-q',
  '-w',
  'net.ipv6.conf.all.disable_ipv6=1',
  'net.ipv6.conf.default.disable_ipv6=1',
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
  'net.ipv4.ip_forward=1',
];
/** SIGKILL takes effect within milliseconds; this bounds a process stuck in the kernel. */
const KILL_WAIT_MS = 5_000;

export function namespacePrefix(lab: string): string {
  return `wl-${lab}-`;
}

export async function listLabNamespaces(lab: string): Promise<string[]> {
  const names = await readdir('/run/netns').catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(namespacePrefix(lab)));
}

function inNs(ns: string, argv: string[]): Promise<unknown> {
  return run(['ip', '-n', ns, ...argv]);
}

async function addNamespace(ns: string): Promise<void> {
  await run(['ip', 'netns', 'add', ns]);
  await inNs(ns, ['link', 'set', 'dev', 'lo', 'up']);
}

export async function createSwitch(ns: string): Promise<void> {
  await addNamespace(ns);
  await addSwitchBridge(ns);
}

/** The switch's bridge in (existing) namespace `ns`. */
export async function addSwitchBridge(ns: string): Promise<void> {
  await inNs(ns, ['link', 'add', SWITCH_BRIDGE, 'type', 'bridge']);
  await inNs(ns, ['link', 'set', SWITCH_BRIDGE, 'up']);
}

/** A node namespace with `ul0` (address `underlayIp`/24) on switch port `port`. */
export async function createNodeNamespace(
  ns: string,
  switchNs: string,
  port: string,
  underlayIp: string,
): Promise<void> {
  await addNamespace(ns);
  await plugIntoSwitch(ns, switchNs, port, underlayIp);
}

/** Makes (existing) namespace `ns` a node: its sysctls, and `ul0` with `underlayIp`/24 on switch port `port`. */
export async function plugIntoSwitch(
  ns: string,
  switchNs: string,
  port: string,
  underlayIp: string,
): Promise<void> {
  await run(NODE_SYSCTL_ARGV, { netns: ns });
  await inNs(ns, ['link', 'add', UNDERLAY_IF, 'type', 'veth', 'peer', 'name', port, 'netns', switchNs]);
  await inNs(switchNs, ['link', 'set', port, 'master', SWITCH_BRIDGE, 'up']);
  await inNs(ns, ['addr', 'add', `${underlayIp}/24`, 'dev', UNDERLAY_IF]);
  await inNs(ns, ['link', 'set', UNDERLAY_IF, 'up']);
}

/** Deletes a namespace after killing whatever still runs inside it, and waiting until it is dead. */
export async function deleteNamespace(ns: string): Promise<void> {
  const { stdout } = await run(['ip', 'netns', 'pids', ns], { allowFail: true });
  const pids = stdout.split('\n').filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + KILL_WAIT_MS;
  while (pids.some((pid) => processStartTime(pid) !== undefined) && Date.now() < deadline) await sleep(20);
  await run(['ip', 'netns', 'del', ns], { allowFail: true });
}

/** Drops underlay traffic between two nodes in both directions (other pairs unaffected). */
export async function cutUnderlay(nsA: string, ipA: string, nsB: string, ipB: string): Promise<void> {
  await run(['ip', '-n', nsA, 'route', 'replace', 'prohibit', `${ipB}/32`]);
  await run(['ip', '-n', nsB, 'route', 'replace', 'prohibit', `${ipA}/32`]);
}

export async function restoreUnderlay(nsA: string, ipA: string, nsB: string, ipB: string): Promise<void> {
  await run(['ip', '-n', nsA, 'route', 'del', 'prohibit', `${ipB}/32`], { allowFail: true });
  await run(['ip', '-n', nsB, 'route', 'del', 'prohibit', `${ipA}/32`], { allowFail: true });
}

/** Reference flavor: plain routes to the other nodes' pod subnets via their underlay addresses. */
export async function addStaticRoute(ns: string, subnet: string, via: string): Promise<void> {
  await run(['ip', '-n', ns, 'route', 'replace', subnet, 'via', via, 'dev', UNDERLAY_IF]);
}

export async function deleteStaticRoute(ns: string, subnet: string): Promise<void> {
  await run(['ip', '-n', ns, 'route', 'del', subnet], { allowFail: true });
}

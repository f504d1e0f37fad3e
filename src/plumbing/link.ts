/** Links of the process's own network namespace: the `weave` bridge and the agent's TUN. */
import { CommandError, run } from '../util/exec.js';
import { parseIpv4Cidr } from './cidr.js';
import { type IpLink, parseAddresses, parseLinks } from './ipjson.js';

export async function listLinks(): Promise<IpLink[]> {
  const { stdout } = await run(['ip', '-details', '-json', 'link', 'show']);
  return parseLinks(stdout);
}

export async function getLink(name: string): Promise<IpLink | undefined> {
  return (await listLinks()).find((l) => l.name === name);
}

export interface LinkSettings {
  mtu?: number;
  txqueuelen?: number;
  up?: boolean;
}

/** Brings an existing link to the given settings, changing only what differs. */
export async function ensureLinkSettings(name: string, want: LinkSettings): Promise<void> {
  const link = await getLink(name);
  if (link === undefined) throw new Error(`link ${name} does not exist`);
  const changes: string[] = [];
  if (want.mtu !== undefined && link.mtu !== want.mtu) changes.push('mtu', String(want.mtu));
  if (want.txqueuelen !== undefined && link.txqueuelen !== want.txqueuelen) {
    changes.push('txqueuelen', String(want.txqueuelen));
  }
  if (want.up === true && !link.up) changes.push('up');
  if (want.up === false && link.up) changes.push('down');
  if (changes.length > 0) await run(['ip', 'link', 'set', 'dev', name, ...changes]);
}

export interface BridgeSpec {
  name: string;
  mtu: number;
  /** The node's gateway address for its pods, e.g. 10.32.1.1/24. */
  gatewayCidr: string;
}

/**
 * Ensures a bridge with exactly one IPv4 address, the gateway, and brings it up. Other IPv4
 * addresses on it are removed: they are gateways of an earlier allocation, and the kernel would
 * keep their connected routes pointing pods' traffic at this bridge.
 */
export async function ensureBridge(spec: BridgeSpec): Promise<void> {
  const gateway = parseIpv4Cidr(spec.gatewayCidr);
  const existing = await getLink(spec.name);
  if (existing === undefined) {
    await run(['ip', 'link', 'add', 'name', spec.name, 'type', 'bridge']);
  } else if (existing.kind !== 'bridge') {
    throw new Error(
      `link ${spec.name} exists but is a ${existing.kind ?? 'device of unknown kind'}, not a bridge`,
    );
  }
  // A bridge's MTU set by hand sticks; otherwise the kernel follows its ports' MTUs.
  await ensureLinkSettings(spec.name, { mtu: spec.mtu });

  const { stdout } = await run(['ip', '-json', 'addr', 'show', 'dev', spec.name]);
  const ipv4 = parseAddresses(stdout).filter((a) => a.family === 'inet');
  const hasGateway = ipv4.some((a) => a.local === gateway.address && a.prefixLength === gateway.prefixLength);
  for (const stale of ipv4) {
    if (stale.local === gateway.address && stale.prefixLength === gateway.prefixLength) continue;
    await run(['ip', 'addr', 'del', `${stale.local}/${stale.prefixLength}`, 'dev', spec.name]);
  }
  if (!hasGateway) {
    await run(['ip', 'addr', 'add', `${gateway.address}/${gateway.prefixLength}`, 'dev', spec.name]);
  }
  await ensureLinkSettings(spec.name, { up: true });
}

/** Deletes a link if it exists; returns whether it existed. */
export async function deleteLink(name: string): Promise<boolean> {
  if ((await getLink(name)) === undefined) return false;
  const argv = ['ip', 'link', 'del', 'dev', name];
  const result = await run(argv, { allowFail: true });
  if (result.code === 0) return true;
  // Someone else removed it between the check and the delete: the goal is reached anyway.
  if ((await getLink(name)) === undefined) return false;
  throw new CommandError(argv, result.code, result.stderr);
}

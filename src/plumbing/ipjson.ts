/**
 * Parsers for `ip -json` output (iproute2 ≥ 5). Pure functions, so they are unit-tested against
 * captured samples; the modules that run `ip` feed them its stdout.
 */
import { z } from 'zod';
import { canonicalCidr } from './cidr.js';

export interface IpLink {
  index: number;
  name: string;
  /** Administratively up (IFF_UP); a bridge without ports is up while its operstate is DOWN. */
  up: boolean;
  flags: string[];
  mtu: number;
  txqueuelen: number | undefined;
  /** `linkinfo.info_kind` (bridge, veth, tun, vxlan…); only present in `ip -details` output. */
  kind: string | undefined;
  /** Name of the bridge or bond this link is enslaved to. */
  master: string | undefined;
}

export interface IpAddress {
  ifname: string;
  /** MTU of the link holding the address. */
  mtu: number;
  family: 'inet' | 'inet6';
  local: string;
  prefixLength: number;
  scope: string | undefined;
}

export interface IpRoute {
  /** Canonical CIDR (host routes get /32), or `default`. */
  dst: string;
  dev: string | undefined;
  /** `boot` when `ip` leaves it out, which is what `ip route add` without `proto` creates. */
  protocol: string;
  scope: string | undefined;
  prefsrc: string | undefined;
  /** `unicast` when `ip` leaves it out. */
  type: string;
  /** Outer destination of a lightweight-tunnel route (`encap ip … dst <addr>`). */
  encapDst: string | undefined;
  /** Next hop (`via`). */
  gateway: string | undefined;
}

const linkSchema = z.object({
  ifindex: z.number().int(),
  ifname: z.string(),
  flags: z.array(z.string()),
  mtu: z.number().int(),
  txqlen: z.number().int().optional(),
  master: z.string().optional(),
  linkinfo: z.object({ info_kind: z.string().optional() }).optional(),
});

const addrInfoSchema = z.object({
  family: z.string(),
  local: z.string(),
  prefixlen: z.number().int(),
  scope: z.string().optional(),
});

const addrLinkSchema = z.object({
  ifname: z.string(),
  mtu: z.number().int(),
  addr_info: z.array(addrInfoSchema).default([]),
});

const routeSchema = z.object({
  dst: z.string(),
  dev: z.string().optional(),
  protocol: z.string().optional(),
  scope: z.string().optional(),
  prefsrc: z.string().optional(),
  type: z.string().optional(),
  encap_dst: z.string().optional(),
  gateway: z.string().optional(),
});

/**
 * iproute2 6.1 prints the outer destination of an `encap ip` route as a second "dst" key in the
 * route's object: {"dst":"10.32.2.0/24","encap":"ip","id":1,…,"dst":"192.168.199.2",…}.
 * JSON.parse keeps the last duplicate, which would turn the route into one to the remote node.
 * The key after "encap" is renamed before parsing; [^{}] keeps the match inside one object.
 */
const ENCAP_DST_KEY = /("encap":"ip6?",[^{}]*?)"dst":/g;

function disambiguateEncapDst(stdout: string): string {
  return stdout.replace(ENCAP_DST_KEY, '$1"encap_dst":');
}

function parseArray<T extends z.ZodType>(stdout: string, schema: T, what: string): z.infer<T>[] {
  // `ip -json` prints nothing at all (not `[]`) for some empty listings.
  const text = stdout.trim();
  if (text === '') return [];
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(`${what}: output is not JSON: ${text.slice(0, 200)}`, { cause: error });
  }
  const parsed = z.array(schema).safeParse(data);
  if (!parsed.success) throw new Error(`${what}: unexpected JSON shape: ${parsed.error.message}`);
  return parsed.data;
}

/** Parses `ip [-details] -json link show`. */
export function parseLinks(stdout: string): IpLink[] {
  return parseArray(stdout, linkSchema, 'ip -json link').map((l) => ({
    index: l.ifindex,
    name: l.ifname,
    up: l.flags.includes('UP'),
    flags: l.flags,
    mtu: l.mtu,
    txqueuelen: l.txqlen,
    kind: l.linkinfo?.info_kind,
    master: l.master,
  }));
}

/** Parses `ip -json addr show` into one entry per address (links without addresses drop out). */
export function parseAddresses(stdout: string): IpAddress[] {
  return parseArray(stdout, addrLinkSchema, 'ip -json addr').flatMap((link) =>
    link.addr_info
      .filter(
        (a): a is typeof a & { family: 'inet' | 'inet6' } => a.family === 'inet' || a.family === 'inet6',
      )
      .map((a) => ({
        ifname: link.ifname,
        mtu: link.mtu,
        family: a.family,
        local: a.local,
        prefixLength: a.prefixlen,
        scope: a.scope,
      })),
  );
}

/** Parses `ip -4 -json route show` (without a `dev` filter, which would drop the `dev` field). */
export function parseIpv4Routes(stdout: string): IpRoute[] {
  return parseArray(disambiguateEncapDst(stdout), routeSchema, 'ip -json route').map((r) => ({
    dst: r.dst === 'default' ? 'default' : canonicalCidr(r.dst),
    dev: r.dev,
    protocol: r.protocol ?? 'boot',
    scope: r.scope,
    prefsrc: r.prefsrc,
    type: r.type ?? 'unicast',
    encapDst: r.encap_dst,
    gateway: r.gateway,
  }));
}

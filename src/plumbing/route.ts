/** IPv4 routes of the main table in the process's own network namespace. */
import { CommandError, run } from '../util/exec.js';
import { canonicalCidr } from './cidr.js';
import { type IpRoute, parseIpv4Routes } from './ipjson.js';

export interface RouteSpec {
  cidr: string;
  dev: string;
  /** Preferred source address for traffic the node itself sends along the route. */
  src?: string;
}

export interface RouteSyncPlan {
  /** Routes that are missing or differ (other device or source); applied with `ip route replace`. */
  replace: RouteSpec[];
  /** Destinations of routes on the device that are no longer wanted. */
  remove: string[];
}

export async function listIpv4Routes(): Promise<IpRoute[]> {
  const { stdout } = await run(['ip', '-4', '-json', 'route', 'show', 'table', 'main']);
  return parseIpv4Routes(stdout);
}

export async function listDeviceRoutes(dev: string): Promise<IpRoute[]> {
  return (await listIpv4Routes()).filter((r) => r.dev === dev);
}

function matches(route: IpRoute, spec: RouteSpec): boolean {
  return (
    route.type === 'unicast' &&
    route.dst === canonicalCidr(spec.cidr) &&
    route.dev === spec.dev &&
    route.prefsrc === spec.src
  );
}

/**
 * What it takes to make `dev` carry exactly the wanted routes. Only routes of the kind this module
 * adds (protocol `boot`, iproute2's default) are removed: the kernel's routes for the device's own
 * addresses, non-unicast routes and routes other owners mark with another protocol (the per-pod
 * `proto static` routes of pod-links.ts) are never touched.
 */
export function planRouteSync(
  existing: readonly IpRoute[],
  dev: string,
  wanted: readonly RouteSpec[],
): RouteSyncPlan {
  const wantedDst = new Set(wanted.map((w) => canonicalCidr(w.cidr)));
  return {
    replace: wanted.filter((w) => !existing.some((r) => matches(r, w))),
    remove: existing
      .filter((r) => r.dev === dev && r.type === 'unicast' && r.protocol === 'boot' && !wantedDst.has(r.dst))
      .map((r) => r.dst),
  };
}

function replaceArgv(spec: RouteSpec): string[] {
  const argv = ['ip', 'route', 'replace', canonicalCidr(spec.cidr), 'dev', spec.dev];
  if (spec.src !== undefined) argv.push('src', spec.src);
  return argv;
}

/** Ensures the route exists as given; leaves the table untouched when it already does. */
export async function ensureRoute(spec: RouteSpec): Promise<void> {
  if ((await listIpv4Routes()).some((r) => matches(r, spec))) return;
  await run(replaceArgv(spec));
}

/** Removes the route to `cidr` via `dev` if present; returns whether it was there. */
export async function removeRoute(cidr: string, dev: string): Promise<boolean> {
  const dst = cidr === 'default' ? cidr : canonicalCidr(cidr);
  const present = (await listDeviceRoutes(dev)).some((r) => r.dst === dst);
  if (!present) return false;
  const argv = ['ip', 'route', 'del', dst, 'dev', dev];
  const result = await run(argv, { allowFail: true });
  if (result.code === 0) return true;
  if (!(await listDeviceRoutes(dev)).some((r) => r.dst === dst)) return false;
  throw new CommandError(argv, result.code, result.stderr);
}

/**
 * Makes `dev` carry exactly `wanted` (CIDRs or full specs). New and changed routes are put in
 * place with `ip route replace` before stale ones are removed, so a destination that stays
 * wanted is never without a route, and a destination that moves keeps being routed throughout.
 */
export async function syncDeviceRoutes(
  dev: string,
  wanted: ReadonlyArray<string | Omit<RouteSpec, 'dev'>>,
): Promise<RouteSyncPlan> {
  const specs = wanted.map((w): RouteSpec => (typeof w === 'string' ? { cidr: w, dev } : { ...w, dev }));
  const plan = planRouteSync(await listIpv4Routes(), dev, specs);
  for (const spec of plan.replace) await run(replaceArgv(spec));
  for (const dst of plan.remove) await removeRoute(dst, dev);
  return plan;
}

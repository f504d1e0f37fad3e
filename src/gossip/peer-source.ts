import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import type { Logger } from 'pino';

/**
 * A discovery source: it reports the full set of gossip addresses (`/ip4/<a>/tcp/<p>`) it wants the
 * node to stay connected to, and reports again whenever that set changes. Peer IDs are not needed;
 * the node learns them by dialing. The static `--peers` list is one source; a Kubernetes Node watcher
 * is another.
 */
export interface PeerSource {
  readonly name: string;
  start(onAddresses: (addresses: string[]) => void): void;
  stop(): void;
}

export interface HostPort {
  host: string;
  port: number;
}

const hostnamePattern =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Parses `host[:port]` (IPv4 literal or DNS name). */
export function parsePeerAddress(spec: string, defaultPort: number): HostPort {
  const trimmed = spec.trim();
  const match = /^([^:]+)(?::(\d{1,5}))?$/.exec(trimmed);
  if (match === null) throw new Error(`invalid peer address ${JSON.stringify(spec)}: expected host[:port]`);
  const host = match[1] as string;
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`invalid peer address ${JSON.stringify(spec)}: port out of range`);
  }
  if (!isIPv4(host) && (/^[\d.]+$/.test(host) || !hostnamePattern.test(host))) {
    throw new Error(`invalid peer address ${JSON.stringify(spec)}: not an IPv4 address or host name`);
  }
  return { host, port };
}

export function tcpMultiaddr(ipv4: string, port: number): string {
  return `/ip4/${ipv4}/tcp/${port}`;
}

export type ResolveIPv4 = (host: string) => Promise<string[]>;

export const resolveIPv4WithDns: ResolveIPv4 = async (host) =>
  (await lookup(host, { family: 4, all: true })).map((entry) => entry.address);

export interface StaticPeerSourceOptions {
  defaultPort: number;
  logger: Logger;
  resolve?: ResolveIPv4;
  /** How often host names are resolved again; IPv4 literals never need it. */
  refreshIntervalMs?: number;
}

/** The `--peers` list. Host names are re-resolved periodically; one that fails is retried then. */
export class StaticPeerSource implements PeerSource {
  readonly name = 'static';
  private readonly targets: HostPort[];
  private readonly resolve: ResolveIPv4;
  private readonly refreshIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private lastReported = '';

  constructor(
    specs: readonly string[],
    private readonly options: StaticPeerSourceOptions,
  ) {
    this.targets = specs.map((spec) => parsePeerAddress(spec, options.defaultPort));
    this.resolve = options.resolve ?? resolveIPv4WithDns;
    this.refreshIntervalMs = options.refreshIntervalMs ?? 30_000;
  }

  start(onAddresses: (addresses: string[]) => void): void {
    this.stopped = false;
    const refresh = async (): Promise<void> => {
      const addresses = await this.resolveAll();
      if (this.stopped) return;
      const key = addresses.join(' ');
      if (key !== this.lastReported) {
        this.lastReported = key;
        onAddresses(addresses);
      }
      if (this.targets.some((target) => !isIPv4(target.host))) {
        this.timer = setTimeout(() => void refresh(), this.refreshIntervalMs);
      }
    };
    void refresh();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async resolveAll(): Promise<string[]> {
    const addresses = new Set<string>();
    await Promise.all(
      this.targets.map(async ({ host, port }) => {
        if (isIPv4(host)) {
          addresses.add(tcpMultiaddr(host, port));
          return;
        }
        try {
          for (const ip of await this.resolve(host)) addresses.add(tcpMultiaddr(ip, port));
        } catch (err) {
          this.options.logger.warn({ host, err: (err as Error).message }, 'cannot resolve peer host name');
        }
      }),
    );
    return [...addresses].sort();
  }
}

import type { PathProbe } from '../api/status-report.js';
import type { Logger } from '../util/log.js';
import type { EchoTransport } from './echo-transport.js';
import { probePath } from './path-probe.js';

/** How often the target list is checked: a new peer is probed within this, not a full interval. */
const NEW_TARGET_CHECK_MS = 1_000;

export interface PathMonitorOptions {
  transport: EchoTransport;
  /** The peers' underlay addresses. */
  targets: () => string[];
  /** The first probe size: what a full overlay packet needs. */
  maxSize: number;
  /** Every target is probed again after this long. */
  intervalMs: number;
  timeoutMs: number;
  log: Logger;
  now?: () => number;
}

/** Probes every peer's underlay address once per interval (new peers at once) and keeps the latest result. */
export class PathMonitor {
  private readonly latest = new Map<string, PathProbe>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private current: Promise<void> | undefined;
  private lastFullRoundMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: PathMonitorOptions) {
    this.now = options.now ?? Date.now;
  }

  start(): void {
    this.schedule(0);
  }

  /** Probes the targets that are due: all once an interval has passed, otherwise only new ones. */
  async tick(): Promise<void> {
    const targets = this.options.targets();
    for (const address of this.latest.keys()) if (!targets.includes(address)) this.latest.delete(address);
    const full = this.now() - this.lastFullRoundMs >= this.options.intervalMs;
    if (full) this.lastFullRoundMs = this.now();
    await this.probe(full ? targets : targets.filter((t) => !this.latest.has(t)));
  }

  results(): PathProbe[] {
    return [...this.latest.values()].sort((a, b) => (a.address < b.address ? -1 : 1));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current?.catch(() => undefined);
    this.options.transport.close();
  }

  private async probe(addresses: string[]): Promise<void> {
    const results = await Promise.all(
      addresses.map((address) =>
        probePath(this.options.transport, address, {
          maxSize: this.options.maxSize,
          timeoutMs: this.options.timeoutMs,
          now: this.now,
        }),
      ),
    );
    if (this.stopped) return;
    const still = new Set(this.options.targets());
    for (const result of results) if (still.has(result.address)) this.latest.set(result.address, result);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.current = this.tick()
        .catch((error: unknown) => this.options.log.warn({ err: error }, 'path probe failed'))
        .finally(() => this.schedule(NEW_TARGET_CHECK_MS));
    }, delayMs);
    this.timer.unref();
  }
}

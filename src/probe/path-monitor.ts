import type { PathProbe } from '../api/status-report.js';
import type { Logger } from '../util/log.js';
import type { EchoTransport } from './echo-transport.js';
import { probePath } from './path-probe.js';

export interface PathMonitorOptions {
  transport: EchoTransport;
  /** The peers' underlay addresses, asked for at every round. */
  targets: () => string[];
  /** The local underlay MTU: the first probe size. */
  maxSize: number;
  intervalMs: number;
  timeoutMs: number;
  log: Logger;
  now?: () => number;
}

/** Probes every peer's underlay address once per interval and keeps the latest result of each. */
export class PathMonitor {
  private readonly latest = new Map<string, PathProbe>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private current: Promise<void> | undefined;

  constructor(private readonly options: PathMonitorOptions) {}

  start(): void {
    this.schedule(0);
  }

  /** One probe of every current target (the ones no longer listed are forgotten). */
  async round(): Promise<void> {
    const targets = this.options.targets();
    for (const address of this.latest.keys()) if (!targets.includes(address)) this.latest.delete(address);
    const results = await Promise.all(
      targets.map((address) =>
        probePath(this.options.transport, address, {
          maxSize: this.options.maxSize,
          timeoutMs: this.options.timeoutMs,
          now: this.options.now,
        }),
      ),
    );
    if (this.stopped) return;
    const still = new Set(this.options.targets());
    for (const result of results) if (still.has(result.address)) this.latest.set(result.address, result);
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

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.current = this.round()
        .catch((error: unknown) => this.options.log.warn({ err: error }, 'path probe round failed'))
        .finally(() => this.schedule(this.options.intervalMs));
    }, delayMs);
    this.timer.unref();
  }
}

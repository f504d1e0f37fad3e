import type { PollHandle, WeftDpAddon } from '../native/addon.js';

/**
 * A file descriptor owned by the addon, with level-triggered readiness polling and a close that
 * makes later use an error (after close the fd number may already belong to another file).
 */
export class PolledFd {
  private fd: number;
  private poll: PollHandle | undefined;

  constructor(
    private readonly dp: WeftDpAddon,
    fd: number,
    private readonly describe: string,
  ) {
    this.fd = fd;
  }

  /** The fd for a call into the addon; throws once closed. */
  get open(): number {
    if (this.fd < 0) throw new Error(`${this.describe} is closed`);
    return this.fd;
  }

  /**
   * Calls `onReady` whenever the fd is readable, replacing any earlier callback. A poll error is
   * not passed on: the next read reports the real errno (or clears a transient socket error).
   */
  onReadable(onReady: () => void): void {
    const fd = this.open;
    this.stopPolling();
    this.poll = this.dp.pollStart(fd, () => onReady());
  }

  close(): void {
    if (this.fd < 0) return;
    this.stopPolling();
    const fd = this.fd;
    this.fd = -1;
    this.dp.close(fd);
  }

  private stopPolling(): void {
    if (this.poll === undefined) return;
    this.dp.pollStop(this.poll);
    this.poll = undefined;
  }
}

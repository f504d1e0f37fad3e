import type { Interval } from './address.js';
import { lowerBound, usablePart } from './space.js';

/**
 * The addresses this peer has handed out, keyed by container ID. Lookups by ID and by address are
 * O(1); the ascending address list makes first-fit and range counts O(log n).
 */
export class AllocationTable {
  private readonly byContainer = new Map<string, number>();
  private readonly byAddress = new Map<number, string>();
  private readonly ascending: number[] = [];

  get size(): number {
    return this.byContainer.size;
  }

  /** Ascending addresses; do not mutate. */
  get addresses(): readonly number[] {
    return this.ascending;
  }

  addressOf(containerId: string): number | undefined {
    return this.byContainer.get(containerId);
  }

  holderOf(address: number): string | undefined {
    return this.byAddress.get(address);
  }

  entries(): Array<{ containerId: string; address: number }> {
    return this.ascending.map((address) => ({ containerId: this.byAddress.get(address) as string, address }));
  }

  add(containerId: string, address: number): void {
    if (this.byContainer.has(containerId)) throw new Error(`container ${containerId} already has an address`);
    if (this.byAddress.has(address)) throw new Error(`address ${address} is already allocated`);
    this.byContainer.set(containerId, address);
    this.byAddress.set(address, containerId);
    this.ascending.splice(lowerBound(this.ascending, address), 0, address);
  }

  remove(containerId: string): number | undefined {
    const address = this.byContainer.get(containerId);
    if (address === undefined) return undefined;
    this.byContainer.delete(containerId);
    this.byAddress.delete(address);
    this.ascending.splice(lowerBound(this.ascending, address), 1);
    return address;
  }

  /** The lowest usable address of `blocks` (ascending) that nobody holds. */
  firstFree(blocks: readonly Interval[]): number | undefined {
    for (const block of blocks) {
      const usable = usablePart(block);
      if (usable === undefined) continue;
      let candidate = usable.start;
      let k = lowerBound(this.ascending, candidate);
      while (candidate < usable.end && this.ascending[k] === candidate) {
        candidate++;
        k++;
      }
      if (candidate < usable.end) return candidate;
    }
    return undefined;
  }
}

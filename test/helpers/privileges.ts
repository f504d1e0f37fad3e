import { describe } from 'vitest';

/**
 * Tests that need root (network namespaces, TUN, raw sockets) run through `describeAsRoot`.
 * Locally, without root, they are skipped with the reason printed. Under CI=true a missing
 * privilege is an error, never a silent skip.
 */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export const inCI = process.env.CI === 'true';

export function describeAsRoot(name: string, body: () => void): void {
  if (isRoot) {
    describe(name, body);
    return;
  }
  if (inCI) {
    describe(name, () => {
      throw new Error(`"${name}" needs root (network namespaces); CI must run it as root`);
    });
    return;
  }
  console.warn(`skipping "${name}": needs root for network namespaces`);
  describe.skip(name, body);
}

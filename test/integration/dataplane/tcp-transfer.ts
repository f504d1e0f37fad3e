import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { NetnsGroup } from '../../helpers/netns.js';
import { downloadSha256, serveFile } from '../../helpers/services.js';
import type { TwoNodeTopology } from '../../helpers/topology.js';

/** Serves `bytes` random bytes from each pod in turn; the other pod must download them intact (SHA-256). */
export async function expectTcpBothWays(
  group: NetnsGroup,
  topo: TwoNodeTopology,
  bytes: number,
): Promise<void> {
  const [p1, p2] = topo.pods;
  for (const [server, client] of [
    [p2, p1],
    [p1, p2],
  ] as const) {
    const served = await serveFile(group, server.shortName, server.ip, randomBytes(bytes));
    try {
      expect(
        await downloadSha256(group, client.shortName, served.url),
        `${client.shortName} → ${server.shortName}`,
      ).toBe(served.sha256);
    } finally {
      await served.stop();
    }
  }
}

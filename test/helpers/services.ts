import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './agent.js';
import type { NetnsGroup } from './netns.js';

/** Waits until something listens on TCP `port` inside a namespace of the group. */
export function waitForTcpListen(
  group: NetnsGroup,
  ns: string,
  port: number,
  timeoutMs = 5000,
): Promise<void> {
  return waitFor(
    async () =>
      (await group.exec(ns, ['ss', '-Hltn', `sport = :${port}`], { allowFail: true })).stdout.trim() !== '',
    timeoutMs,
    `nothing listens on TCP ${port} in ${ns}`,
  );
}

export interface ServedFile {
  url: string;
  sha256: string;
  stop(): Promise<void>;
}

/** Serves `content` with busybox httpd from a pod namespace; stop() ends httpd and removes the file. */
export async function serveFile(
  group: NetnsGroup,
  ns: string,
  address: string,
  content: Buffer,
  port = 8080,
): Promise<ServedFile> {
  const dir = `/tmp/${group.prefix}-${ns}-www`;
  await group.exec(ns, ['mkdir', '-p', dir]);
  writeFileSync(`${dir}/blob`, content);
  const httpd = group.spawn(ns, ['busybox', 'httpd', '-f', '-p', String(port), '-h', dir]);
  const stop = async () => {
    await group.stop(httpd);
    await group.exec(ns, ['rm', '-rf', dir]);
  };
  try {
    await waitForTcpListen(group, ns, port);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: `http://${address}:${port}/blob`,
    sha256: createHash('sha256').update(content).digest('hex'),
    stop,
  };
}

/** Downloads with busybox wget (under `timeout`: busybox's own -T crashes) and returns the SHA-256. */
export async function downloadSha256(
  group: NetnsGroup,
  ns: string,
  url: string,
  timeoutSec = 20,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-download-'));
  try {
    const file = join(dir, 'blob');
    await group.exec(ns, ['timeout', String(timeoutSec), 'busybox', 'wget', '-q', '-O', file, url], {
      timeoutMs: (timeoutSec + 10) * 1000,
    });
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs iperf3 from `clientNs` to a one-shot server in `serverNs`; returns iperf3's JSON `end` section. */
export async function iperf3(
  group: NetnsGroup,
  serverNs: string,
  clientNs: string,
  serverAddress: string,
  args: string[] = ['-t', '3'],
): Promise<{ sum_received: { bits_per_second: number }; sum_sent: { retransmits?: number } }> {
  const server = group.spawn(serverNs, ['iperf3', '-s', '-1', '-p', '5201']);
  try {
    await waitForTcpListen(group, serverNs, 5201);
    const result = await group.exec(clientNs, ['iperf3', '-c', serverAddress, '-p', '5201', '-J', ...args], {
      timeoutMs: 60_000,
    });
    return JSON.parse(result.stdout).end;
  } finally {
    await group.stop(server);
  }
}

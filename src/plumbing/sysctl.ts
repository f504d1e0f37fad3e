/**
 * Kernel parameters through /proc/sys. The net.* entries there belong to the network namespace
 * of the process that opens them, so these functions act on the namespace the agent runs in.
 */
import { readFile, writeFile } from 'node:fs/promises';

const SYSCTL_ROOT = '/proc/sys';

/**
 * Path of a sysctl given as segments. Segments, not a dotted key: interface names may contain
 * dots (eth0.100), which the dotted sysctl(8) notation can only express by swapping in slashes.
 */
export function sysctlPath(segments: readonly string[]): string {
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..' || s.includes('/'))
      throw new RangeError(`bad sysctl segment "${s}"`);
  }
  return `${SYSCTL_ROOT}/${segments.join('/')}`;
}

export async function readSysctl(segments: readonly string[]): Promise<string> {
  return (await readFile(sysctlPath(segments), 'utf8')).trim();
}

/** Writes a value unless it is already set, then reads it back to confirm the kernel took it. */
export async function ensureSysctl(segments: readonly string[], value: string): Promise<void> {
  if ((await readSysctl(segments)) === value) return;
  await writeFile(sysctlPath(segments), value);
  const now = await readSysctl(segments);
  if (now !== value) throw new Error(`${sysctlPath(segments)} is ${now} after writing ${value}`);
}

export async function enableIpForwarding(): Promise<void> {
  await ensureSysctl(['net', 'ipv4', 'ip_forward'], '1');
}

export async function ipForwardingEnabled(): Promise<boolean> {
  return (await readSysctl(['net', 'ipv4', 'ip_forward'])) === '1';
}

/** 0 = no source validation, 1 = strict, 2 = loose. */
export type RpFilterMode = 0 | 1 | 2;

/**
 * Reverse-path filtering for an overlay device. Use loose (2): packets the agent writes into
 * the TUN carry sources the node routes elsewhere (a remote node's underlay address, traffic
 * masqueraded on the far side, a pod address the local routes do not point back at the TUN yet),
 * which strict mode drops. Loose still drops sources with no route at all. Not 0: the kernel
 * applies max(conf.all.rp_filter, conf.<dev>.rp_filter), so 0 on the device is overridden when a
 * distribution sets conf.all to 1, while 2 is the effective value whatever conf.all holds.
 */
export async function setRpFilter(dev: string, mode: RpFilterMode): Promise<void> {
  await ensureSysctl(['net', 'ipv4', 'conf', dev, 'rp_filter'], String(mode));
}

export async function readRpFilter(dev: string): Promise<RpFilterMode> {
  const value = Number(await readSysctl(['net', 'ipv4', 'conf', dev, 'rp_filter']));
  if (value !== 0 && value !== 1 && value !== 2) throw new Error(`rp_filter of ${dev} is ${value}`);
  return value;
}

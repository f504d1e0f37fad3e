import { readFile } from 'node:fs/promises';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { dataplaneFeaturesSchema } from '../dataplane/features.js';
import { nodeNameSchema } from '../util/node-name.js';

/**
 * The static peer file: this node and its peers with fixed pod ranges. It stands in for the
 * control plane until gossip and IPAM take over, and stays useful for labs and debugging.
 */

const ipv4 = z
  .string()
  .refine((s) => ipaddr.IPv4.isValidFourPartDecimal(s), 'must be an IPv4 address like 192.168.1.2');
const ipv4Cidr = z.string().refine((s) => {
  try {
    const [address, prefix] = ipaddr.parseCIDR(s);
    return (
      address.kind() === 'ipv4' &&
      ipaddr.IPv4.networkAddressFromCIDR(s).toString() === address.toString() &&
      prefix <= 30
    );
  } catch {
    return false;
  }
}, 'must be an IPv4 network in CIDR form with no host bits set and a prefix of /30 or shorter, like 10.32.1.0/24');
const nodeName = nodeNameSchema;
const port = z.number().int().min(1).max(65535);

const peerSchema = z.strictObject({
  name: nodeName,
  underlayAddress: ipv4,
  podCidrs: z.array(ipv4Cidr).min(1),
  port: port.optional(),
  /** Data-plane features the peer supports, e.g. ["partial-csum"] (src/dataplane/features.ts). */
  features: dataplaneFeaturesSchema.optional(),
});

export const staticPeerFileSchema = z.strictObject({
  node: z.strictObject({
    name: nodeName,
    underlayAddress: ipv4,
    podCidrs: z.array(ipv4Cidr).min(1),
  }),
  peers: z.array(peerSchema),
});

export type StaticPeerFile = z.infer<typeof staticPeerFileSchema>;
export type StaticPeer = z.infer<typeof peerSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export async function loadStaticPeerFile(path: string): Promise<StaticPeerFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read peer file ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`peer file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return parseStaticPeerFile(json, path);
}

export function parseStaticPeerFile(json: unknown, origin = 'peer file'): StaticPeerFile {
  const result = staticPeerFileSchema.safeParse(json);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `  ${issue.path.join('.') || '(top level)'}: ${issue.message}`,
    );
    throw new ConfigError(`${origin} is invalid; fix these fields:\n${problems.join('\n')}`);
  }
  const file = result.data;
  const names = [file.node.name, ...file.peers.map((p) => p.name)];
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate) throw new ConfigError(`${origin}: node name ${duplicate} appears more than once`);
  const addresses = [file.node.underlayAddress, ...file.peers.map((p) => p.underlayAddress)];
  const sharedAddress = addresses.find((a, i) => addresses.indexOf(a) !== i);
  if (sharedAddress)
    throw new ConfigError(`${origin}: underlay address ${sharedAddress} appears more than once`);
  return file;
}

import { z } from 'zod';

/**
 * A node's name, as Kubernetes names Node objects: a DNS-1123 subdomain (lower-case letters,
 * digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters).
 * Gossip records, IPAM peers, the peer file and the command line all use this one rule.
 */
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function isNodeName(name: string): boolean {
  return NODE_NAME.test(name);
}

export const NODE_NAME_RULE = 'a DNS-1123 name: lower-case letters, digits, - and ., at most 253 characters';

export const nodeNameSchema = z.string().regex(NODE_NAME, `node name must be ${NODE_NAME_RULE}`);

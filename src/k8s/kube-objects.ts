import { z } from 'zod';

/**
 * The few fields of Kubernetes objects that weft reads, checked on arrival (the API server's JSON
 * carries much more; the rest is dropped). A response without them is an error, not a guess.
 */

const objectMeta = z.object({
  name: z.string(),
  namespace: z.string().optional(),
  resourceVersion: z.string().optional(),
});

export const nodeSchema = z.object({
  metadata: objectMeta,
  status: z
    .object({
      addresses: z.array(z.object({ type: z.string(), address: z.string() })).optional(),
    })
    .optional(),
});
export type KubeNode = z.infer<typeof nodeSchema>;

export const nodeListSchema = z.object({
  metadata: z.object({ resourceVersion: z.string() }),
  items: z.array(nodeSchema),
});
export type KubeNodeList = z.infer<typeof nodeListSchema>;

export const configMapSchema = z.object({
  apiVersion: z.literal('v1').optional(),
  kind: z.literal('ConfigMap').optional(),
  metadata: objectMeta,
  data: z.record(z.string(), z.string()).optional(),
});
export type KubeConfigMap = z.infer<typeof configMapSchema>;

/** The body of a failed request, and the object of a watch ERROR event. */
export const statusSchema = z.object({
  code: z.number().optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
});
export type KubeStatus = z.infer<typeof statusSchema>;

/** One line of a watch stream, before its object is checked against the watched kind. */
export const watchLineSchema = z.object({
  type: z.enum(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']),
  object: z.unknown(),
});

/** A BOOKMARK carries only the resourceVersion the stream has reached. */
export const bookmarkSchema = z.object({ metadata: z.object({ resourceVersion: z.string() }) });

export type WatchEvent<T> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: T }
  | { type: 'BOOKMARK'; resourceVersion: string };

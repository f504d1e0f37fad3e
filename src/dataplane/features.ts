import { z } from 'zod';

/**
 * Data-plane features a node announces to its peers (in its topology record, or for it in a static
 * peer file). A sender uses a feature with a peer only when that peer announced it, so that a kernel
 * VXLAN-GPE peer or an older weft keeps receiving plain datagrams.
 */
export const DataplaneFeature = {
  /**
   * The node completes inner TCP/UDP checksums left partial by the sender (GPE partial-checksum
   * bit): it writes such packets to its TUN as CHECKSUM_PARTIAL.
   */
  PartialChecksums: 'partial-csum',
} as const;
export type DataplaneFeature = (typeof DataplaneFeature)[keyof typeof DataplaneFeature];

export function acceptsPartialChecksums(features: readonly string[] | undefined): boolean {
  return features?.includes(DataplaneFeature.PartialChecksums) ?? false;
}

/** A feature list as it travels (topology record, peer file, configuration): unknown names are kept. */
export const dataplaneFeaturesSchema = z.array(z.string().min(1).max(32)).max(16);

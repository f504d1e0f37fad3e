import type { TopologyRecord } from '../../../src/gossip/records.js';

export const peerId = '12D3KooWEvTfe4oPkkJHsysHwM3VgsBhSUVQUTAehh8Rp8VeArm7';
export const otherPeerId = '12D3KooWNYdYh77nowg4i8QWB26RmTe8NT3sAQEcRvJ74anJW8by';

export function record(overrides: Partial<TopologyRecord> = {}): TopologyRecord {
  return {
    v: 1,
    name: 'node-a',
    peerId,
    underlay: '10.0.0.1',
    gossipPort: 6783,
    dataPort: 4790,
    version: '0.1.0',
    incarnation: 1_700_000_000_000,
    seq: 0,
    sentAtMs: 1_700_000_000_000,
    ...overrides,
  };
}

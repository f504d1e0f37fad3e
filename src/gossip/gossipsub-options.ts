import type { GossipsubOpts } from '@libp2p/gossipsub';

/**
 * Dedup key for a received message, computed before its signature is checked. Without it gossipsub
 * verifies every duplicate (a node gets each record about once per mesh neighbour), which made Ed25519
 * verification the top CPU cost. Only messages that passed validation enter this cache, so a forged
 * copy reusing a sender's (from, seqno) is verified, rejected, and cannot shadow the genuine one.
 */
export function fastMessageId(message: { from?: Uint8Array; seqno?: Uint8Array }): string {
  const from = message.from === undefined ? '' : Buffer.from(message.from).toString('base64');
  const seqno = message.seqno === undefined ? '' : Buffer.from(message.seqno).toString('base64');
  return `${from}/${seqno}`;
}

/** gossipsub settings for a small, trusted control plane (see the notes on gossipsub with few peers). */
export function gossipsubOptions(mesh: { D: number; Dlo: number; Dhi: number }): Partial<GossipsubOpts> {
  return {
    globalSignaturePolicy: 'StrictSign',
    emitSelf: false,
    floodPublish: true,
    // A lone node must not throw; what it publishes is lost, and the periodic republish makes up for it.
    allowPublishToZeroTopicPeers: true,
    fastMsgIdFn: fastMessageId,
    D: mesh.D,
    Dlo: mesh.Dlo,
    Dhi: mesh.Dhi,
    Dscore: Math.min(4, mesh.D),
    Dout: Math.min(2, mesh.Dlo - 1, Math.floor(mesh.D / 2)),
    // IHAVE gossip to this many peers outside the mesh each second (default 6): a repair path that
    // our periodic records make mostly redundant.
    Dlazy: mesh.Dlo,
    // IDONTWANT saves bandwidth in meshes that carry large messages; ours are a few KB at most, and
    // announcing each one to every mesh peer was a twentieth of an idle agent's CPU (20 agents).
    idontwantMinDataSize: 64 * 1024,
    // Nodes behind one IP (tests, NAT) must not be scored into the graylist.
    scoreParams: { IPColocationFactorWeight: 0 },
  };
}

export { type BackoffPolicy, backoffDelayMs, defaultBackoffPolicy } from './backoff.js';
export {
  type ChannelCounters,
  type ChannelLimits,
  channelProtocol,
  channelTopic,
  defaultChannelLimits,
  type GossipChannel,
  TopicChannel,
} from './channel.js';
export {
  DEFAULT_DATA_PORT,
  DEFAULT_GOSSIP_PORT,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_PEER_TIMEOUT_MS,
  DEFAULT_STATE_DIR,
  type GossipConfig,
  type GossipConfigInput,
  gossipConfigSchema,
  heartbeatSkipWindowMs,
  longestRecordGapMs,
  parseGossipConfig,
} from './config.js';
export type { ConnectionView } from './connection-view.js';
export { type ConnectionState, chooseLearnedPeersToDial } from './connections.js';
export {
  IDENTITY_FILE_NAME,
  IdentityFileError,
  type LoadedIdentity,
  loadOrCreateIdentity,
} from './identity.js';
export { GossipNode, type GossipNodeEvents, type PeerView, TOPOLOGY_TOPIC } from './node.js';
export {
  type HostPort,
  type PeerSource,
  parsePeerAddress,
  StaticPeerSource,
  type StaticPeerSourceOptions,
  tcpMultiaddr,
} from './peer-source.js';
export { ClusterSecretError, loadClusterSecret, pskFromClusterSecret } from './psk.js';
export type { RecordRejectReason, TopologyRecord } from './records.js';
export { ChannelRequestError, type RequestErrorCode } from './request-framing.js';
export type { KnownPeer, Reachability } from './topology.js';

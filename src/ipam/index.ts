/** weft IPAM: the ownership ring, seeding, space donation, per-pod allocation, persistence and status. */
export {
  formatAddress,
  formatCidr,
  type Interval,
  intervalToCidrs,
  parseAddress,
  parseCidr,
} from './address.js';
export { IpamStateError } from './errors.js';
export {
  BROADCAST,
  IPAM_PROTOCOL_VERSION,
  type IpamMessage,
  type IpamMessageType,
  type Outbound,
  type ParsedMessage,
  parseIpamMessage,
} from './messages.js';
export {
  type AllocateResult,
  DEFAULT_CLUSTER_RANGE,
  DEFAULT_IPAM_TIMING,
  DEFAULT_MIN_DONATION,
  GATEWAY_ID,
  type IpamConfig,
  IpamNode,
  type IpamTiming,
  type RmpeerResult,
  type SeedingState,
} from './node.js';
export {
  type ExpectedIdentity,
  IPAM_STATE_FILE,
  ipamStatePath,
  loadIpamState,
  saveIpamState,
} from './persistence.js';
export { ownedRanges, type Ring, type RingEntry } from './ring.js';
export { quorumOf, type SeedingMode, seedIdFor } from './seeding.js';
export { type IpamConflict, type IpamSnapshot, parseSnapshot } from './snapshot.js';
export {
  describeIpamState,
  type IpamOwnerStatus,
  type IpamState,
  type IpamStatus,
  ipamStatus,
} from './status.js';

/** The persisted IPAM state cannot be used as it is; the message says what is wrong and what to do. */
export class IpamStateError extends Error {
  override readonly name = 'IpamStateError';
}

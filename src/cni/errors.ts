/** CNI error codes (spec 1.1.0, "Error"): 1–99 are the spec's own, 100+ are weft's. */
export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodingFailure: 6,
  invalidNetworkConfig: 7,
  tryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADD now. */
  notAvailable: 50,
  /** STATUS: not available, and existing pods may have limited connectivity (the agent is down). */
  limitedConnectivity: 51,
  /** Setting up or tearing down the pod's network failed on the node. */
  plumbingFailed: 100,
} as const;

export type CniErrorCode = (typeof CniCode)[keyof typeof CniCode];

/** A failure to report to the runtime as the spec's error JSON. */
export class CniError extends Error {
  override name = 'CniError';
  constructor(
    readonly code: number,
    message: string,
    readonly details?: string,
  ) {
    super(message);
  }
}

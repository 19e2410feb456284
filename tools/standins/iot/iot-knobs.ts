/** The IoT stand-in's knobs: set in the constructor, changed with `configure` or `POST /_standin/config`. */
export interface IotStandInKnobs {
  latencyMs: number;
  /** Sustained requests per second for the whole account before ThrottlingException; 0 = unlimited. */
  tps: number;
  /** Token-bucket capacity (requests allowed at once after a quiet spell); defaults to one second of tps. */
  burst?: number;
  /** Per-operation quotas on top of `tps` (AWS IoT publishes them per API), e.g. `{ RegisterCertificate: 10 }`. */
  operationTps?: Record<string, number>;
  /** Probability in [0, 1] that any call is throttled regardless of rate. */
  throttleProbability: number;
  failureMode: 'none' | 'http503' | 'drop';
  /**
   * Answers to lose, by operation: the next N successful calls of the operation take effect (the registration is
   * done) and then the client sees, instead of the answer, a connection reset (`lostResponseAs: 'reset'`, the default)
   * or an HTTP 500 InternalFailureException. Each lost answer counts one down; `lostResponses` in the stats.
   */
  loseResponses?: Record<string, number>;
  lostResponseAs?: 'reset' | 'http500';
  /**
   * Several accounts and regions in one stand-in (docs/iot-targets.md): access key id → account id. When set, each
   * call is answered by the (account, region) its SigV4 credentials name (the access key id, else the stand-in's own
   * account; the region of the credential scope), each with its own state, knobs and throttling. Unset: one account.
   */
  accessKeys?: Record<string, string>;
  /**
   * Conflicts to answer, by operation: the next N calls of the operation are refused with
   * ConflictingResourceUpdateException (HTTP 409, "two pending updates cause a conflict") and change nothing. Each
   * counts one down; `conflicts` in the stats.
   */
  conflictingUpdates?: Record<string, number>;
}

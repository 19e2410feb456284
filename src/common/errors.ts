/**
 * Typed domain errors with stable codes. Domain code throws these; the ProblemFilter maps them to
 * RFC 9457 problem+json. Messages must never contain secrets, key material or internal details.
 */
export class DomainError extends Error {
  /**
   * Set on failures no retry can remove (a hard AWS limit, a registration that belongs to someone else): the outbox
   * dead-letters such a job at once instead of backing off. Never part of the problem body.
   */
  final = false;

  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** Marks the error as one no retry can remove (see DomainError.final) and returns it. */
export function finalError(error: DomainError): DomainError {
  error.final = true;
  return error;
}

export function isFinal(error: unknown): boolean {
  return error instanceof DomainError && error.final;
}

/** Makes the error of one code; its `code` and `status` are readable too (the OpenAPI document lists them per route). */
export interface ErrorKind {
  (message: string, extra?: Record<string, unknown>): DomainError;
  readonly code: string;
  readonly status: number;
}

const make = (code: string, status: number): ErrorKind =>
  Object.assign((message: string, extra?: Record<string, unknown>): DomainError => new DomainError(code, status, message, extra), { code, status });

/** Every code the API can answer with, and its HTTP status. Add new codes here: the OpenAPI enum of codes follows. */
export const Errors = {
  validation: make('VALIDATION_FAILED', 400),
  malformedJson: make('MALFORMED_JSON', 400),
  bodyTooDeep: make('BODY_TOO_DEEP', 400),
  bodyTooWide: make('BODY_TOO_WIDE', 400),
  // Refused by the HTTP layer before routing (see common/http-errors.ts).
  invalidUrl: make('INVALID_URL', 400),
  malformedRequest: make('MALFORMED_REQUEST', 400),
  requestAborted: make('REQUEST_ABORTED', 400),
  requestTimeout: make('REQUEST_TIMEOUT', 408),
  uriTooLong: make('URI_TOO_LONG', 414),
  headersTooLarge: make('HEADERS_TOO_LARGE', 431),
  invalidCursor: make('INVALID_CURSOR', 400),
  invalidCsr: make('INVALID_CSR', 400),
  csrSignatureInvalid: make('CSR_SIGNATURE_INVALID', 400),
  unsupportedKey: make('UNSUPPORTED_KEY', 422),
  weakSignatureAlgorithm: make('WEAK_SIGNATURE_ALGORITHM', 422),
  invalidSubject: make('INVALID_SUBJECT', 422),
  sanNotAllowed: make('SAN_NOT_ALLOWED', 422),
  keyNotAllowed: make('KEY_NOT_ALLOWED', 422),
  profileNotFound: make('PROFILE_NOT_FOUND', 422),
  validityTooLong: make('VALIDITY_EXCEEDS_PROFILE', 422),
  pathLengthExceeded: make('PATH_LENGTH_EXCEEDED', 422),
  parentRequired: make('PARENT_AUTHORITY_REQUIRED', 422),
  keyBackendNotConfigured: make('KEY_BACKEND_NOT_CONFIGURED', 422),
  keySpecMismatch: make('KEY_SPEC_MISMATCH', 422),
  kmsKeyNotSuitable: make('KMS_KEY_NOT_SUITABLE', 422),
  /** The key backend (a PKCS #11 token) cannot make a key of the requested spec. */
  keySpecNotSupported: make('KEY_SPEC_NOT_SUPPORTED', 422),
  /** A token key offered for adoption is missing, ambiguous, extractable or cannot sign. */
  pkcs11KeyNotSuitable: make('PKCS11_KEY_NOT_SUITABLE', 422),
  authorityKeyInUse: make('AUTHORITY_KEY_IN_USE', 409),
  authorityKeyUnusable: make('AUTHORITY_KEY_UNUSABLE', 409),
  /** An offline root outside an operator's signing window (docs/key-ceremony.md). */
  authorityOffline: make('AUTHORITY_OFFLINE', 409),
  /** A signing window asked for an authority that is not offline. */
  authorityNotOffline: make('AUTHORITY_NOT_OFFLINE', 409),
  authorityNotFound: make('AUTHORITY_NOT_FOUND', 404),
  authorityNotActive: make('AUTHORITY_NOT_ACTIVE', 409),
  authorityExpired: make('AUTHORITY_EXPIRED', 409),
  authorityUsageMismatch: make('AUTHORITY_USAGE_MISMATCH', 422),
  authorityIsRoot: make('AUTHORITY_IS_ROOT', 422),
  leafIssuanceNotAllowed: make('LEAF_ISSUANCE_NOT_ALLOWED', 422),
  certificateNotFound: make('CERTIFICATE_NOT_FOUND', 404),
  certificateAlreadyRevoked: make('CERTIFICATE_ALREADY_REVOKED', 409),
  /** A claim certificate is revoked with its claim (POST /v1/claims/{id}/revoke), never on its own. */
  useClaimRevocation: make('USE_CLAIM_REVOCATION', 409),
  apiKeyNotFound: make('API_KEY_NOT_FOUND', 404),
  unauthenticated: make('UNAUTHENTICATED', 401),
  forbidden: make('FORBIDDEN', 403),
  notFound: make('NOT_FOUND', 404),
  payloadTooLarge: make('PAYLOAD_TOO_LARGE', 413),
  unsupportedMediaType: make('UNSUPPORTED_MEDIA_TYPE', 415),
  keyBackendUnavailable: make('KEY_BACKEND_UNAVAILABLE', 503),
  keyBackendThrottled: make('KEY_BACKEND_THROTTLED', 503),
  /** A new KMS key was not usable within KMS_NEW_KEY_AUTH_WAIT_MS (tag-based authorization is eventually consistent). */
  kmsNewKeyNotAuthorized: make('KMS_NEW_KEY_NOT_AUTHORIZED', 503),
  /** An AWS quota or hard limit (LimitExceededException): not throttling, so retrying does not help. */
  awsLimitExceeded: make('AWS_LIMIT_EXCEEDED', 409),
  notReady: make('NOT_READY', 503),
  /** The crypto threads (CRYPTO_THREADS) could not take the task: one died under it, or too many tasks wait. Retry. */
  cryptoThreadsUnavailable: make('CRYPTO_THREADS_UNAVAILABLE', 503),
  /**
   * The database lists fewer revocations than a CRL this service already published (a restore of an older backup):
   * no new CRL is published until an operator acts (docs/operations.md "Restoring an older database").
   */
  crlRollbackDetected: make('CRL_ROLLBACK_DETECTED', 503),
  /** Reading or encoding a CRL's entries failed (its worker thread): nothing was published; the next request tries again. */
  crlBuildFailed: make('CRL_BUILD_FAILED', 503),
  iotNotConfigured: make('IOT_NOT_CONFIGURED', 422),
  iotRegistrationNotFound: make('IOT_REGISTRATION_NOT_FOUND', 404),
  iotAlreadyRegistered: make('IOT_ALREADY_REGISTERED', 409),
  iotConflict: make('IOT_CONFLICT', 409),
  iotTargetNotFound: make('IOT_TARGET_NOT_FOUND', 404),
  iotTargetExists: make('IOT_TARGET_EXISTS', 409),
  iotTargetInUse: make('IOT_TARGET_IN_USE', 409),
  /** Two targets naming one AWS account and region would make a move between them disable the device (docs/iot-targets.md). */
  iotTargetDuplicateAccount: make('IOT_TARGET_DUPLICATE_ACCOUNT', 409),
  /** A JITR event from an AWS account where the CA has no registration of ours (docs/iot-targets.md). */
  iotEventUnknownTarget: make('IOT_EVENT_UNKNOWN_TARGET', 422),
  /** A CA may be registered in DEFAULT mode by one AWS account per region (docs/iot-targets.md). */
  iotDefaultModeTaken: make('IOT_DEFAULT_MODE_TAKEN', 409),
  iotRefused: make('IOT_REQUEST_REFUSED', 502),
  iotThrottled: make('IOT_THROTTLED', 503),
  iotUnavailable: make('IOT_UNAVAILABLE', 503),
  // Factory claims and the exchange.
  claimNotFound: make('CLAIM_NOT_FOUND', 404),
  claimAlreadyRevoked: make('CLAIM_ALREADY_REVOKED', 409),
  invalidClaim: make('INVALID_CLAIM', 422),
  invalidAllowlist: make('INVALID_ALLOWLIST', 400),
  allowlistUploadsBusy: make('ALLOWLIST_UPLOADS_BUSY', 503),
  /** The upload's staging list was retired under it (reclaimed as abandoned): nothing changed; upload again. */
  allowlistUploadSuperseded: make('ALLOWLIST_UPLOAD_SUPERSEDED', 409),
  // Station authentication (401s are counted in metrics, never audited).
  tokenInvalid: make('TOKEN_INVALID', 401),
  tokenExpired: make('TOKEN_EXPIRED', 401),
  tokenReplayed: make('TOKEN_REPLAYED', 401),
  tokenAudienceMismatch: make('TOKEN_AUDIENCE_MISMATCH', 401),
  tokenSignatureInvalid: make('TOKEN_SIGNATURE_INVALID', 401),
  claimCertificateUntrusted: make('CLAIM_CERTIFICATE_UNTRUSTED', 401),
  certificateUntrusted: make('CERTIFICATE_UNTRUSTED', 401),
  notADeviceCertificate: make('NOT_A_DEVICE_CERTIFICATE', 401),
  notAClaimCertificate: make('NOT_A_CLAIM_CERTIFICATE', 401),
  claimCertificateExpired: make('CLAIM_CERTIFICATE_EXPIRED', 401),
  /** AWS IoT certificate provider (docs/aws-fleet-provisioning.md): the principal is not a claim certificate of ours. */
  awsPrincipalNotAClaim: make('AWS_PRINCIPAL_NOT_A_CLAIM', 422),
  // Refusals of an authenticated station (audited).
  claimRevoked: make('CLAIM_REVOKED', 403),
  claimNotYetValid: make('CLAIM_NOT_YET_VALID', 403),
  claimExpired: make('CLAIM_EXPIRED', 403),
  serialNotAllowed: make('SERIAL_NOT_ALLOWED', 403),
  claimQuotaExhausted: make('CLAIM_QUOTA_EXHAUSTED', 409),
  deviceAlreadyProvisioned: make('DEVICE_ALREADY_PROVISIONED', 409),
  idempotencyKeyReused: make('IDEMPOTENCY_KEY_REUSED', 422),
  idempotencyRequestInProgress: make('IDEMPOTENCY_REQUEST_IN_PROGRESS', 409),
  idempotencyAnswerNotReplayable: make('IDEMPOTENCY_ANSWER_NOT_REPLAYABLE', 409),
  /** A retry (same claim and CSR, or same serial and key) whose earlier certificate was revoked since: never handed out again. */
  replayCertificateRevoked: make('REPLAY_CERTIFICATE_REVOKED', 409),
  // Renewal and rotation.
  certificateRevoked: make('CERTIFICATE_REVOKED', 403),
  certificateExpired: make('CERTIFICATE_EXPIRED', 403),
  certificateSuperseded: make('CERTIFICATE_SUPERSEDED', 409),
  /** Not usable any more (expired) for an operation that needs an active certificate (an IoT move). */
  certificateNotActive: make('CERTIFICATE_NOT_ACTIVE', 409),
  renewalNotYetAllowed: make('RENEWAL_NOT_YET_ALLOWED', 403),
  renewalNotAllowed: make('RENEWAL_NOT_ALLOWED', 403),
  sameKeyNotAllowed: make('SAME_KEY_NOT_ALLOWED', 422),
  campaignNotFound: make('CAMPAIGN_NOT_FOUND', 404),
  campaignNotOpen: make('CAMPAIGN_NOT_OPEN', 409),
  campaignEmpty: make('CAMPAIGN_EMPTY', 422),
  // Managed AWS IoT policies and fleet audits.
  invalidPolicyDocument: make('INVALID_POLICY_DOCUMENT', 422),
  policyFindings: make('POLICY_FINDINGS', 422),
  policyTemplateNotFound: make('POLICY_TEMPLATE_NOT_FOUND', 404),
  policyTemplateConflict: make('POLICY_TEMPLATE_CONFLICT', 409),
  auditNotFound: make('AUDIT_NOT_FOUND', 404),
  findingNotFound: make('FINDING_NOT_FOUND', 404),
  findingNotRemediable: make('FINDING_NOT_REMEDIABLE', 409),
  // Dead outbox jobs (docs/operations.md, "Dead jobs").
  jobNotFound: make('JOB_NOT_FOUND', 404),
  jobNotDead: make('JOB_NOT_DEAD', 409),
  // Authorities under an external (offline) root: the CSR step, then the upload (docs/external-roots.md).
  /** Created with parent "external": it issues nothing (no CRL, no OCSP) until its certificate is uploaded. */
  authorityPending: make('AUTHORITY_PENDING', 409),
  /** POST /v1/authorities/{id}/certificate on an authority that is not waiting for one (already uploaded, or not external). */
  authorityNotPending: make('AUTHORITY_NOT_PENDING', 409),
  uploadedCertificateUnreadable: make('UPLOADED_CERTIFICATE_UNREADABLE', 422),
  uploadedCertificateKeyMismatch: make('UPLOADED_CERTIFICATE_KEY_MISMATCH', 422),
  uploadedCertificateSubjectMismatch: make('UPLOADED_CERTIFICATE_SUBJECT_MISMATCH', 422),
  uploadedCertificateCrlSignMissing: make('UPLOADED_CERTIFICATE_CRL_SIGN_MISSING', 422),
  chainTooLong: make('CHAIN_TOO_LONG', 422),
  chainIncomplete: make('CHAIN_INCOMPLETE', 422),
  chainSignatureInvalid: make('CHAIN_SIGNATURE_INVALID', 422),
  chainCertificateExpired: make('CHAIN_CERTIFICATE_EXPIRED', 422),
  chainCertificateNotYetValid: make('CHAIN_CERTIFICATE_NOT_YET_VALID', 422),
  chainNotACa: make('CHAIN_NOT_A_CA', 422),
  chainPathLengthExceeded: make('CHAIN_PATH_LENGTH_EXCEEDED', 422),
  chainKeyCertSignMissing: make('CHAIN_KEY_CERT_SIGN_MISSING', 422),
  chainWeakSignatureAlgorithm: make('CHAIN_WEAK_SIGNATURE_ALGORITHM', 422),
  // EST (RFC 7030) labels and operations (src/est/, docs/est.md).
  estLabelNotFound: make('EST_LABEL_NOT_FOUND', 404),
  estLabelExists: make('EST_LABEL_EXISTS', 409),
  invalidEstLabel: make('INVALID_EST_LABEL', 422),
  /** The caller's claim, certificate or authority is not the one the EST label enrolls for. */
  estLabelMismatch: make('EST_LABEL_MISMATCH', 403),
  serverKeygenNotAllowed: make('SERVER_KEYGEN_NOT_ALLOWED', 403),
  /** /serverkeygen was asked to encrypt the key it makes (RFC 7030 §4.4.1.1/§4.4.1.2), which is not supported. */
  keyEncryptionNotSupported: make('KEY_ENCRYPTION_NOT_SUPPORTED', 422),
  // Secure-element manifests (docs/secure-elements.md)
  manifestImportNotFound: make('MANIFEST_IMPORT_NOT_FOUND', 404),
  /** The upload is not a manifest: not a JSON array, an entry too large, too many entries or bytes. */
  invalidManifest: make('INVALID_MANIFEST', 400),
  /** The manifest signer certificate is missing, unreadable, or not an EC P-256/P-384 certificate. */
  invalidManifestSigner: make('INVALID_MANIFEST_SIGNER', 422),
  /** A request rate limit (docs/limits.md): per source address, API key, claim or station; with Retry-After. */
  // Hardware-rooted identity (docs/hardware-identity.md).
  tpmEvidenceMalformed: make('TPM_EVIDENCE_MALFORMED', 400),
  tpmAlgorithmUnsupported: make('TPM_ALGORITHM_UNSUPPORTED', 422),
  tpmEkUntrusted: make('TPM_EK_UNTRUSTED', 403),
  tpmAkNotRestrictedSigning: make('TPM_AK_NOT_RESTRICTED_SIGNING', 422),
  tpmAttestationSignatureInvalid: make('TPM_ATTESTATION_SIGNATURE_INVALID', 422),
  tpmAttestedNameMismatch: make('TPM_ATTESTED_NAME_MISMATCH', 422),
  tpmKeyNotHardwareBound: make('TPM_KEY_NOT_HARDWARE_BOUND', 422),
  tpmCsrKeyMismatch: make('TPM_CSR_KEY_MISMATCH', 422),
  tpmChallengeNotFound: make('TPM_CHALLENGE_NOT_FOUND', 404),
  tpmChallengeUsed: make('TPM_CHALLENGE_USED', 409),
  tpmChallengeExpired: make('TPM_CHALLENGE_EXPIRED', 410),
  tpmActivationFailed: make('TPM_ACTIVATION_FAILED', 403),
  attestationRequired: make('ATTESTATION_REQUIRED', 403),
  attestationNotEnabled: make('ATTESTATION_NOT_ENABLED', 403),
  tpmRootNotFound: make('TPM_ROOT_NOT_FOUND', 404),
  tpmRootExists: make('TPM_ROOT_EXISTS', 409),
  invalidTpmRoot: make('INVALID_TPM_ROOT', 422),
  renewalAttestationRequired: make('RENEWAL_ATTESTATION_REQUIRED', 403),
  renewalAttestationMismatch: make('RENEWAL_ATTESTATION_MISMATCH', 403),

  rateLimited: make('RATE_LIMITED', 429),
  // Framework refusals without a code of their own (problem.filter.ts): another method on a route, another 4xx.
  methodNotAllowed: make('METHOD_NOT_ALLOWED', 405),
  badRequest: make('BAD_REQUEST', 400),
  internal: make('INTERNAL_ERROR', 500),
} as const satisfies Record<string, ErrorKind>;

/** Every stable code, in declaration order (each once). */
export const ERROR_CODES: readonly string[] = [...new Set(Object.values(Errors).map((kind) => kind.code))];

/** A DomainError as plain data, to cross a thread boundary (common/thread-pool.ts) with its code, status and members. */
export interface PlainDomainError {
  code: string;
  status: number;
  message: string;
  extra: Record<string, unknown>;
}

export function toPlainError(error: unknown): PlainDomainError | null {
  return error instanceof DomainError ? { code: error.code, status: error.status, message: error.message, extra: error.extra } : null;
}

export function fromPlainError(plain: PlainDomainError): DomainError {
  return new DomainError(plain.code, plain.status, plain.message, plain.extra);
}

import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Allocation, checkAllocation } from '../common/allocation';
import { isDestinationArn } from '../common/destination-arn';
import { parseRateLimitSetting, RateLimitSetting } from '../common/request-rate-limits';

/** Raised at boot when an environment variable is missing or malformed; names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`Invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

export type DatabaseConfig =
  | { driver: 'sqlite'; file: string }
  | { driver: 'postgres'; url: string; poolSize: number };

export interface AppConfig {
  port: number;
  host: string;
  /**
   * Processes serving the port (node:cluster), each the whole application; 1 = this process alone. Several only on
   * PostgreSQL (docs/architecture.md, "Workers").
   */
  workers: number;
  /**
   * Worker threads of each process that parse CSRs off the event loop (certificates/csr-parser.ts); 0 = parse on the
   * event loop (docs/architecture.md, "Crypto threads").
   */
  cryptoThreads: number;
  dataDir: string;
  publicBaseUrl: string;
  database: DatabaseConfig;
  keys: {
    /** 32-byte master key when given by FLEET_PKI_MASTER_KEY; otherwise read from/created in the data directory. */
    masterKey?: Buffer;
    masterKeyFile: string;
  };
  issuance: {
    /** notBefore is set this far in the past, for devices whose clocks lag. */
    backdateSeconds: number;
  };
  crl: {
    validitySeconds: number;
    /** A CRL is regenerated once less than this remains before its nextUpdate. */
    refreshBeforeSeconds: number;
    /**
     * Where the highest published CRL number and revocation count of each authority are kept, outside the database,
     * so a restored older database cannot publish a CRL that un-revokes (docs/operations.md).
     */
    stateFile: string;
    /** Publish anyway when the database is behind stateFile (an operator's decision after a restore). */
    allowRollback: boolean;
  };
  ocsp: OcspConfig;
  auth: {
    bootstrapAdminKey?: string;
  };
  /** The aws-kms key backend; absent when no AWS region is configured. */
  kms?: KmsConfig;
  /** The pkcs11 key backend (an HSM through its PKCS #11 module); absent when PKCS11_MODULE is not set. */
  pkcs11?: Pkcs11Config;
  /** AWS IoT Core; absent when no AWS region is configured. */
  iot?: IotConfig;
  /**
   * IOT_TARGET_ENDPOINTS_ANY: IoT targets may name any endpoint URL (stand-ins in tests and development); otherwise only
   * https *.amazonaws.com(.cn) hosts (docs/threat-model.md, "IoT target endpoints").
   */
  iotTargetEndpointsAny: boolean;
  outbox: OutboxConfig;
  /** Group commit of issuances and revocations (docs/architecture.md, "Group commit"). */
  groupCommit: { maxBatch: number; maxWaitMs: number };
  /** Idempotency-Key records (docs/idempotency.md): kept this long, then pruned. */
  idempotency: { retentionHours: number };
  /** Expired rows (idempotency records, used token ids) deleted in bounded batches by a periodic job (docs/operations.md, "Pruning"). */
  pruning: { intervalSeconds: number; batchSize: number; pauseMs: number };
  bodyLimitBytes: number;
  /** HTTPS with client certificates requested (stations and devices may authenticate by mutual TLS); absent = plain HTTP. */
  tls?: { certFile: string; keyFile: string };
  renewal: {
    /** How long a renewed (superseded) certificate stays usable in AWS IoT before it is set INACTIVE. */
    graceSeconds: number;
    /** Per profile: how many days after expiry its certificates may still renew themselves (absent: not at all). */
    afterExpiryDays: Record<string, number>;
    /** Profiles whose certificates may renew with the same key (by default a new key is required). */
    sameKeyProfiles: string[];
  };
  /** TPM-attested enrollment (docs/hardware-identity.md). */
  tpm: {
    /** How long a MakeCredential challenge may be answered. */
    challengeTtlSeconds: number;
  };
  rotation: {
    /** How often rotation campaigns past their deadline are looked for. */
    sweepSeconds: number;
  };
  fleetAudit: {
    /** A scheduled fleet audit runs when the latest is older than this; 0 = no schedule. */
    intervalHours: number;
    /** ListCertificatesByCA page size for the drift checks (AWS allows at most 250). */
    listPageSize: number;
    /** When above 0, the interval in seconds instead of FLEET_AUDIT_INTERVAL_HOURS (tests, demonstrations). */
    intervalSeconds: number;
  };
  claims: {
    /** Largest allow-list upload, in bytes and in serials. */
    allowlistMaxBytes: number;
    allowlistMaxSerials: number;
    /** Allow-list uploads written at once by this process, and how many more may wait (beyond that: 503). */
    allowlistUploadConcurrency: number;
    allowlistUploadQueue: number;
  };
  /** Secure-element manifest imports (docs/secure-elements.md). */
  manifests: {
    /** Largest manifest upload, in bytes and in entries. */
    maxBytes: number;
    maxEntries: number;
    /** Entries verified and committed per transaction. */
    batchSize: number;
    /** How often a replica looks for an import to run or resume (after a restart), in milliseconds. */
    pollMs: number;
  };
  /**
   * Which X-Forwarded-For entries to believe for source addresses (audit log, source rate limit): false = none (the
   * TCP peer); true = all (the leftmost entry, which a client can write itself); addresses/CIDRs = the proxies to
   * trust (the address before the first untrusted hop, which no client can forge). As Fastify's trustProxy.
   */
  trustProxy: boolean | string[];
  /** Request rate limits per process (docs/limits.md); null = off. */
  rateLimits: RateLimitsConfig;
  /** Limits of the HTTP server on connections, headers and slow clients (docs/limits.md). */
  http: HttpServerConfig;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** JSON lines (for a collector) or pino-pretty's human lines (docs/operations.md, "Logs"). */
  logFormat: 'json' | 'pretty';
}

export interface RateLimitsConfig {
  /** Per source address (IPv6 by /64), before authentication; the health probes and OCSP are not counted. */
  source: RateLimitSetting | null;
  /** Per API key, after authentication. */
  apiKey: RateLimitSetting | null;
  /** Per claim: every station of a factory claim together. */
  claim: RateLimitSetting | null;
  /** Per station (claim certificate and the JWT's `sub`) and per device certificate. */
  station: RateLimitSetting | null;
}

export interface HttpServerConfig {
  /** A request's headers must have arrived within this (slow-loris); idle new connections are closed after it too. */
  headersTimeoutMs: number;
  /** A whole request (headers and body) must have arrived within this. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Largest request head (request line and headers), bytes; larger is a 431. */
  maxHeaderBytes: number;
  /** Open connections this process accepts at most; more are closed at once. 0 = no limit. */
  maxConnections: number;
  /** Open connections one peer address may hold at most (TCP peer, not X-Forwarded-For). 0 = no limit. */
  maxConnectionsPerSource: number;
}

export interface OcspConfig {
  /** Validity of a delegated OCSP signing certificate; a new one is made once less than half is left. */
  signerValidityHours: number;
  /** nextUpdate − thisUpdate of an OCSP response: how long clients may rely on it, and how long we reuse it. */
  responseValiditySeconds: number;
  /** Signed responses kept in memory per process for requests without a nonce. */
  cacheMaxEntries: number;
  /** How often each process reads every authority's revocation counter, to learn of other replicas' revocations. */
  revocationPollMs: number;
}

export interface KmsConfig {
  region: string;
  /** Endpoint override (AWS_ENDPOINT_URL_KMS), e.g. the local stand-in. */
  endpoint?: string;
  requestTimeoutMs: number;
  maxAttempts: number;
  retryMode: 'adaptive' | 'standard';
  /** Adaptive mode never slows below this many KMS requests per second (per process). */
  adaptiveMinTps: number;
  /** Signatures in flight per KMS key at most; more wait their turn, so a burst cannot drown KMS. */
  maxConcurrencyPerKey: number;
  /** Sign calls per second this process may make (its share of the account quota); 0 = not paced. */
  maxSignRate: number;
  aliasPrefix: string;
  /** How long /readyz trusts a DescribeKey answer. */
  readyCacheSeconds: number;
  /**
   * How long calls on a key this process just created keep retrying AccessDeniedException and NotFoundException
   * (KMS eventual consistency, tag-based authorization included) before failing; see docs/aws-behaviours.md.
   */
  newKeyAuthWaitMs: number;
}

/** The pkcs11 key backend (docs/pkcs11.md). */
export interface Pkcs11Config {
  /** Path of the vendor's PKCS #11 module (.so). */
  modulePath: string;
  /** The token, by label (PKCS11_TOKEN_LABEL) or by slot id (PKCS11_SLOT): exactly one is set. */
  tokenLabel?: string;
  slotId?: string;
  /**
   * Reads the user PIN (from PKCS11_PIN, or the file PKCS11_PIN_FILE, read at each login). A function, so the PIN is
   * never a field of the configuration that could be printed or serialised.
   */
  pin: () => string;
  /** The setting that holds the PIN, for messages: PKCS11_PIN or PKCS11_PIN_FILE. */
  pinVariable: 'PKCS11_PIN' | 'PKCS11_PIN_FILE';
  /** Sessions per process: signatures in flight on the token at most. */
  sessions: number;
}

export interface OutboxConfig {
  /** Run the outbox worker in this process. */
  enabled: boolean;
  pollMs: number;
  batchSize: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** How long a claimed job is ours; a worker that dies loses it to another after this. */
  leaseMs: number;
}

export interface IotConfig {
  region: string;
  /** Endpoint override (AWS_ENDPOINT_URL_IOT), e.g. the local stand-in. */
  endpoint?: string;
  /** AWS_ACCOUNT_ID: the default IoT target's account (docs/iot-targets.md), for the DEFAULT-mode rule and answers. */
  accountId?: string;
  requestTimeoutMs: number;
  maxAttempts: number;
  /** Requests per second per control-plane operation, defaulting to the AWS quotas. */
  rateLimits: Record<string, number>;
  /** Shared secret expected in X-Fleet-Pki-Events-Secret on POST /v1/iot/events; unset = endpoint off. */
  eventsSecret?: string;
  /** When set, destination confirmations for any other topic rule destination ARN are refused. */
  eventsDestinationArn?: string;
  /**
   * IOT_PROFILE_ALLOCATION: by profile name, the IoT target(s) certificates issued through the API (no claim) go to
   * (docs/iot-targets.md, "Allocation"); a profile not named goes to the default target.
   */
  profileAllocation?: Record<string, Allocation>;
}

/** AWS IoT control-plane quotas (TPS per account and region, older published values). */
export const IOT_DEFAULT_RATE_LIMITS: Record<string, number> = {
  GetRegistrationCode: 10,
  RegisterCACertificate: 10,
  UpdateCACertificate: 10,
  RegisterCertificate: 10,
  // Pre-provisioned identities from secure-element manifests (docs/secure-elements.md): as RegisterCertificate.
  RegisterCertificateWithoutCA: 10,
  UpdateCertificate: 10,
  DescribeCertificate: 10,
  AttachPolicy: 15,
  CreateThing: 15,
  AttachThingPrincipal: 15,
  ConfirmTopicRuleDestination: 10,
  // Thing types and groups (factory-claim settings): no older published value at hand, so the lowest quota above.
  AddThingToThingGroup: 10,
  DescribeThingType: 10,
  DescribeThingGroup: 10,
  // Certificate renewal and rotation campaigns. DetachThingPrincipal as AttachThingPrincipal (older tables: 15); the
  // AWS IoT Jobs control plane (CreateJob, DescribeJob) is quoted at 10 TPS; DescribeThing has no older value at hand.
  DetachThingPrincipal: 15,
  DescribeThing: 10,
  CreateJob: 10,
  DescribeJob: 10,
  // Managed policies and fleet audits (older published tables: 10 TPS for policy and list operations).
  GetPolicy: 10,
  CreatePolicy: 10,
  CreatePolicyVersion: 10,
  ListPolicyVersions: 10,
  DeletePolicyVersion: 10,
  ListAttachedPolicies: 10,
  ListCertificatesByCA: 10,
};

function parseRateLimits(env: Env): Record<string, number> {
  const limits = { ...IOT_DEFAULT_RATE_LIMITS };
  const raw = env.IOT_RATE_LIMITS;
  if (!raw) return limits;
  for (const item of raw.split(',')) {
    const match = /^\s*([A-Za-z]+)=(\d+(?:\.\d+)?)\s*$/.exec(item);
    if (!match || !(match[1] in IOT_DEFAULT_RATE_LIMITS) || Number(match[2]) <= 0) {
      throw new ConfigError('IOT_RATE_LIMITS', `must look like "RegisterCertificate=10,AttachPolicy=15" with known operations, got "${item}"`);
    }
    limits[match[1]] = Number(match[2]);
  }
  return limits;
}

/** RENEWAL_AFTER_EXPIRY_DAYS, e.g. "device=30": per profile, renewal allowed up to that many days after expiry. */
function parseAfterExpiryDays(env: Env, renewable: readonly string[]): Record<string, number> {
  const days: Record<string, number> = {};
  const raw = env.RENEWAL_AFTER_EXPIRY_DAYS;
  if (!raw) return days;
  for (const item of raw.split(',')) {
    const match = /^\s*([a-z]+)=(\d+)\s*$/.exec(item);
    if (!match || !renewable.includes(match[1]) || Number(match[2]) < 1 || Number(match[2]) > 365) {
      throw new ConfigError('RENEWAL_AFTER_EXPIRY_DAYS', `must look like "device=30" (profiles ${renewable.join(', ')}; 1 to 365 days), got "${item}"`);
    }
    days[match[1]] = Number(match[2]);
  }
  return days;
}

/** RENEWAL_SAME_KEY_PROFILES, e.g. "device": profiles whose certificates may renew without a new key. */
function parseSameKeyProfiles(env: Env, renewable: readonly string[]): string[] {
  const raw = env.RENEWAL_SAME_KEY_PROFILES;
  if (!raw) return [];
  return raw.split(',').map((item) => {
    const name = item.trim();
    if (!renewable.includes(name)) throw new ConfigError('RENEWAL_SAME_KEY_PROFILES', `must list profiles among ${renewable.join(', ')}, got "${item}"`);
    return name;
  });
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function parseDatabase(env: Env, dataDir: string): DatabaseConfig {
  const url = env.DATABASE_URL;
  if (url === undefined || url === '') {
    return { driver: 'sqlite', file: path.join(dataDir, 'fleet-pki.sqlite') };
  }
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length).replace(/^\/\//, '');
    if (!file) throw new ConfigError('DATABASE_URL', 'sqlite URL must name a file, e.g. sqlite:./data/pki.sqlite');
    return { driver: 'sqlite', file: path.resolve(file) };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('DATABASE_URL', 'is not a valid URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError('DATABASE_URL', `must be a postgres:// or sqlite: URL, got scheme "${parsed.protocol}"`);
  }
  return { driver: 'postgres', url, poolSize: integer(env, 'DATABASE_POOL_SIZE', 10, 1, 200) };
}

/**
 * WORKERS: as many as the machine has CPUs on PostgreSQL, where every decision that must happen once is made in the
 * database, so workers are replicas sharing one port. SQLite is one writer per database file: our transactions begin
 * deferred and take the write lock at their first write, which between processes fails with SQLITE_BUSY instead of
 * waiting its turn, so more than one worker is refused there.
 */
function parseWorkers(env: Env, database: DatabaseConfig): number {
  const workers = integer(env, 'WORKERS', database.driver === 'postgres' ? os.availableParallelism() : 1, 1, 256);
  if (database.driver === 'sqlite' && workers > 1) {
    throw new ConfigError(
      'WORKERS',
      `must be 1 with SQLite, got ${workers}: a SQLite database file has one writer, and transactions of several processes ` +
        'would fail with SQLITE_BUSY when they compete for the write lock. Use PostgreSQL (DATABASE_URL=postgres://…) for several workers',
    );
  }
  return workers;
}

/**
 * CRYPTO_THREADS: threads that read CSRs off the event loop. Off (0) unless set: on the 2-core VM of the benchmarks a
 * thread measured no throughput gain and ~30 MB more peak memory (docs/benchmarks.md, "Crypto threads"); it is for a
 * one-process service (SQLite) on a machine whose other cores idle.
 */
function parseCryptoThreads(env: Env): number {
  return integer(env, 'CRYPTO_THREADS', 0, 0, 64);
}

function parseMasterKey(env: Env): Buffer | undefined {
  const raw = env.FLEET_PKI_MASTER_KEY;
  if (raw === undefined || raw === '') return undefined;
  // Strict formats: Node's base64 decoder skips junk characters, which would hide a mangled key.
  const key = /^[0-9a-fA-F]{64}$/.test(raw)
    ? Buffer.from(raw, 'hex')
    : /^[A-Za-z0-9+/]{43}=?$/.test(raw)
      ? Buffer.from(raw, 'base64')
      : Buffer.alloc(0);
  if (key.length !== 32) {
    throw new ConfigError('FLEET_PKI_MASTER_KEY', 'must be 32 bytes, as 64 hex characters or base64');
  }
  return key;
}

function parsePublicBaseUrl(env: Env, port: number): string {
  const raw = env.PUBLIC_BASE_URL || `${env.TLS_CERT_FILE ? 'https' : 'http'}://localhost:${port}`;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError('PUBLIC_BASE_URL', `is not a valid URL: "${raw}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError('PUBLIC_BASE_URL', 'must be an http:// or https:// URL');
  }
  // An empty query or fragment ("https://pki.example/?") leaves search/hash empty but would still end up
  // in every CRL DP / AIA URL built from this base, so look at the raw string too.
  if (parsed.search || parsed.hash || /[?#]/.test(raw)) {
    throw new ConfigError('PUBLIC_BASE_URL', 'must not have a query or fragment');
  }
  if (parsed.username || parsed.password) throw new ConfigError('PUBLIC_BASE_URL', 'must not carry credentials');
  // The normalised form (punycode host, percent-encoded path) is plain ASCII, as the IA5String URIs in
  // certificates require.
  return parsed.href.replace(/\/+$/, '');
}

/**
 * PKCS11_MODULE turns the pkcs11 backend on. The token is named by label or slot, the PIN comes from the environment
 * or a file (never from the database, never logged). The module is loaded and the PIN checked at start (keys module).
 */
function parsePkcs11(env: Env): Pkcs11Config | undefined {
  const modulePath = env.PKCS11_MODULE || undefined;
  if (!modulePath) {
    for (const name of ['PKCS11_TOKEN_LABEL', 'PKCS11_SLOT', 'PKCS11_PIN', 'PKCS11_PIN_FILE']) {
      if (env[name]) throw new ConfigError('PKCS11_MODULE', `must be set when ${name} is (the path of the PKCS #11 module)`);
    }
    return undefined;
  }
  if (!path.isAbsolute(modulePath)) throw new ConfigError('PKCS11_MODULE', `must be an absolute path: "${modulePath}"`);
  if (!fs.existsSync(modulePath)) throw new ConfigError('PKCS11_MODULE', `names no file: "${modulePath}"`);
  const tokenLabel = env.PKCS11_TOKEN_LABEL || undefined;
  const slotId = env.PKCS11_SLOT || undefined;
  if ((tokenLabel === undefined) === (slotId === undefined)) throw new ConfigError('PKCS11_TOKEN_LABEL', 'or PKCS11_SLOT (one of them, not both) must name the token');
  if (slotId !== undefined && !/^\d{1,20}$/.test(slotId)) throw new ConfigError('PKCS11_SLOT', 'must be a decimal slot id');
  if (tokenLabel !== undefined && tokenLabel.length > 32) throw new ConfigError('PKCS11_TOKEN_LABEL', 'must be at most 32 characters (CK_TOKEN_INFO label)');
  const pinValue = env.PKCS11_PIN || undefined;
  const pinFile = env.PKCS11_PIN_FILE || undefined;
  if ((pinValue === undefined) === (pinFile === undefined)) throw new ConfigError('PKCS11_PIN', 'or PKCS11_PIN_FILE (one of them, not both) must give the user PIN');
  let pin: () => string;
  if (pinFile !== undefined) {
    const readPin = () => {
      try {
        return fs.readFileSync(pinFile, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        throw new ConfigError('PKCS11_PIN_FILE', `cannot be read: "${pinFile}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    };
    if (readPin() === '') throw new ConfigError('PKCS11_PIN_FILE', `is empty: "${pinFile}"`);
    pin = readPin;
  } else {
    const value = pinValue as string;
    pin = () => value;
  }
  return {
    modulePath,
    tokenLabel,
    slotId,
    pin,
    pinVariable: pinFile !== undefined ? 'PKCS11_PIN_FILE' : 'PKCS11_PIN',
    sessions: integer(env, 'PKCS11_SESSIONS', 4, 1, 256),
  };
}

function parseKms(env: Env): KmsConfig | undefined {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) {
    if (env.AWS_ENDPOINT_URL_KMS) throw new ConfigError('AWS_REGION', 'must be set when AWS_ENDPOINT_URL_KMS is');
    return undefined;
  }
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new ConfigError(env.AWS_REGION ? 'AWS_REGION' : 'AWS_DEFAULT_REGION', `is not an AWS region: "${region}"`);
  const endpoint = env.AWS_ENDPOINT_URL_KMS || undefined;
  if (endpoint !== undefined) {
    let parsed: URL;
    try {
      parsed = new URL(endpoint);
    } catch {
      throw new ConfigError('AWS_ENDPOINT_URL_KMS', `is not a valid URL: "${endpoint}"`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError('AWS_ENDPOINT_URL_KMS', 'must be an http:// or https:// URL');
  }
  const aliasPrefix = env.KMS_ALIAS_PREFIX || 'alias/fleet-pki/';
  if (!/^alias\/[a-zA-Z0-9/_-]{0,200}$/.test(aliasPrefix) || aliasPrefix.startsWith('alias/aws/')) {
    throw new ConfigError('KMS_ALIAS_PREFIX', 'must start with alias/ (not alias/aws/) and use only letters, digits, /, _ and -');
  }
  return {
    region,
    endpoint,
    requestTimeoutMs: integer(env, 'KMS_REQUEST_TIMEOUT_MS', 5000, 100, 120_000),
    maxAttempts: integer(env, 'KMS_MAX_ATTEMPTS', 8, 1, 20),
    retryMode: oneOf(env, 'KMS_RETRY_MODE', ['adaptive', 'standard'] as const, 'adaptive'),
    adaptiveMinTps: integer(env, 'KMS_ADAPTIVE_MIN_TPS', 20, 1, 10_000),
    maxConcurrencyPerKey: integer(env, 'KMS_MAX_CONCURRENCY_PER_KEY', 32, 1, 1000),
    maxSignRate: integer(env, 'KMS_MAX_SIGN_RATE', 0, 0, 100_000),
    aliasPrefix,
    readyCacheSeconds: integer(env, 'KMS_READY_CACHE_SECONDS', 30, 0, 3600),
    // 30 s: covers KMS's usual propagation ("less than a few seconds") many times over while the creating request
    // stays below common proxy and load-balancer idle timeouts (60 s); AWS's own worst case for tags is five minutes.
    newKeyAuthWaitMs: integer(env, 'KMS_NEW_KEY_AUTH_WAIT_MS', 30_000, 0, 300_000),
  };
}

function endpointUrl(env: Env, name: string): string | undefined {
  const endpoint = env[name] || undefined;
  if (endpoint === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new ConfigError(name, `is not a valid URL: "${endpoint}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError(name, 'must be an http:// or https:// URL');
  return endpoint;
}

function parseIot(env: Env): IotConfig | undefined {
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) {
    if (env.AWS_ENDPOINT_URL_IOT) throw new ConfigError('AWS_REGION', 'must be set when AWS_ENDPOINT_URL_IOT is');
    return undefined;
  }
  return {
    region,
    endpoint: endpointUrl(env, 'AWS_ENDPOINT_URL_IOT'),
    accountId: parseAccountId(env),
    requestTimeoutMs: integer(env, 'IOT_REQUEST_TIMEOUT_MS', 5000, 100, 120_000),
    maxAttempts: integer(env, 'IOT_MAX_ATTEMPTS', 4, 1, 20),
    rateLimits: parseRateLimits(env),
    eventsSecret: parseEventsSecret(env),
    eventsDestinationArn: parseDestinationArn(env),
    profileAllocation: parseProfileAllocation(env),
  };
}

/** A JSON object: profile name → allocation (checked for shape here; its targets, which live in the database, at issuance). */
function parseProfileAllocation(env: Env): Record<string, Allocation> {
  const raw = env.IOT_PROFILE_ALLOCATION;
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError('IOT_PROFILE_ALLOCATION', 'must be a JSON object such as {"device": {"mode": "fixed", "targetId": "eu-prod"}}');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError('IOT_PROFILE_ALLOCATION', 'must be a JSON object of profile name → allocation');
  const result: Record<string, Allocation> = {};
  for (const [profile, allocation] of Object.entries(parsed as Record<string, unknown>)) {
    if (!/^[a-z0-9-]{1,64}$/.test(profile)) throw new ConfigError('IOT_PROFILE_ALLOCATION', `"${profile.slice(0, 64)}" is not a profile name`);
    try {
      checkAllocation(allocation);
    } catch (err) {
      throw new ConfigError('IOT_PROFILE_ALLOCATION', `${profile}: ${(err as Error).message}`);
    }
    result[profile] = allocation;
  }
  return result;
}

function parseAccountId(env: Env): string | undefined {
  const id = env.AWS_ACCOUNT_ID || undefined;
  if (id !== undefined && !/^\d{12}$/.test(id)) throw new ConfigError('AWS_ACCOUNT_ID', 'must be a 12-digit AWS account id');
  return id;
}

function parseDestinationArn(env: Env): string | undefined {
  const arn = env.IOT_EVENTS_DESTINATION_ARN || undefined;
  if (arn !== undefined && !isDestinationArn(arn)) {
    throw new ConfigError('IOT_EVENTS_DESTINATION_ARN', 'must be an AWS IoT topic rule destination ARN (arn:aws:iot:<region>:<account>:ruledestination/http/<id>)');
  }
  return arn;
}

function parseEventsSecret(env: Env): string | undefined {
  const secret = env.IOT_EVENTS_SECRET || undefined;
  if (secret !== undefined && (secret.length < 32 || secret.length > 256 || !/^[\x21-\x7e]+$/.test(secret))) {
    throw new ConfigError('IOT_EVENTS_SECRET', 'must be 32 to 256 printable characters (e.g. openssl rand -hex 32)');
  }
  return secret;
}

function parseOutbox(env: Env): OutboxConfig {
  const backoffBaseMs = integer(env, 'OUTBOX_BACKOFF_BASE_MS', 1000, 10, 3_600_000);
  return {
    enabled: oneOf(env, 'OUTBOX_WORKER', ['on', 'off'] as const, 'on') === 'on',
    pollMs: integer(env, 'OUTBOX_POLL_MS', 500, 10, 60_000),
    batchSize: integer(env, 'OUTBOX_BATCH_SIZE', 10, 1, 500),
    maxAttempts: integer(env, 'OUTBOX_MAX_ATTEMPTS', 12, 1, 100),
    backoffBaseMs,
    backoffMaxMs: integer(env, 'OUTBOX_BACKOFF_MAX_MS', 300_000, backoffBaseMs, 86_400_000),
    leaseMs: integer(env, 'OUTBOX_LEASE_MS', 60_000, 1000, 3_600_000),
  };
}

function parseOcsp(env: Env): OcspConfig {
  const signerValidityHours = integer(env, 'OCSP_SIGNER_VALIDITY_HOURS', 48, 1, 8760);
  // A signer is replaced at half its life, and a response never outlives its signer: a longer response validity
  // would be cut short near every rotation.
  const responseValiditySeconds = integer(env, 'OCSP_RESPONSE_VALIDITY_SECONDS', Math.min(3600, signerValidityHours * 1800), 60, signerValidityHours * 1800);
  return {
    signerValidityHours,
    responseValiditySeconds,
    cacheMaxEntries: integer(env, 'OCSP_CACHE_MAX_ENTRIES', 10_000, 0, 1_000_000),
    revocationPollMs: integer(env, 'OCSP_REVOCATION_POLL_MS', 1000, 100, 60_000),
  };
}

/** Generous defaults: every test and benchmark passes under them; an operator narrows them (docs/limits.md). */
const RATE_LIMIT_DEFAULTS = { source: '60000/min', apiKey: '60000/min', claim: '60000/min', station: '30000/min' };

function rateLimit(env: Env, name: string, fallback: string): RateLimitSetting | null {
  const raw = env[name];
  try {
    return parseRateLimitSetting(raw === undefined || raw === '' ? fallback : raw);
  } catch (err) {
    throw new ConfigError(name, (err as Error).message);
  }
}

function parseRequestRateLimits(env: Env): RateLimitsConfig {
  return {
    source: rateLimit(env, 'RATE_LIMIT_SOURCE', RATE_LIMIT_DEFAULTS.source),
    apiKey: rateLimit(env, 'RATE_LIMIT_API_KEY', RATE_LIMIT_DEFAULTS.apiKey),
    claim: rateLimit(env, 'RATE_LIMIT_CLAIM', RATE_LIMIT_DEFAULTS.claim),
    station: rateLimit(env, 'RATE_LIMIT_STATION', RATE_LIMIT_DEFAULTS.station),
  };
}

function parseHttpServer(env: Env): HttpServerConfig {
  const headersTimeoutMs = integer(env, 'HTTP_HEADERS_TIMEOUT_MS', 20_000, 500, 600_000);
  return {
    headersTimeoutMs,
    // Node requires requestTimeout ≥ headersTimeout (0 would be no limit, which we do not allow).
    requestTimeoutMs: integer(env, 'HTTP_REQUEST_TIMEOUT_MS', 300_000, headersTimeoutMs, 3_600_000),
    keepAliveTimeoutMs: integer(env, 'HTTP_KEEP_ALIVE_TIMEOUT_MS', 72_000, 1000, 600_000),
    maxHeaderBytes: integer(env, 'HTTP_MAX_HEADER_BYTES', 16 * 1024, 4096, 1024 * 1024),
    maxConnections: integer(env, 'HTTP_MAX_CONNECTIONS', 0, 0, 1_000_000),
    maxConnectionsPerSource: integer(env, 'HTTP_MAX_CONNECTIONS_PER_SOURCE', 0, 0, 1_000_000),
  };
}

function parseTrustProxy(env: Env): AppConfig['trustProxy'] {
  const raw = (env.TRUST_PROXY ?? '').trim();
  if (raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  const entries = raw.split(',').map((entry) => entry.trim());
  const address = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)(\/\d{1,3})?$/;
  if (entries.every((entry) => address.test(entry) && isIP(entry.split('/')[0]) !== 0)) return entries;
  throw new ConfigError('TRUST_PROXY', `must be true, false or a comma-separated list of the proxies' addresses/CIDRs, got "${raw}"`);
}

function parseTls(env: Env): AppConfig['tls'] {
  const certFile = env.TLS_CERT_FILE || undefined;
  const keyFile = env.TLS_KEY_FILE || undefined;
  if (!certFile && !keyFile) return undefined;
  if (!certFile) throw new ConfigError('TLS_CERT_FILE', 'must be set when TLS_KEY_FILE is');
  if (!keyFile) throw new ConfigError('TLS_KEY_FILE', 'must be set when TLS_CERT_FILE is');
  for (const [name, file] of [['TLS_CERT_FILE', certFile], ['TLS_KEY_FILE', keyFile]] as const) {
    if (!fs.existsSync(file)) throw new ConfigError(name, `names a file that does not exist: ${file}`);
  }
  return { certFile: path.resolve(certFile), keyFile: path.resolve(keyFile) };
}

/**
 * What a few settings are checked against that other layers own: the API-key format (auth/) and the profiles that
 * renew themselves (pki/). The application's loader (src/app.config.ts) supplies them, so config/ imports neither.
 */
export interface SettingRules {
  /** Whether FLEET_PKI_BOOTSTRAP_ADMIN_KEY is a well-formed API key. */
  isApiKey(value: string): boolean;
  /** Profiles whose certificates renew themselves (POST /v1/certificates/renew): what the renewal switches may name. */
  renewableProfiles: readonly string[];
}

/** Reads and validates every setting against `rules`; throws ConfigError naming the first bad variable. */
export function parseConfig(env: Env, rules: SettingRules): AppConfig {
  const port = integer(env, 'PORT', 8080, 0, 65535);
  const dataDir = path.resolve(env.DATA_DIR || './data');
  const bootstrapAdminKey = env.FLEET_PKI_BOOTSTRAP_ADMIN_KEY || undefined;
  if (bootstrapAdminKey !== undefined && !rules.isApiKey(bootstrapAdminKey)) {
    throw new ConfigError(
      'FLEET_PKI_BOOTSTRAP_ADMIN_KEY',
      'must look like fpk_<12 lowercase hex>.<43 base64url characters> (see README: "Choosing the first admin key")',
    );
  }
  const crlValidity = integer(env, 'CRL_VALIDITY_SECONDS', 86400, 300, 90 * 86400);
  const crlRefresh = integer(env, 'CRL_REFRESH_BEFORE_SECONDS', Math.floor(crlValidity / 2), 60, crlValidity);
  const database = parseDatabase(env, dataDir);
  const masterKey = parseMasterKey(env);
  if (database.driver === 'postgres' && !masterKey) {
    // A key file in DATA_DIR would differ per replica: CA keys sealed by one would be unreadable by the others.
    throw new ConfigError('FLEET_PKI_MASTER_KEY', 'is required with PostgreSQL (every replica must use the same one): openssl rand -hex 32');
  }
  const workers = parseWorkers(env, database);
  return {
    port,
    host: env.HOST || '0.0.0.0',
    workers,
    cryptoThreads: parseCryptoThreads(env),
    dataDir,
    publicBaseUrl: parsePublicBaseUrl(env, port),
    database,
    keys: { masterKey, masterKeyFile: path.join(dataDir, 'master.key') },
    issuance: { backdateSeconds: integer(env, 'ISSUANCE_BACKDATE_SECONDS', 300, 0, 86400) },
    crl: {
      validitySeconds: crlValidity,
      refreshBeforeSeconds: crlRefresh,
      stateFile: path.resolve(env.CRL_STATE_FILE || path.join(dataDir, 'crl-state.json')),
      allowRollback: oneOf(env, 'CRL_ALLOW_ROLLBACK', ['true', 'false'] as const, 'false') === 'true',
    },
    ocsp: parseOcsp(env),
    auth: { bootstrapAdminKey },
    kms: parseKms(env),
    pkcs11: parsePkcs11(env),
    iot: parseIot(env),
    iotTargetEndpointsAny: oneOf(env, 'IOT_TARGET_ENDPOINTS_ANY', ['true', 'false'] as const, 'false') === 'true',
    outbox: parseOutbox(env),
    groupCommit: {
      maxBatch: integer(env, 'GROUP_COMMIT_MAX_BATCH', 128, 1, 1000),
      maxWaitMs: integer(env, 'GROUP_COMMIT_MAX_WAIT_MS', 0, 0, 100),
    },
    idempotency: { retentionHours: integer(env, 'IDEMPOTENCY_RETENTION_HOURS', 24, 1, 24 * 30) },
    pruning: {
      intervalSeconds: integer(env, 'PRUNE_INTERVAL_SECONDS', 600, 0, 86400),
      batchSize: integer(env, 'PRUNE_BATCH_SIZE', 1000, 1, 100_000),
      pauseMs: integer(env, 'PRUNE_PAUSE_MS', 50, 0, 60_000),
    },
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 64 * 1024, 1024, 16 * 1024 * 1024),
    tls: parseTls(env),
    renewal: {
      graceSeconds: integer(env, 'RENEWAL_GRACE_SECONDS', 86400, 0, 90 * 86400),
      afterExpiryDays: parseAfterExpiryDays(env, rules.renewableProfiles),
      sameKeyProfiles: parseSameKeyProfiles(env, rules.renewableProfiles),
    },
    tpm: { challengeTtlSeconds: integer(env, 'TPM_CHALLENGE_TTL_SECONDS', 300, 5, 3600) },
    rotation: { sweepSeconds: integer(env, 'ROTATION_SWEEP_SECONDS', 60, 1, 86400) },
    fleetAudit: {
      intervalHours: integer(env, 'FLEET_AUDIT_INTERVAL_HOURS', 24, 0, 24 * 365),
      intervalSeconds: integer(env, 'FLEET_AUDIT_INTERVAL_SECONDS', 0, 0, 86_400),
      listPageSize: integer(env, 'FLEET_AUDIT_LIST_PAGE_SIZE', 250, 1, 250),
    },
    claims: {
      allowlistMaxBytes: integer(env, 'ALLOWLIST_MAX_BYTES', 64 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      allowlistMaxSerials: integer(env, 'ALLOWLIST_MAX_SERIALS', 1_000_000, 1, 10_000_000),
      allowlistUploadConcurrency: integer(env, 'ALLOWLIST_UPLOAD_CONCURRENCY', 2, 1, 16),
      allowlistUploadQueue: integer(env, 'ALLOWLIST_UPLOAD_QUEUE', 8, 0, 1000),
    },
    manifests: {
      maxBytes: integer(env, 'MANIFEST_MAX_BYTES', 1024 * 1024 * 1024, 1024, 16 * 1024 * 1024 * 1024),
      maxEntries: integer(env, 'MANIFEST_MAX_ENTRIES', 200_000, 1, 10_000_000),
      batchSize: integer(env, 'MANIFEST_BATCH_SIZE', 250, 1, 5000),
      pollMs: integer(env, 'MANIFEST_POLL_MS', 5000, 10, 600_000),
    },
    trustProxy: parseTrustProxy(env),
    rateLimits: parseRequestRateLimits(env),
    http: parseHttpServer(env),
    logLevel: oneOf(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error', 'silent'] as const, 'info'),
    logFormat: oneOf(env, 'LOG_FORMAT', ['json', 'pretty'] as const, 'json'),
  };
}

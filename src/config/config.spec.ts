import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isDestinationArn } from '../common/destination-arn';
import { ConfigError, parseConfig, SettingRules } from './config';

const VALID_ADMIN_KEY = `fpk_0123456789ab.${'A'.repeat(43)}`;

/** Stand-ins for the rules other layers own (src/app.config.spec.ts checks the application's real ones). */
const RULES: SettingRules = { isApiKey: (value) => value === VALID_ADMIN_KEY, renewableProfiles: ['device', 'server'] };
const loadConfig = (env: Record<string, string | undefined>) => parseConfig(env, RULES);

function expectConfigError(env: Record<string, string>, variable: string): void {
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.equal(err.variable, variable);
      assert.match(err.message, new RegExp(`\\b${variable}\\b`), 'the message names the variable');
      return true;
    },
  );
}

const MASTER_KEY = 'ab'.repeat(32);

describe('loadConfig', () => {
  describe('defaults (embedded mode)', () => {
    it('uses SQLite under DATA_DIR, port 8080 and locally stored keys when nothing is set', () => {
      const config = loadConfig({ DATA_DIR: '/var/lib/fleet-pki' });
      assert.equal(config.port, 8080);
      assert.equal(config.host, '0.0.0.0');
      assert.equal(config.dataDir, '/var/lib/fleet-pki');
      assert.deepEqual(config.database, { driver: 'sqlite', file: '/var/lib/fleet-pki/fleet-pki.sqlite' });
      assert.equal(config.keys.masterKey, undefined);
      assert.equal(config.keys.masterKeyFile, '/var/lib/fleet-pki/master.key');
      assert.equal(config.publicBaseUrl, 'http://localhost:8080');
      assert.equal(config.auth.bootstrapAdminKey, undefined);
      assert.equal(config.trustProxy, false);
      assert.equal(config.logLevel, 'info');
      assert.equal(config.logFormat, 'json');
      assert.equal(config.crl.validitySeconds, 86400);
      assert.equal(config.crl.refreshBeforeSeconds, 43200);
      assert.equal(config.issuance.backdateSeconds, 300);
      assert.equal(config.bodyLimitBytes, 64 * 1024);
      assert.equal(config.claims.allowlistUploadConcurrency, 2);
      assert.equal(config.claims.allowlistUploadQueue, 8);
      assert.deepEqual(config.pruning, { intervalSeconds: 600, batchSize: 1000, pauseMs: 50 });
      assert.equal(config.fleetAudit.listPageSize, 250);
    });

    it('bounds allow-list upload concurrency (1-16) and queue (0-1000)', () => {
      const config = loadConfig({ ALLOWLIST_UPLOAD_CONCURRENCY: '1', ALLOWLIST_UPLOAD_QUEUE: '0' });
      assert.equal(config.claims.allowlistUploadConcurrency, 1);
      assert.equal(config.claims.allowlistUploadQueue, 0);
      assert.throws(() => loadConfig({ ALLOWLIST_UPLOAD_CONCURRENCY: '0' }), /ALLOWLIST_UPLOAD_CONCURRENCY/);
      assert.throws(() => loadConfig({ ALLOWLIST_UPLOAD_QUEUE: '-1' }), /ALLOWLIST_UPLOAD_QUEUE/);
    });

    it('puts the data directory at ./data relative to the working directory when DATA_DIR is unset', () => {
      const config = loadConfig({});
      assert.equal(config.dataDir, path.resolve('./data'));
      assert.deepEqual(config.database, { driver: 'sqlite', file: path.join(path.resolve('./data'), 'fleet-pki.sqlite') });
    });

    it('treats empty strings like unset variables', () => {
      const config = loadConfig({ PORT: '', DATABASE_URL: '', PUBLIC_BASE_URL: '', LOG_LEVEL: '', TRUST_PROXY: '', DATA_DIR: '/d' });
      assert.equal(config.port, 8080);
      assert.equal(config.database.driver, 'sqlite');
      assert.equal(config.logLevel, 'info');
      assert.equal(config.trustProxy, false);
    });

    it('derives the default public base URL from PORT', () => {
      assert.equal(loadConfig({ PORT: '9000' }).publicBaseUrl, 'http://localhost:9000');
    });
  });

  describe('rejects bad values with a ConfigError naming the variable', () => {
    const cases: { name: string; env: Record<string, string>; variable: string }[] = [
      { name: 'PORT=abc', env: { PORT: 'abc' }, variable: 'PORT' },
      { name: 'PORT=70000', env: { PORT: '70000' }, variable: 'PORT' },
      { name: 'PORT=-1', env: { PORT: '-1' }, variable: 'PORT' },
      { name: 'PORT=80.5', env: { PORT: '80.5' }, variable: 'PORT' },
      { name: 'DATABASE_URL=mysql://…', env: { DATABASE_URL: 'mysql://root@localhost/pki' }, variable: 'DATABASE_URL' },
      { name: 'DATABASE_URL=not a url', env: { DATABASE_URL: 'not a url' }, variable: 'DATABASE_URL' },
      { name: 'DATABASE_URL=sqlite: with no file', env: { DATABASE_URL: 'sqlite:' }, variable: 'DATABASE_URL' },
      { name: 'DATABASE_POOL_SIZE=0 with postgres', env: { DATABASE_URL: 'postgres://db/pki', DATABASE_POOL_SIZE: '0', FLEET_PKI_MASTER_KEY: MASTER_KEY }, variable: 'DATABASE_POOL_SIZE' },
      { name: 'PostgreSQL without FLEET_PKI_MASTER_KEY', env: { DATABASE_URL: 'postgres://db/pki' }, variable: 'FLEET_PKI_MASTER_KEY' },
      { name: 'PUBLIC_BASE_URL with credentials', env: { PUBLIC_BASE_URL: 'https://user:pw@pki.example.com' }, variable: 'PUBLIC_BASE_URL' },
      { name: 'PUBLIC_BASE_URL=ftp://x', env: { PUBLIC_BASE_URL: 'ftp://x' }, variable: 'PUBLIC_BASE_URL' },
      { name: 'PUBLIC_BASE_URL with a query', env: { PUBLIC_BASE_URL: 'https://pki.example.com/?a=1' }, variable: 'PUBLIC_BASE_URL' },
      { name: 'PUBLIC_BASE_URL with a fragment', env: { PUBLIC_BASE_URL: 'https://pki.example.com/#top' }, variable: 'PUBLIC_BASE_URL' },
      { name: 'PUBLIC_BASE_URL with an empty query ("/?")', env: { PUBLIC_BASE_URL: 'https://pki.example.com/?' }, variable: 'PUBLIC_BASE_URL' },
      { name: 'PUBLIC_BASE_URL with an empty fragment ("/#")', env: { PUBLIC_BASE_URL: 'https://pki.example.com/#' }, variable: 'PUBLIC_BASE_URL' },
      { name: 'PUBLIC_BASE_URL that is not a URL', env: { PUBLIC_BASE_URL: 'pki.example.com' }, variable: 'PUBLIC_BASE_URL' },
      { name: 'FLEET_PKI_MASTER_KEY of 31 bytes (hex)', env: { FLEET_PKI_MASTER_KEY: 'ab'.repeat(31) }, variable: 'FLEET_PKI_MASTER_KEY' },
      { name: 'FLEET_PKI_MASTER_KEY of 33 bytes (base64)', env: { FLEET_PKI_MASTER_KEY: Buffer.alloc(33, 7).toString('base64') }, variable: 'FLEET_PKI_MASTER_KEY' },
      { name: 'FLEET_PKI_MASTER_KEY that is short', env: { FLEET_PKI_MASTER_KEY: 'secret' }, variable: 'FLEET_PKI_MASTER_KEY' },
      {
        name: 'FLEET_PKI_MASTER_KEY with junk characters in otherwise valid base64',
        env: { FLEET_PKI_MASTER_KEY: `${Buffer.alloc(32, 9).toString('base64').slice(0, 20)}!!${Buffer.alloc(32, 9).toString('base64').slice(20)}` },
        variable: 'FLEET_PKI_MASTER_KEY',
      },
      { name: 'FLEET_PKI_BOOTSTRAP_ADMIN_KEY without the fpk_ prefix', env: { FLEET_PKI_BOOTSTRAP_ADMIN_KEY: 'admin-password' }, variable: 'FLEET_PKI_BOOTSTRAP_ADMIN_KEY' },
      {
        name: 'FLEET_PKI_BOOTSTRAP_ADMIN_KEY with upper-case hex prefix',
        env: { FLEET_PKI_BOOTSTRAP_ADMIN_KEY: `fpk_0123456789AB.${'A'.repeat(43)}` },
        variable: 'FLEET_PKI_BOOTSTRAP_ADMIN_KEY',
      },
      {
        name: 'FLEET_PKI_BOOTSTRAP_ADMIN_KEY with a short secret',
        env: { FLEET_PKI_BOOTSTRAP_ADMIN_KEY: `fpk_0123456789ab.${'A'.repeat(42)}` },
        variable: 'FLEET_PKI_BOOTSTRAP_ADMIN_KEY',
      },
      { name: 'LOG_LEVEL=loud', env: { LOG_LEVEL: 'loud' }, variable: 'LOG_LEVEL' },
      { name: 'LOG_FORMAT=text', env: { LOG_FORMAT: 'text' }, variable: 'LOG_FORMAT' },
      { name: 'CRL_VALIDITY_SECONDS=1', env: { CRL_VALIDITY_SECONDS: '1' }, variable: 'CRL_VALIDITY_SECONDS' },
      {
        name: 'CRL_REFRESH_BEFORE_SECONDS longer than the CRL validity',
        env: { CRL_VALIDITY_SECONDS: '3600', CRL_REFRESH_BEFORE_SECONDS: '7200' },
        variable: 'CRL_REFRESH_BEFORE_SECONDS',
      },
      { name: 'TRUST_PROXY=maybe', env: { TRUST_PROXY: 'maybe' }, variable: 'TRUST_PROXY' },
      { name: 'BODY_LIMIT_BYTES=10', env: { BODY_LIMIT_BYTES: '10' }, variable: 'BODY_LIMIT_BYTES' },
      { name: 'ISSUANCE_BACKDATE_SECONDS=1e3', env: { ISSUANCE_BACKDATE_SECONDS: '1e3' }, variable: 'ISSUANCE_BACKDATE_SECONDS' },
      { name: 'RENEWAL_AFTER_EXPIRY_DAYS naming a profile that does not renew', env: { RENEWAL_AFTER_EXPIRY_DAYS: 'claim=30' }, variable: 'RENEWAL_AFTER_EXPIRY_DAYS' },
      { name: 'RENEWAL_AFTER_EXPIRY_DAYS=device=0', env: { RENEWAL_AFTER_EXPIRY_DAYS: 'device=0' }, variable: 'RENEWAL_AFTER_EXPIRY_DAYS' },
      { name: 'RENEWAL_AFTER_EXPIRY_DAYS=device:30 (wrong separator)', env: { RENEWAL_AFTER_EXPIRY_DAYS: 'device:30' }, variable: 'RENEWAL_AFTER_EXPIRY_DAYS' },
      { name: 'RENEWAL_SAME_KEY_PROFILES naming an unknown profile', env: { RENEWAL_SAME_KEY_PROFILES: 'device,gadget' }, variable: 'RENEWAL_SAME_KEY_PROFILES' },
      { name: 'FLEET_AUDIT_LIST_PAGE_SIZE=251 (AWS lists at most 250)', env: { FLEET_AUDIT_LIST_PAGE_SIZE: '251' }, variable: 'FLEET_AUDIT_LIST_PAGE_SIZE' },
      { name: 'PRUNE_BATCH_SIZE=0', env: { PRUNE_BATCH_SIZE: '0' }, variable: 'PRUNE_BATCH_SIZE' },
      { name: 'PRUNE_INTERVAL_SECONDS=-1', env: { PRUNE_INTERVAL_SECONDS: '-1' }, variable: 'PRUNE_INTERVAL_SECONDS' },
      { name: 'PRUNE_PAUSE_MS beyond a minute', env: { PRUNE_PAUSE_MS: '60001' }, variable: 'PRUNE_PAUSE_MS' },
      { name: 'OCSP_REVOCATION_POLL_MS=50 (below 100)', env: { OCSP_REVOCATION_POLL_MS: '50' }, variable: 'OCSP_REVOCATION_POLL_MS' },
      { name: 'OCSP_REVOCATION_POLL_MS=120000 (above a minute)', env: { OCSP_REVOCATION_POLL_MS: '120000' }, variable: 'OCSP_REVOCATION_POLL_MS' },
      {
        name: 'KMS_NEW_KEY_AUTH_WAIT_MS beyond the five minutes AWS documents',
        env: { AWS_REGION: 'eu-west-1', KMS_NEW_KEY_AUTH_WAIT_MS: '300001' },
        variable: 'KMS_NEW_KEY_AUTH_WAIT_MS',
      },
    ];
    for (const { name, env, variable } of cases) {
      it(`refuses ${name}`, () => expectConfigError({ DATA_DIR: '/d', ...env }, variable));
    }

    it('waits up to 30 s for a new KMS key to become usable by default, and takes KMS_NEW_KEY_AUTH_WAIT_MS (0 = not at all)', () => {
      assert.equal(loadConfig({ DATA_DIR: '/d', AWS_REGION: 'eu-west-1' }).kms?.newKeyAuthWaitMs, 30_000);
      assert.equal(loadConfig({ DATA_DIR: '/d', AWS_REGION: 'eu-west-1', KMS_NEW_KEY_AUTH_WAIT_MS: '0' }).kms?.newKeyAuthWaitMs, 0);
      assert.equal(loadConfig({ DATA_DIR: '/d', AWS_REGION: 'eu-west-1', KMS_NEW_KEY_AUTH_WAIT_MS: '300000' }).kms?.newKeyAuthWaitMs, 300_000);
    });

    it('quotes the offending value for a non-integer PORT', () => {
      assert.throws(() => loadConfig({ PORT: 'abc' }), /PORT must be an integer, got "abc"/);
    });

    it('gives ConfigError the name "ConfigError"', () => {
      assert.throws(() => loadConfig({ PORT: 'abc' }), { name: 'ConfigError' });
    });
  });

  describe('database', () => {
    const postgres: [string, string][] = [
      ['postgres://', 'postgres://pki:secret@db.internal:5432/pki'],
      ['postgresql://', 'postgresql://pki@db.internal/pki?sslmode=require'],
    ];
    for (const [scheme, url] of postgres) {
      it(`selects PostgreSQL for a ${scheme} URL, with a pool of 10 by default`, () => {
        assert.deepEqual(loadConfig({ DATABASE_URL: url, FLEET_PKI_MASTER_KEY: MASTER_KEY }).database, { driver: 'postgres', url, poolSize: 10 });
      });
    }

    it('takes the PostgreSQL pool size from DATABASE_POOL_SIZE', () => {
      const config = loadConfig({ DATABASE_URL: 'postgres://db/pki', DATABASE_POOL_SIZE: '25', FLEET_PKI_MASTER_KEY: MASTER_KEY });
      assert.deepEqual(config.database, { driver: 'postgres', url: 'postgres://db/pki', poolSize: 25 });
    });

    it('resolves a sqlite: URL to an absolute file path', () => {
      assert.deepEqual(loadConfig({ DATABASE_URL: 'sqlite:./x/pki.sqlite' }).database, {
        driver: 'sqlite',
        file: path.resolve('./x/pki.sqlite'),
      });
      assert.deepEqual(loadConfig({ DATABASE_URL: 'sqlite:///srv/pki.sqlite' }).database, { driver: 'sqlite', file: '/srv/pki.sqlite' });
    });
  });

  describe('WORKERS', () => {
    it('defaults to one per CPU on PostgreSQL and to 1 on SQLite', () => {
      assert.equal(loadConfig({ DATABASE_URL: 'postgres://db/pki', FLEET_PKI_MASTER_KEY: MASTER_KEY }).workers, os.availableParallelism());
      assert.equal(loadConfig({ DATA_DIR: '/d' }).workers, 1);
      assert.equal(loadConfig({ DATABASE_URL: 'postgres://db/pki', FLEET_PKI_MASTER_KEY: MASTER_KEY, WORKERS: '3' }).workers, 3);
      assert.equal(loadConfig({ DATA_DIR: '/d', WORKERS: '1' }).workers, 1);
    });

    it('refuses more than one worker on SQLite, saying why (one writer per database file)', () => {
      for (const env of [{ DATA_DIR: '/d', WORKERS: '2' }, { DATABASE_URL: 'sqlite:/srv/pki.sqlite', WORKERS: '4' }] as Record<string, string>[]) {
        expectConfigError(env, 'WORKERS');
        assert.throws(() => loadConfig(env), /must be 1 with SQLite, got \d: .*one writer.*SQLITE_BUSY.*PostgreSQL/);
      }
    });

    it('bounds WORKERS to 1-256', () => {
      for (const bad of ['0', '257', '-1', 'two', '1.5']) expectConfigError({ DATABASE_URL: 'postgres://db/pki', FLEET_PKI_MASTER_KEY: MASTER_KEY, WORKERS: bad }, 'WORKERS');
    });
  });

  describe('CRYPTO_THREADS', () => {
    const pg = { DATABASE_URL: 'postgres://db/pki', FLEET_PKI_MASTER_KEY: MASTER_KEY };
    it('is off unless set', () => {
      assert.equal(loadConfig({ DATA_DIR: '/d' }).cryptoThreads, 0);
      assert.equal(loadConfig({ ...pg, WORKERS: '2' }).cryptoThreads, 0);
      assert.equal(loadConfig({ DATA_DIR: '/d', CRYPTO_THREADS: '1' }).cryptoThreads, 1);
      assert.equal(loadConfig({ ...pg, WORKERS: '2', CRYPTO_THREADS: '3' }).cryptoThreads, 3);
    });

    it('bounds CRYPTO_THREADS to 0-64', () => {
      for (const bad of ['65', '-1', 'all', '1.5']) expectConfigError({ DATA_DIR: '/d', CRYPTO_THREADS: bad }, 'CRYPTO_THREADS');
    });
  });

  describe('renewal switches', () => {
    it('are off by default', () => {
      const { renewal } = loadConfig({ DATA_DIR: '/d' });
      assert.deepEqual(renewal.afterExpiryDays, {});
      assert.deepEqual(renewal.sameKeyProfiles, []);
    });
    it('read per-profile days after expiry and same-key profiles', () => {
      const { renewal } = loadConfig({ DATA_DIR: '/d', RENEWAL_AFTER_EXPIRY_DAYS: 'device=30, server=7', RENEWAL_SAME_KEY_PROFILES: 'device' });
      assert.deepEqual(renewal.afterExpiryDays, { device: 30, server: 7 });
      assert.deepEqual(renewal.sameKeyProfiles, ['device']);
    });
  });

  describe('PUBLIC_BASE_URL', () => {
    const cases: [string, string][] = [
      ['https://pki.example.com/', 'https://pki.example.com'],
      ['https://pki.example.com///', 'https://pki.example.com'],
      ['https://pki.example.com/fleet/', 'https://pki.example.com/fleet'],
      ['http://10.0.0.5:8080', 'http://10.0.0.5:8080'],
    ];
    for (const [input, expected] of cases) {
      it(`normalises ${input} to ${expected} (trailing slashes removed)`, () => {
        assert.equal(loadConfig({ PUBLIC_BASE_URL: input }).publicBaseUrl, expected);
      });
    }
  });

  describe('FLEET_PKI_MASTER_KEY', () => {
    const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
    it('accepts 64 hex characters', () => {
      assert.deepEqual(loadConfig({ FLEET_PKI_MASTER_KEY: key.toString('hex') }).keys.masterKey, key);
    });
    it('accepts base64 of 32 bytes', () => {
      assert.deepEqual(loadConfig({ FLEET_PKI_MASTER_KEY: key.toString('base64') }).keys.masterKey, key);
    });
  });

  describe('other settings', () => {
    it('reads IOT_PROFILE_ALLOCATION as profile name → allocation, checking each allocation\'s shape', () => {
      const env = { DATA_DIR: '/d', AWS_REGION: 'us-east-1' };
      assert.deepEqual(loadConfig(env).iot?.profileAllocation, {});
      const allocation = { device: { mode: 'weighted', weights: { 'eu-prod': 3, 'us-prod': 1 } } };
      assert.deepEqual(loadConfig({ ...env, IOT_PROFILE_ALLOCATION: JSON.stringify(allocation) }).iot?.profileAllocation, allocation);
      for (const bad of ['not json', '[]', '{"device": {"mode": "sideways"}}', '{"device": {"mode": "fixed", "targetId": "UPPER"}}', '{"Bad Name": {"mode": "fixed", "targetId": "a"}}']) {
        assert.throws(() => loadConfig({ ...env, IOT_PROFILE_ALLOCATION: bad }), /IOT_PROFILE_ALLOCATION/, bad);
      }
    });

    it('reads AWS_ACCOUNT_ID (the default IoT target\'s account) as 12 digits only', () => {
      assert.equal(loadConfig({ DATA_DIR: '/d', AWS_REGION: 'us-east-1', AWS_ACCOUNT_ID: '111122223333' }).iot?.accountId, '111122223333');
      assert.equal(loadConfig({ DATA_DIR: '/d', AWS_REGION: 'us-east-1' }).iot?.accountId, undefined);
      assert.throws(() => loadConfig({ DATA_DIR: '/d', AWS_REGION: 'us-east-1', AWS_ACCOUNT_ID: '1234' }), /AWS_ACCOUNT_ID/);
    });
    it('applies isDestinationArn (common/destination-arn.ts) to IOT_EVENTS_DESTINATION_ARN', () => {
      const candidates = [
        'arn:aws:iot:us-east-1:111122223333:ruledestination/http/7a280e37-b9c6-47a2-a751-0703693f46e4',
        'arn:aws-us-gov:iot:us-gov-west-1:111122223333:ruledestination/http/abc',
        'arn:aws:iot:us-east-1:111122223333:ruledestination/vpc/abc',
        'arn:aws:iot:us-east-1:11112222333:ruledestination/http/abc',
        'arn:aws:iot:us-east-1:111122223333:ruledestination/http/abc\n',
        `arn:aws:iot:us-east-1:111122223333:ruledestination/http/${'a'.repeat(80)}`,
        'arn:aws:sns:us-east-1:111122223333:ruledestination/http/abc',
      ];
      for (const arn of candidates) {
        const load = () => loadConfig({ DATA_DIR: '/d', AWS_REGION: 'us-east-1', IOT_EVENTS_DESTINATION_ARN: arn });
        if (isDestinationArn(arn)) assert.equal(load().iot?.eventsDestinationArn, arn);
        else assert.throws(load, /IOT_EVENTS_DESTINATION_ARN/, JSON.stringify(arn));
      }
    });

    it('reads the fleet-audit interval in hours, or in seconds when FLEET_AUDIT_INTERVAL_SECONDS is set (0-86400)', () => {
      assert.deepEqual(loadConfig({}).fleetAudit, { intervalHours: 24, intervalSeconds: 0, listPageSize: 250 });
      assert.deepEqual(loadConfig({ FLEET_AUDIT_INTERVAL_SECONDS: '20' }).fleetAudit, { intervalHours: 24, intervalSeconds: 20, listPageSize: 250 });
      assert.throws(() => loadConfig({ FLEET_AUDIT_INTERVAL_SECONDS: '86401' }), /FLEET_AUDIT_INTERVAL_SECONDS/);
    });

    it('accepts a well-formed bootstrap admin key', () => {
      assert.equal(loadConfig({ FLEET_PKI_BOOTSTRAP_ADMIN_KEY: VALID_ADMIN_KEY }).auth.bootstrapAdminKey, VALID_ADMIN_KEY);
    });

    it('reads TRUST_PROXY as a list of proxy addresses', () => {
      assert.deepEqual(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.0.2.1,2001:db8::/32' }).trustProxy, ['10.0.0.0/8', '192.0.2.1', '2001:db8::/32']);
      for (const bad of ['1', '10.0.0.0/8,nope', 'yes']) assert.throws(() => loadConfig({ TRUST_PROXY: bad }), /TRUST_PROXY/);
    });

    it('reads the rate limits and HTTP server limits, 0/off as off', () => {
      const config = loadConfig({ RATE_LIMIT_API_KEY: '600/min', RATE_LIMIT_SOURCE: 'off', RATE_LIMIT_CLAIM: '0', HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_MAX_CONNECTIONS_PER_SOURCE: '64' });
      assert.deepEqual(config.rateLimits, { apiKey: { limit: 600, windowSeconds: 60 }, source: null, claim: null, station: { limit: 30000, windowSeconds: 60 } });
      assert.equal(config.http.headersTimeoutMs, 5000);
      assert.equal(config.http.maxConnectionsPerSource, 64);
      assert.throws(() => loadConfig({ RATE_LIMIT_STATION: '10/day' }), /RATE_LIMIT_STATION must look like "600\/min"/);
      assert.throws(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '30000', HTTP_REQUEST_TIMEOUT_MS: '20000' }), /HTTP_REQUEST_TIMEOUT_MS/);
    });

    it('reads TRUST_PROXY=true, LOG_LEVEL=debug and LOG_FORMAT=pretty', () => {
      const config = loadConfig({ TRUST_PROXY: 'true', LOG_LEVEL: 'debug', LOG_FORMAT: 'pretty' });
      assert.equal(config.logFormat, 'pretty');
      assert.equal(config.trustProxy, true);
      assert.equal(config.logLevel, 'debug');
    });

    it('refreshes the CRL halfway through its validity unless told otherwise', () => {
      const config = loadConfig({ CRL_VALIDITY_SECONDS: '3600' });
      assert.deepEqual(config.crl, { validitySeconds: 3600, refreshBeforeSeconds: 1800, stateFile: path.resolve(config.dataDir, 'crl-state.json'), allowRollback: false });
      const told = loadConfig({ CRL_VALIDITY_SECONDS: '3600', CRL_REFRESH_BEFORE_SECONDS: '600' }).crl;
      assert.deepEqual({ validitySeconds: told.validitySeconds, refreshBeforeSeconds: told.refreshBeforeSeconds }, { validitySeconds: 3600, refreshBeforeSeconds: 600 });
    });

    it('keeps the CRL state file under the data directory unless told, and publishes over a rollback only when told', () => {
      assert.equal(loadConfig({ CRL_STATE_FILE: '/var/lib/fleet-pki/crl.json' }).crl.stateFile, '/var/lib/fleet-pki/crl.json');
      assert.equal(loadConfig({ CRL_ALLOW_ROLLBACK: 'true' }).crl.allowRollback, true);
      assert.throws(() => loadConfig({ CRL_ALLOW_ROLLBACK: 'yes' }), /CRL_ALLOW_ROLLBACK/);
    });

    it('lets IoT targets name any endpoint only when told (IOT_TARGET_ENDPOINTS_ANY, tests and development)', () => {
      assert.equal(loadConfig({}).iotTargetEndpointsAny, false);
      assert.equal(loadConfig({ IOT_TARGET_ENDPOINTS_ANY: 'true' }).iotTargetEndpointsAny, true);
      assert.throws(() => loadConfig({ IOT_TARGET_ENDPOINTS_ANY: 'yes' }), /IOT_TARGET_ENDPOINTS_ANY/);
    });

    it('accepts the PORT boundaries 0 and 65535', () => {
      assert.equal(loadConfig({ PORT: '0' }).port, 0);
      assert.equal(loadConfig({ PORT: '65535' }).port, 65535);
    });
  });
});

import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { createApp } from '../../src/app.factory';
import { Clock } from '../../src/common/clock';
import { generateApiKey } from '../../src/auth/api-key-secret';
import { ApiKeysService } from '../../src/auth/api-keys.service';
import { loadConfig } from '../../src/app.config';
import { AppConfig } from '../../src/config/config';
import { PG_ENV, TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { IotStandIn, KmsStandIn } from '../../tools/standins';
import { contractChecked } from './response-validator';
import { capturingLogOutput, plantCanary, recordSecret } from './log-capture';

export type Driver = 'sqlite' | 'postgres';

/** The drivers a suite runs on: SQLite always, PostgreSQL when FLEET_PKI_TEST_PG_URL names a server. */
export function drivers(): { driver: Driver; skip: string | false }[] {
  return [
    { driver: 'sqlite', skip: false },
    { driver: 'postgres', skip: process.env[PG_ENV] ? false : `PostgreSQL suite skipped: ${PG_ENV} is not set` },
  ];
}

export interface TestApp {
  app: NestFastifyApplication;
  config: AppConfig;
  baseUrl: string;
  adminKey: string;
  db: TemporaryDatabase;
  /** supertest against the listening server; every response is checked against openapi.yaml (response-validator.ts). */
  http: () => request.Agent;
  close(): Promise<void>;
}

// The real AWS SDK runs in tests, always against local stand-ins: give it throw-away credentials so its
// default chain never looks further (instance metadata, profiles).
process.env.AWS_ACCESS_KEY_ID = 'AKIAFLEETPKITEST0000';
process.env.AWS_SECRET_ACCESS_KEY = 'fleet-pki-test-secret';
process.env.AWS_EC2_METADATA_DISABLED = 'true';
delete process.env.AWS_PROFILE;
delete process.env.AWS_SESSION_TOKEN;

export interface TestAppOptions {
  env?: Record<string, string>;
  /** Configure the aws-kms backend against this stand-in. */
  kms?: KmsStandIn;
  /** Configure AWS IoT against this stand-in. */
  iot?: IotStandIn;
  clock?: Clock;
  /** Share a database with another test app (a second replica); the caller drops it. */
  sharedDatabase?: TemporaryDatabase;
  /** Use this data directory (kept across restarts; the caller removes it) instead of a fresh one. */
  dataDir?: string;
}

/** A clock the test moves by hand. */
export class ManualClock extends Clock {
  constructor(private current = new Date()) {
    super();
  }
  now(): Date {
    return new Date(this.current);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

/**
 * The configuration of a test instance on `db`: its own data directory, quiet logs, AWS pointed at the stand-ins
 * given. The full application (startTestApp) and the service tests (test/services) both start from it.
 */
export function testConfig(driver: Driver, db: TemporaryDatabase, dataDir: string, options: Pick<TestAppOptions, 'env' | 'kms' | 'iot'> = {}): AppConfig {
  const base = loadConfig({
    DATA_DIR: dataDir,
    LOG_LEVEL: 'error',
    ...(options.kms ? { AWS_REGION: options.kms.region, AWS_ENDPOINT_URL_KMS: options.kms.endpoint } : {}),
    ...(options.iot ? { AWS_REGION: options.iot.region, AWS_ENDPOINT_URL_IOT: options.iot.endpoint } : {}),
    // PostgreSQL deployments must share one master key (config refuses a per-replica key file there).
    ...(driver === 'postgres' ? { FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex') } : {}),
    // The suites run with the default (CSRs read inline); CRYPTO_THREADS=1 runs them with CSRs read on a thread.
    ...(process.env.CRYPTO_THREADS ? { CRYPTO_THREADS: process.env.CRYPTO_THREADS } : {}),
    ...options.env,
  });
  return { ...base, database: db.config };
}

/** Boots the real application on a fresh database of the driver, listening on a random loopback port. */
export async function startTestApp(driver: Driver, options: TestAppOptions = {}): Promise<TestApp> {
  const db = options.sharedDatabase ?? (await temporaryDatabase(driver));
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-data-'));
  const adminKey = generateApiKey().key;
  const config = testConfig(driver, db, dataDir, { ...options, env: { FLEET_PKI_BOOTSTRAP_ADMIN_KEY: adminKey, ...options.env } });
  recordSecret('bootstrap admin key', adminKey);
  recordSecret('bootstrap admin key', config.auth.bootstrapAdminKey);
  if (config.keys.masterKey) recordMasterKey(config.keys.masterKey);
  const app = await createApp(config, options.clock, capturingLogOutput(config.logLevel));
  if (fs.existsSync(config.keys.masterKeyFile)) recordMasterKey(Buffer.from(fs.readFileSync(config.keys.masterKeyFile, 'utf8').trim(), 'hex'));
  plantCanary();
  await app.get(ApiKeysService).bootstrap(config.auth.bootstrapAdminKey);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address() as { port: number };
  const baseUrl = `${config.tls ? 'https' : 'http'}://127.0.0.1:${address.port}`;
  return {
    app,
    config,
    baseUrl,
    adminKey,
    db,
    http: () => contractChecked(request.agent(baseUrl), request.Test),
    async close() {
      await app.close();
      if (!options.sharedDatabase) await db.drop();
      if (!options.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function recordMasterKey(key: Buffer): void {
  recordSecret('master key (hex)', key.toString('hex'));
  recordSecret('master key (base64)', key.toString('base64'));
}

export function bearer(key: string): { Authorization: string } {
  return { Authorization: `Bearer ${key}` };
}

/** supertest body parser that keeps binary bodies (DER) as a Buffer. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function binaryBody(res: any, done: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => done(null, Buffer.concat(chunks)));
}

/** Two app instances ("replicas") on one fresh database of the driver, sharing a master key. */
export async function startReplicas(driver: Driver, env: Record<string, string> = {}): Promise<{ a: TestApp; b: TestApp; close(): Promise<void> }> {
  const shared = await temporaryDatabase(driver);
  const common = { FLEET_PKI_MASTER_KEY: randomBytes(32).toString('hex'), ...env };
  const a = await startTestApp(driver, { sharedDatabase: shared, env: common });
  const b = await startTestApp(driver, { sharedDatabase: shared, env: common });
  return {
    a,
    b,
    async close() {
      await a.close();
      await b.close();
      await shared.drop();
    },
  };
}

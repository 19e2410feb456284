import 'reflect-metadata';
import cluster from 'node:cluster';
import { loadConfig } from './app.config';
import { serveAsWorker, Started, superviseWorkers, workerSlot } from './cluster';
import { releaseStartupMemory } from './startup-memory';
import { AppConfig, ConfigError } from './config/config';

/** better-sqlite3 13 needs Node ≥ 22 (docs/runtime.md): say so instead of crashing inside the native module. */
const MIN_NODE_MAJOR = 22;

/** The application in this process: built, initial admin key made when there is none, listening. */
async function serve(config: AppConfig): Promise<Started> {
  // Loaded here, not at the top: a cluster's primary serves nothing and never loads the application (docs/runtime.md, "Memory").
  const [{ createApp }, { ApiKeysService }, { MetricsService }] = await Promise.all([
    import('./app.factory.js'),
    import('./auth/api-keys.service.js'),
    import('./metrics/metrics.service.js'),
  ]);
  const app = await createApp(config);
  const firstKey = await app.get(ApiKeysService).bootstrap(config.auth.bootstrapAdminKey);
  app.get(MetricsService).workerInfo.set({ worker: String(workerSlot()), pid: String(process.pid) }, 1);
  releaseStartupMemory();
  await app.listen({ port: config.port, host: config.host });
  const address = app.getHttpServer().address();
  return { port: typeof address === 'object' && address ? address.port : config.port, firstKey: firstKey ?? undefined };
}

function announce(config: AppConfig, { port, firstKey }: Started): void {
  const db = config.database.driver === 'sqlite' ? `SQLite ${config.database.file}` : 'PostgreSQL';
  const workers = config.workers === 1 ? '1 process' : `${config.workers} workers`;
  console.log(`Fleet PKI listening on ${config.tls ? 'https' : 'http'}://${config.host}:${port} (public URL ${config.publicBaseUrl}; ${db}; ${workers}; API docs at /docs; Node ${process.version})`);
  if (firstKey) {
    console.log('');
    console.log('Initial admin API key (shown once, store it now):');
    console.log(`  ${firstKey}`);
    console.log('');
  }
  console.log('Authenticate with: Authorization: Bearer <API key>   e.g. curl -H "Authorization: Bearer $FLEET_PKI_KEY" ' +
    `${config.tls ? "https" : "http"}://localhost:${port}/v1/authorities`);
}

async function main(): Promise<void> {
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor < MIN_NODE_MAJOR) {
    console.error(`Fleet PKI needs Node.js ${MIN_NODE_MAJOR} or later (24 LTS recommended); this is ${process.version}. ` +
      'Start it with `npm start`, which runs the Node 24 that `npm ci` installed.');
    process.exit(1);
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  // WORKERS (src/cluster.ts): one process, or a primary supervising that many workers.
  if (config.workers === 1) announce(config, await serve(config));
  else if (cluster.isPrimary) {
    releaseStartupMemory();
    superviseWorkers(config, (started) => announce(config, started));
  }
  else await serveAsWorker(() => serve(config));
}

main().catch((err: unknown) => {
  console.error('Fleet PKI failed to start:', err instanceof Error ? err.message : err);
  // A setting found wrong only once the app is built (a PKCS #11 token or PIN refused) is a configuration error too.
  process.exit(err instanceof ConfigError ? 78 : 1);
});

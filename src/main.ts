import 'reflect-metadata';
import { createApp } from './app.factory';
import { ApiKeysService } from './auth/api-keys.service';
import { ConfigError, loadConfig } from './config/config';

async function main(): Promise<void> {
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
  const app = await createApp(config);
  const firstKey = await app.get(ApiKeysService).bootstrap(config.auth.bootstrapAdminKey);
  await app.listen({ port: config.port, host: config.host });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const db = config.database.driver === 'sqlite' ? `SQLite ${config.database.file}` : 'PostgreSQL';
  console.log(`Fleet PKI listening on ${config.tls ? 'https' : 'http'}://${config.host}:${port} (public URL ${config.publicBaseUrl}; ${db}; API docs at /docs)`);
  if (firstKey) {
    console.log('');
    console.log('Initial admin API key (shown once, store it now):');
    console.log(`  ${firstKey}`);
    console.log('');
  }
  console.log('Authenticate with: Authorization: Bearer <API key>   e.g. curl -H "Authorization: Bearer $FLEET_PKI_KEY" ' +
    `${config.tls ? "https" : "http"}://localhost:${port}/v1/authorities`);
}

main().catch((err: unknown) => {
  console.error('Fleet PKI failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});

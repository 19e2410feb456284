/**
 * Starts the AWS KMS stand-in (tools/standins/kms/) on its own, for local demos and benchmarks:
 *   npm run dev:kms
 * Knobs from the environment: KMS_STANDIN_PORT (4566), KMS_STANDIN_LATENCY_MS (0), KMS_STANDIN_TPS (0 = no limit),
 * KMS_STANDIN_BURST (token-bucket capacity, default one second of TPS),
 * KMS_STANDIN_THROTTLE_PROBABILITY (0), KMS_STANDIN_FAILURE_MODE (none | http500 | drop). They can be changed
 * while it runs: curl -X POST localhost:4566/_standin/config -d '{"latencyMs": 20}'.
 * Keys live in memory only: they are gone when it stops.
 */
import { envNumber, stopOnSignals } from './lib/stand-in-env';
import { KmsStandIn } from '../tools/standins';


async function main(): Promise<void> {
  const port = envNumber('KMS_STANDIN_PORT', 4566);
  const failureMode = (process.env.KMS_STANDIN_FAILURE_MODE || 'none') as 'none' | 'http500' | 'drop';
  if (!['none', 'http500', 'drop'].includes(failureMode)) throw new Error('KMS_STANDIN_FAILURE_MODE must be none, http500 or drop');
  const kms = await new KmsStandIn({
    latencyMs: envNumber('KMS_STANDIN_LATENCY_MS', 0),
    tps: envNumber('KMS_STANDIN_TPS', 0),
    burst: process.env.KMS_STANDIN_BURST ? envNumber('KMS_STANDIN_BURST', 0) : undefined,
    throttleProbability: envNumber('KMS_STANDIN_THROTTLE_PROBABILITY', 0),
    failureMode,
  }).start(port);
  console.log(`KMS stand-in listening on ${kms.endpoint} (${JSON.stringify(kms.knobs)})`);
  console.log('Run the service against it with:');
  console.log(`  AWS_REGION=${kms.region} AWS_ENDPOINT_URL_KMS=${kms.endpoint} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local npm start`);
  stopOnSignals(() => kms.stop());
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

/**
 * Starts the AWS IoT control-plane stand-in (test/support/iot-standin.ts) on its own, for local demos:
 *   npm run dev:iot
 * Knobs from the environment: IOT_STANDIN_PORT (4567), IOT_STANDIN_LATENCY_MS (0), IOT_STANDIN_TPS (0 = no limit),
 * IOT_STANDIN_FAILURE_MODE (none | http503 | drop); changeable while it runs through POST /_standin/config.
 * Its state lives in memory only.
 */
import { IotStandIn } from '../test/support/iot-standin';

function number(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return value;
}

async function main(): Promise<void> {
  const failureMode = (process.env.IOT_STANDIN_FAILURE_MODE || 'none') as 'none' | 'http503' | 'drop';
  if (!['none', 'http503', 'drop'].includes(failureMode)) throw new Error('IOT_STANDIN_FAILURE_MODE must be none, http503 or drop');
  const iot = await new IotStandIn({
    latencyMs: number('IOT_STANDIN_LATENCY_MS', 0),
    tps: number('IOT_STANDIN_TPS', 0),
    failureMode,
  }).start(number('IOT_STANDIN_PORT', 4567));
  console.log(`AWS IoT stand-in listening on ${iot.endpoint} (account ${iot.account}, registration code ${iot.registrationCode})`);
  console.log('Run the service against it with:');
  console.log(`  AWS_REGION=${iot.region} AWS_ENDPOINT_URL_IOT=${iot.endpoint} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local npm start`);
  const stop = () => void iot.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

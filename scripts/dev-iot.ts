/**
 * Starts the AWS IoT control-plane stand-in (tools/standins/iot/) on its own, for local demos:
 *   npm run dev:iot
 * Knobs from the environment: IOT_STANDIN_PORT (4567), IOT_STANDIN_LATENCY_MS (0), IOT_STANDIN_TPS (0 = no limit),
 * IOT_STANDIN_FAILURE_MODE (none | http503 | drop); changeable while it runs through POST /_standin/config.
 * Its state lives in memory only.
 */
import { envNumber, stopOnSignals } from './lib/stand-in-env';
import { IotStandIn } from '../tools/standins';


async function main(): Promise<void> {
  const failureMode = (process.env.IOT_STANDIN_FAILURE_MODE || 'none') as 'none' | 'http503' | 'drop';
  if (!['none', 'http503', 'drop'].includes(failureMode)) throw new Error('IOT_STANDIN_FAILURE_MODE must be none, http503 or drop');
  const iot = await new IotStandIn({
    latencyMs: envNumber('IOT_STANDIN_LATENCY_MS', 0),
    tps: envNumber('IOT_STANDIN_TPS', 0),
    failureMode,
  }).start(envNumber('IOT_STANDIN_PORT', 4567));
  console.log(`AWS IoT stand-in listening on ${iot.endpoint} (account ${iot.account}, registration code ${iot.registrationCode})`);
  console.log('Run the service against it with:');
  console.log(`  AWS_REGION=${iot.region} AWS_ENDPOINT_URL_IOT=${iot.endpoint} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local npm start`);
  stopOnSignals(() => iot.stop());
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

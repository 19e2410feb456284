import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { TestVendor } from '../test/support/secure-element-manifests';
import { IotStandIn } from '../tools/standins';
import { option, processMemory, startServiceProcess, writeResults } from './support';

/**
 * `npm run bench -- manifest [--entries 100000] [--db sqlite|postgres] [--registration without-ca|none]`
 *
 * A secure-element manifest import (docs/secure-elements.md) end to end: a test-made manifest of N entries in the Microchip
 * format (one test vendor; device keys from a small pool) is written to a file, streamed to POST /v1/manifests of the
 * service in its own process, and the import is followed through GET /v1/manifests/{id} until it is done. Reports the
 * upload time, entries/s of the import, the outcome counts, and the service's peak RSS (VmHWM, /proc) — the goal is at
 * most 300 MB whatever N, since the manifest is never held in memory. With without-ca the AWS IoT registrations are queued
 * in the outbox (the IoT stand-in runs in this process, at AWS's 10/s: they drain long after the import; not measured).
 */
export async function manifest(): Promise<void> {
  const entries = Number(option('entries', '100000'));
  const driver = option('db', 'sqlite') as 'sqlite' | 'postgres';
  const registration = option('registration', 'without-ca');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-manifest-bench-'));
  const file = path.join(dir, 'manifest.json');
  const iot = registration === 'none' ? undefined : await new IotStandIn().start();
  try {
    const vendor = await TestVendor.create();
    let started = performance.now();
    const out = fs.createWriteStream(file);
    for await (const chunk of vendor.manifest(entries)) if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    await new Promise<void>((resolve) => out.end(resolve));
    const sizeMb = fs.statSync(file).size / 1024 / 1024;
    console.log(`manifest: ${entries} entries, ${sizeMb.toFixed(1)} MB, generated in ${((performance.now() - started) / 1000).toFixed(1)} s`);

    const service = await startServiceProcess(driver, {
      ...(iot
        ? { AWS_REGION: iot.region, AWS_ENDPOINT_URL_IOT: iot.endpoint, AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_EC2_METADATA_DISABLED: 'true' }
        : {}),
      MANIFEST_POLL_MS: '1000',
    });
    try {
      const idle = processMemory(service.pid);
      started = performance.now();
      const uploaded = await upload(service.baseUrl, service.adminKey, file, vendor.signerCertificateBase64, registration);
      const uploadSeconds = (performance.now() - started) / 1000;
      if (uploaded.status !== 202) throw new Error(`upload answered ${uploaded.status}: ${JSON.stringify(uploaded.body)}`);
      const id = String(uploaded.body.id);
      console.log(`uploaded in ${uploadSeconds.toFixed(1)} s (${(sizeMb / uploadSeconds).toFixed(1)} MB/s); import ${id}`);
      let job: Record<string, unknown> = uploaded.body;
      let lastPrint = 0;
      const samples: { seconds: number; processed: number; rssMb: number }[] = [];
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        job = await get(service.baseUrl, service.adminKey, `/v1/manifests/${id}`);
        const memory = processMemory(service.pid);
        const seconds = (performance.now() - started) / 1000;
        samples.push({ seconds, processed: Number(job.processed), rssMb: memory?.rssMb ?? NaN });
        if (seconds - lastPrint >= 10) {
          lastPrint = seconds;
          console.log(`  ${seconds.toFixed(0)} s: ${String(job.processed)}/${entries} (${String(job.status)}), RSS ${memory?.rssMb.toFixed(0)} MB`);
        }
        if (job.status === 'done' || job.status === 'failed') break;
      }
      const seconds = (performance.now() - started) / 1000;
      const peak = processMemory(service.pid);
      const results = {
        entries,
        driver,
        registration,
        manifestMb: Number(sizeMb.toFixed(1)),
        uploadSeconds: Number(uploadSeconds.toFixed(2)),
        importSeconds: Number(seconds.toFixed(2)),
        entriesPerSecond: Math.round(entries / seconds),
        status: job.status,
        imported: job.imported,
        skipped: job.skipped,
        failed: job.failed,
        idleRssMb: Number(idle?.rssMb.toFixed(1)),
        peakRssMb: Number(peak?.hwmMb.toFixed(1)),
        peakGoalMb: 300,
        samples: samples.filter((_, i) => i % 10 === 0),
      };
      console.log(
        `import ${String(job.status)}: ${String(job.imported)} imported, ${String(job.skipped)} skipped, ${String(job.failed)} refused in ${seconds.toFixed(1)} s ` +
          `(upload included) = ${results.entriesPerSecond} entries/s`,
      );
      console.log(`service memory: idle RSS ${results.idleRssMb} MB; peak RSS (VmHWM) ${results.peakRssMb} MB (goal: <= 300 MB)`);
      console.log(`results: ${writeResults('manifest', results)}`);
      if (job.status !== 'done' || Number(job.imported) !== entries) throw new Error('the import did not import every entry');
    } finally {
      await service.stop();
    }
  } finally {
    await iot?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Streams the file as the request body (never read whole into this process either). */
function upload(baseUrl: string, key: string, file: string, signer: string, registration: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${baseUrl}/v1/manifests?registration=${registration}`,
      { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', 'X-Manifest-Signer-Certificate': signer } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown> }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    fs.createReadStream(file).pipe(req);
  });
}

async function get(baseUrl: string, key: string, route: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${baseUrl}${route}`, { headers: { Authorization: `Bearer ${key}` } });
  if (res.status !== 200) throw new Error(`GET ${route}: ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

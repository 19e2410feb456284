import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs, WriteStream } from 'node:fs';
import * as path from 'node:path';
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext, SYSTEM_CONTEXT } from '../common/actor';
import { CertificateRecord, PRE_PROVISIONED_PROFILE } from '../certificates/certificate';
import { CertificateRepository } from '../certificates/certificate.repository';
import { Clock } from '../common/clock';
import { decodeCursor, encodeCursor } from '../common/cursor';
import { Errors } from '../common/errors';
import { JsonArrayStreamError, jsonArrayElements } from '../common/json-array-stream';
import { Leases } from '../common/pacing';
import { isoSeconds } from '../common/time';
import { yieldToEventLoop } from '../common/yield';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { ImportedIdentitySync, ImportedRegistrationMode } from '../iot/imported-identity-sync';
import { DEFAULT_TARGET_ID } from '../iot/iot-target';
import { IotTargetsService } from '../iot/iot-targets.service';
import { claimedUniqueId, ManifestEntryError, ManifestSigner, MAX_ENTRY_CHARS, readManifestSigner, VerifiedManifestEntry, verifyManifestEntry } from '../pki/manifest';
import { ManifestEntryRefusal, ManifestImport, MAX_KEPT_FAILURES } from './manifest-import';
import { ManifestImportRepository } from './manifest-import.repository';

export interface ManifestUploadOptions {
  /** The vendor's manifest signer certificate: PEM, or the base64 of its DER. */
  signerCertificate: string;
  registration: ImportedRegistrationMode;
  iotTargetId?: string;
  policyName?: string;
}

/** A lease on one import: the replica holding it runs it, renewing at every batch; a dead holder's passes on after this. */
const LEASE_MS = 15_000;

/**
 * Secure-element manifest imports (docs/secure-elements.md): a manifest is streamed to a file in the data directory
 * (hashed and its entries counted on the way, never held in memory), then imported by a resumable job — entries
 * verified in batches, each batch committed in one transaction with its certificates, their AWS IoT registrations (outbox)
 * and its progress, so a restart resumes at the first uncommitted entry. The same manifest (and signer) uploaded again
 * is the same import.
 */
@Injectable()
export class ManifestImportsService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('ManifestImports');
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;

  constructor(
    private readonly repository: ManifestImportRepository,
    private readonly certificates: CertificateRepository,
    private readonly imported: ImportedIdentitySync,
    private readonly targets: IotTargetsService,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly leases: Leases,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private get directory(): string {
    return path.join(this.config.dataDir, 'manifests');
  }

  onApplicationBootstrap(): void {
    const tick = () => {
      if (this.stopped) return;
      this.kick();
      this.timer = setTimeout(tick, this.config.manifests.pollMs);
    };
    // Imports a previous process left unfinished resume here (and on any replica once their lease lapses).
    this.timer = setTimeout(tick, Math.min(1000, this.config.manifests.pollMs));
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /**
   * Reads the upload to a file under the data directory, hashing it and counting its entries (checking it is one JSON
   * array of bounded entries) as it arrives, then records the import and starts it. An upload whose content (and
   * signer) an import already has returns that import (`created: false`) and changes nothing.
   */
  async upload(ctx: RequestContext, body: AsyncIterable<Buffer>, options: ManifestUploadOptions): Promise<{ job: ManifestImport; created: boolean }> {
    let signer: ManifestSigner;
    try {
      signer = readManifestSigner(options.signerCertificate);
    } catch (err) {
      throw Errors.invalidManifestSigner((err as Error).message);
    }
    const targetId = options.iotTargetId ?? DEFAULT_TARGET_ID;
    if (options.registration !== 'none') await this.targets.get(targetId);

    await fs.mkdir(this.directory, { recursive: true, mode: 0o700 });
    const id = randomUUID();
    const temporary = path.join(this.directory, `${id}.part`);
    const hash = createHash('sha256').update(signer.der);
    let size = 0;
    const { maxBytes, maxEntries } = this.config.manifests;
    const file = createWriteStream(temporary, { mode: 0o600 });
    const tap = async function* (): AsyncGenerator<Buffer> {
      for await (const chunk of body) {
        size += chunk.length;
        if (size > maxBytes) throw new JsonArrayStreamError(`the manifest is larger than MANIFEST_MAX_BYTES (${maxBytes} bytes)`);
        hash.update(chunk);
        await write(file, chunk);
        yield chunk;
      }
    };
    let total = 0;
    try {
      for await (const _element of jsonArrayElements(tap(), { maxElementBytes: MAX_ENTRY_CHARS, countOnly: true })) {
        if (++total > maxEntries) throw new JsonArrayStreamError(`the manifest holds more than MANIFEST_MAX_ENTRIES (${maxEntries}) entries`);
      }
      await close(file);
    } catch (err) {
      file.destroy();
      await fs.rm(temporary, { force: true });
      if (err instanceof JsonArrayStreamError) throw Errors.invalidManifest(err.message);
      throw err;
    }
    const contentSha256 = hash.digest('hex');
    const existing = await this.repository.findByContent(contentSha256);
    if (existing) {
      await fs.rm(temporary, { force: true });
      return { job: existing, created: false };
    }
    const fileName = `${id}.json`;
    await fs.rename(temporary, path.join(this.directory, fileName));
    const now = this.clock.now().toISOString();
    const job: ManifestImport = {
      id,
      contentSha256,
      signerFingerprint: signer.fingerprint,
      signerDer: signer.der,
      signerSubject: signer.certificate.subject.split('\n').join(', '),
      registration: options.registration,
      iotTargetId: options.registration === 'none' || targetId === DEFAULT_TARGET_ID ? null : targetId,
      policyName: options.policyName ?? null,
      fileName,
      sizeBytes: size,
      status: total === 0 ? 'done' : 'queued',
      total,
      nextIndex: 0,
      imported: 0,
      skipped: 0,
      failed: 0,
      failures: [],
      error: null,
      createdBy: `${ctx.actor.type}:${ctx.actor.id}`,
      createdAt: now,
      updatedAt: now,
      finishedAt: total === 0 ? now : null,
    };
    const inserted = await this.transactions.run(async () => {
      if (!(await this.repository.insert(job))) return false;
      await this.audit.record(ctx, {
        action: 'manifest.import-started',
        target: { type: 'manifest-import', id },
        details: { contentSha256, total, sizeBytes: size, signerFingerprint: signer.fingerprint, signerSubject: job.signerSubject, registration: job.registration, iotTargetId: targetId, policyName: job.policyName },
      });
      return true;
    });
    if (!inserted) {
      // The same upload raced this one on another request or replica: that import stands.
      await fs.rm(path.join(this.directory, fileName), { force: true });
      return { job: (await this.repository.findByContent(contentSha256))!, created: false };
    }
    if (total === 0) await fs.rm(path.join(this.directory, fileName), { force: true });
    this.kick();
    return { job, created: true };
  }

  async get(id: string): Promise<ManifestImport> {
    const job = await this.repository.findById(id);
    if (!job) throw Errors.manifestImportNotFound(`no manifest import with id ${id}`);
    return job;
  }

  async list(cursor: string | undefined, limit: number): Promise<{ items: ManifestImport[]; nextCursor: string | null }> {
    const after = cursor ? decodeCursor<{ createdAt: string; id: string }>(cursor, { createdAt: 'string', id: 'string' }) : undefined;
    const rows = await this.repository.list(after, limit + 1);
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit ? encodeCursor({ createdAt: last.createdAt, id: last.id }) : null };
  }

  /** Runs unfinished imports now (after an upload, and on the poll timer); one pass at a time per process. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.runUnfinished()
      .catch((err: unknown) => this.logger.error(`manifest imports failed: ${(err as Error).message}`))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async runUnfinished(): Promise<void> {
    for (const job of await this.repository.unfinished(10)) {
      if (this.stopped) return;
      const lease = `manifest-import:${job.id}`;
      if (!(await this.leases.take(lease, LEASE_MS))) continue;
      try {
        await this.run(job, lease);
      } finally {
        await this.leases.release(lease).catch(() => undefined);
      }
    }
  }

  /** Imports from the first uncommitted entry to the end, a batch per transaction. */
  private async run(start: ManifestImport, lease: string): Promise<void> {
    let job = (await this.repository.findById(start.id)) ?? start;
    if (job.status === 'done' || job.status === 'failed') return;
    const file = path.join(this.directory, job.fileName);
    let signer: ManifestSigner;
    try {
      signer = readManifestSigner(job.signerDer.toString('base64'));
      await fs.access(file);
    } catch (err) {
      await this.finish(job, 'failed', `the import cannot go on: ${(err as Error).message}`);
      return;
    }
    if (job.status === 'queued') job = await this.saved(job, { status: 'running' });
    this.logger.log(`manifest import ${job.id}: entries ${job.nextIndex}..${job.total - 1}`);
    const batchSize = this.config.manifests.batchSize;
    let batch: { index: number; text: string }[] = [];
    const stream = createReadStream(file, { highWaterMark: 256 * 1024 });
    try {
      for await (const element of jsonArrayElements(stream, { maxElementBytes: MAX_ENTRY_CHARS })) {
        if (element.index < job.nextIndex) continue;
        batch.push(element);
        if (batch.length < batchSize) continue;
        job = await this.commitBatch(job, signer, batch);
        batch = [];
        if (this.stopped) return; // resumed from job.nextIndex by the next process
        if (!(await this.leases.take(lease, LEASE_MS))) return; // another replica took it over
        await yieldToEventLoop();
      }
      if (batch.length > 0) job = await this.commitBatch(job, signer, batch);
    } catch (err) {
      if (err instanceof ProgressLost) return;
      if (err instanceof JsonArrayStreamError) {
        await this.finish(job, 'failed', `the stored manifest no longer reads: ${err.message}`);
        return;
      }
      throw err;
    } finally {
      stream.destroy();
    }
    await this.finish(job, 'done', null);
  }

  /**
   * Verifies a batch, then commits in one transaction: each new identity with its AWS IoT registration job, the
   * refusals, the import's progress and one audit event for the batch. An entry whose certificate is already in the
   * inventory (this import resumed, or the same devices in another manifest) is skipped.
   */
  private async commitBatch(job: ManifestImport, signer: ManifestSigner, batch: { index: number; text: string }[]): Promise<ManifestImport> {
    const verified: { index: number; entry: VerifiedManifestEntry }[] = [];
    const refusals: ManifestEntryRefusal[] = [];
    for (const { index, text } of batch) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        refusals.push({ index, uniqueId: null, code: 'MALFORMED_ENTRY', message: 'the entry is not valid JSON' });
        continue;
      }
      try {
        verified.push({ index, entry: verifyManifestEntry(parsed, signer) });
      } catch (err) {
        if (!(err instanceof ManifestEntryError)) throw err;
        refusals.push({ index, uniqueId: claimedUniqueId(parsed), code: err.code, message: err.message.slice(0, 300) });
      }
    }
    const fromIndex = job.nextIndex;
    const nextIndex = batch[batch.length - 1].index + 1;
    const now = this.clock.now();
    let imported = 0;
    let skipped = 0;
    const next = await this.transactions.run(async () => {
      const known = await this.repository.existing(verified.map(({ entry }) => ({ fingerprint: entry.fingerprint, authorityId: signerIdOf(entry.issuerFingerprint), serial: entry.serial })));
      for (const { index, entry } of verified) {
        if (known.fingerprints.has(entry.fingerprint)) {
          skipped++;
          continue;
        }
        const authorityId = signerIdOf(entry.issuerFingerprint);
        if (known.serials.has(`${authorityId}/${entry.serial}`)) {
          refusals.push({ index, uniqueId: entry.uniqueId, code: 'DUPLICATE_SERIAL', message: `another certificate from the same signer has serial ${entry.serial}` });
          continue;
        }
        // The same certificate twice in one batch counts once.
        known.fingerprints.add(entry.fingerprint);
        known.serials.add(`${authorityId}/${entry.serial}`);
        const record = this.recordOf(job, index, entry, authorityId, now);
        await this.certificates.insert(record);
        if (job.registration === 'without-ca') await this.imported.scheduleRegistration(record, job.policyName);
        imported++;
      }
      refusals.sort((a, b) => a.index - b.index);
      const progress = {
        status: job.status,
        nextIndex,
        imported: job.imported + imported,
        skipped: job.skipped + skipped,
        failed: job.failed + refusals.length,
        failures: [...job.failures, ...refusals].slice(0, MAX_KEPT_FAILURES),
        error: null,
        updatedAt: now.toISOString(),
        finishedAt: null,
      };
      // Another holder moved the import on (a lease lost mid-batch): this batch is rolled back, theirs stands.
      if (!(await this.repository.saveProgress(job.id, fromIndex, progress))) throw new ProgressLost();
      await this.audit.record(SYSTEM_CONTEXT, {
        action: 'manifest.batch-imported',
        target: { type: 'manifest-import', id: job.id },
        details: { fromIndex, toIndex: nextIndex - 1, imported, skipped, failed: refusals.length, failedIndexes: refusals.slice(0, 20).map((r) => r.index) },
      });
      return { ...job, ...progress };
    });
    return next;
  }

  private recordOf(job: ManifestImport, index: number, entry: VerifiedManifestEntry, authorityId: string, now: Date): CertificateRecord {
    const metadata: Record<string, string> = { uniqueId: entry.uniqueId, manifestImportId: job.id, manifestIndex: String(index) };
    if (entry.model) metadata.model = entry.model;
    if (entry.partNumber) metadata.partNumber = entry.partNumber;
    if (entry.manufacturer) metadata.manufacturer = entry.manufacturer;
    if (entry.provisioningTimestamp) metadata.provisioningTimestamp = entry.provisioningTimestamp;
    return {
      id: randomUUID(),
      authorityId,
      serial: entry.serial,
      fingerprint: entry.fingerprint,
      profile: PRE_PROVISIONED_PROFILE,
      subject: entry.subject.slice(0, 1000),
      thingName: entry.uniqueId,
      status: 'active',
      notBefore: isoSeconds(entry.notBefore),
      notAfter: isoSeconds(entry.notAfter),
      issuedAt: now.toISOString(),
      publicKeySha256: entry.publicKeySha256,
      keyDescription: entry.keyDescription,
      certificateDer: entry.certificateDer,
      metadata,
      validityClamped: false,
      revokedAt: null,
      revocationReason: null,
      iotStatus: job.registration === 'none' ? 'none' : 'pending',
      iotLastError: null,
      iotThing: null,
      iotTargetId: job.iotTargetId,
      claimId: null,
      replacesId: null,
      replacedById: null,
      supersededAt: null,
      // A secure element proves its key by its vendor's manifest, not by a TPM attestation of ours.
      hardwareAttestation: null,
      origin: 'imported',
      importedChainDer: entry.chainDer,
    };
  }

  private async saved(job: ManifestImport, change: Partial<ManifestImport>): Promise<ManifestImport> {
    const next = { ...job, ...change, updatedAt: this.clock.now().toISOString() };
    if (!(await this.repository.saveProgress(job.id, job.nextIndex, next))) throw new ProgressLost();
    return next;
  }

  private async finish(job: ManifestImport, status: 'done' | 'failed', error: string | null): Promise<void> {
    const now = this.clock.now().toISOString();
    await this.transactions.run(async () => {
      if (!(await this.repository.saveProgress(job.id, job.nextIndex, { ...job, status, error, updatedAt: now, finishedAt: now }))) return;
      await this.audit.record(SYSTEM_CONTEXT, {
        action: status === 'done' ? 'manifest.import-finished' : 'manifest.import-failed',
        target: { type: 'manifest-import', id: job.id },
        details: { total: job.total, imported: job.imported, skipped: job.skipped, failed: job.failed, error },
      });
    });
    // The upload stays on disk until the import is over; then it goes (the inventory holds what it carried).
    await fs.rm(path.join(this.directory, job.fileName), { force: true });
    this.logger.log(`manifest import ${job.id} ${status}: ${job.imported} imported, ${job.skipped} skipped, ${job.failed} refused`);
  }
}

/** The position moved under this holder: it stops, and the other holder's progress stands. */
class ProgressLost extends Error {}

/**
 * The authorityId of an imported certificate: a UUID-shaped id derived from the SHA-256 of its secure-element signer
 * (x5c[1]), so that the devices of one signer are searchable together (GET /v1/certificates?authorityId=). It names
 * no authority of ours: CRLs and OCSP, which read by authority, never answer for these certificates.
 */
export function signerIdOf(issuerFingerprint: string): string {
  const h = createHash('sha256').update(`fleet-pki:secure-element-signer:${issuerFingerprint}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16], 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function write(file: WriteStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    file.once('error', onError);
    if (file.write(chunk)) {
      file.off('error', onError);
      resolve();
    } else {
      file.once('drain', () => {
        file.off('error', onError);
        resolve();
      });
    }
  });
}

function close(file: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    file.once('error', reject);
    file.end(() => resolve());
  });
}

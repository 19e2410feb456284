import { Injectable } from '@nestjs/common';
import { ManifestImportEntity } from '../database/entities/manifest-import.entity';
import { TypeOrmTransactions } from '../database/typeorm-transactions';
import { ImportedRegistrationMode } from '../iot/imported-identity-sync';
import { ManifestEntryRefusal, ManifestImport, ManifestImportProgress, ManifestImportStatus } from './manifest-import';
import { ManifestImportRepository } from './manifest-import.repository';

@Injectable()
export class TypeOrmManifestImportRepository extends ManifestImportRepository {
  constructor(private readonly db: TypeOrmTransactions) {
    super();
  }

  async insert(job: ManifestImport): Promise<boolean> {
    const rows = await this.db.sql<{ id: string }>(
      `INSERT INTO manifest_imports (id, content_sha256, signer_fingerprint, signer_der, signer_subject, registration, iot_target_id, policy_name, file_name,
         size_bytes, status, total, next_index, imported, skipped, failed, failures, error, created_by, created_at, updated_at, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (content_sha256) DO NOTHING RETURNING id`,
      [
        job.id,
        job.contentSha256,
        job.signerFingerprint,
        job.signerDer.toString('base64'),
        job.signerSubject,
        job.registration,
        job.iotTargetId,
        job.policyName,
        job.fileName,
        job.sizeBytes,
        job.status,
        job.total,
        job.nextIndex,
        job.imported,
        job.skipped,
        job.failed,
        JSON.stringify(job.failures),
        job.error,
        job.createdBy,
        job.createdAt,
        job.updatedAt,
        job.finishedAt,
      ],
    );
    return rows.length === 1;
  }

  async findById(id: string): Promise<ManifestImport | null> {
    const [row] = await this.db.select(ManifestImportEntity, 'id = ?', [id]);
    return row ? toImport(row) : null;
  }

  async findByContent(contentSha256: string): Promise<ManifestImport | null> {
    const [row] = await this.db.select(ManifestImportEntity, 'content_sha256 = ?', [contentSha256]);
    return row ? toImport(row) : null;
  }

  async list(after: { createdAt: string; id: string } | undefined, limit: number): Promise<ManifestImport[]> {
    const rows = after
      ? await this.db.select(ManifestImportEntity, '(created_at, id) < (?, ?)', [after.createdAt, after.id], ` ORDER BY created_at DESC, id DESC LIMIT ${Math.floor(limit)}`)
      : await this.db.select(ManifestImportEntity, '1 = 1', [], ` ORDER BY created_at DESC, id DESC LIMIT ${Math.floor(limit)}`);
    return rows.map(toImport);
  }

  async unfinished(limit: number): Promise<ManifestImport[]> {
    const rows = await this.db.select(ManifestImportEntity, "status IN ('queued', 'running')", [], ` ORDER BY created_at, id LIMIT ${Math.floor(limit)}`);
    return rows.map(toImport);
  }

  async existing(entries: { fingerprint: string; authorityId: string; serial: string }[]): Promise<{ fingerprints: Set<string>; serials: Set<string> }> {
    const fingerprints = new Set<string>();
    const serials = new Set<string>();
    for (let i = 0; i < entries.length; i += 400) {
      const part = entries.slice(i, i + 400);
      const marks = part.map(() => '?').join(', ');
      const rows = await this.db.sql<{ fingerprint: string; authority_id: string; serial: string }>(
        `SELECT fingerprint, authority_id, serial FROM certificates WHERE fingerprint IN (${marks}) OR serial IN (${marks})`,
        [...part.map((e) => e.fingerprint), ...part.map((e) => e.serial)],
      );
      for (const row of rows) {
        fingerprints.add(row.fingerprint);
        serials.add(`${row.authority_id}/${row.serial}`);
      }
    }
    return { fingerprints, serials };
  }

  async saveProgress(id: string, fromIndex: number, p: ManifestImportProgress): Promise<boolean> {
    const rows = await this.db.sql<{ id: string }>(
      `UPDATE manifest_imports SET status = ?, next_index = ?, imported = ?, skipped = ?, failed = ?, failures = ?, error = ?, updated_at = ?, finished_at = ?
       WHERE id = ? AND next_index = ? RETURNING id`,
      [p.status, p.nextIndex, p.imported, p.skipped, p.failed, JSON.stringify(p.failures), p.error, p.updatedAt, p.finishedAt, id, fromIndex],
    );
    return rows.length === 1;
  }
}

function toImport(row: ManifestImportEntity): ManifestImport {
  return {
    ...row,
    signerDer: Buffer.from(row.signerDer, 'base64'),
    registration: row.registration as ImportedRegistrationMode,
    status: row.status as ManifestImportStatus,
    sizeBytes: Number(row.sizeBytes),
    total: Number(row.total),
    nextIndex: Number(row.nextIndex),
    imported: Number(row.imported),
    skipped: Number(row.skipped),
    failed: Number(row.failed),
    failures: JSON.parse(row.failures) as ManifestEntryRefusal[],
  };
}

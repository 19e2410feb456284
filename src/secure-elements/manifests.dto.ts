import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Length, Matches } from 'class-validator';
import { ManifestImport } from './manifest-import';

const REGISTRATIONS = ['without-ca', 'none'] as const;

export class UploadManifestQueryDto {
  @ApiPropertyOptional({
    enum: REGISTRATIONS,
    default: 'without-ca',
    description:
      'How the imported identities reach AWS IoT: `without-ca` registers each device certificate ACTIVE with RegisterCertificateWithoutCA ' +
      '(multi-account registration; devices send SNI) through the outbox, paced to the target’s quota; `none` imports them into the inventory only',
  })
  @IsOptional() @IsIn(REGISTRATIONS)
  registration?: (typeof REGISTRATIONS)[number];

  @ApiPropertyOptional({ description: 'The IoT target (docs/iot-targets.md) to register them in; the default target when absent' })
  @IsOptional() @IsString() @Length(1, 64)
  iotTargetId?: string;

  @ApiPropertyOptional({ description: 'An AWS IoT policy to attach to each registered certificate' })
  @IsOptional() @IsString() @Length(1, 128) @Matches(/^[\w+=,.@-]+$/)
  policyName?: string;
}

export class ManifestEntryRefusalDto {
  @ApiProperty({ type: 'integer', description: 'The entry’s index in the manifest (0-based)' }) index: number;
  @ApiProperty({ nullable: true, type: String, description: 'The uniqueId the entry’s header claims' }) uniqueId: string | null;
  @ApiProperty({
    description:
      'MALFORMED_ENTRY, UNSUPPORTED_ALGORITHM, WRONG_SIGNER, BAD_SIGNATURE, UNIQUE_ID_MISMATCH, NO_CERTIFICATE, CHAIN_INVALID, KEY_MISMATCH, KEY_NOT_ALLOWED or DUPLICATE_SERIAL',
  })
  code: string;
  @ApiProperty() message: string;
}

export class ManifestImportDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: ['queued', 'running', 'done', 'failed'] }) status: string;
  @ApiProperty({ description: 'SHA-256 over the signer certificate and the manifest: the same upload again is this import' }) contentSha256: string;
  @ApiProperty({ description: 'SHA-256 of the manifest signer certificate' }) signerFingerprint: string;
  @ApiProperty() signerSubject: string;
  @ApiProperty({ enum: REGISTRATIONS }) registration: string;
  @ApiProperty() iotTargetId: string;
  @ApiProperty({ nullable: true, type: String }) policyName: string | null;
  @ApiProperty({ type: 'integer' }) sizeBytes: number;
  @ApiProperty({ type: 'integer', description: 'Entries in the manifest' }) total: number;
  @ApiProperty({ type: 'integer', description: 'Entries committed so far (imported, skipped or refused); a resumed import starts here' }) processed: number;
  @ApiProperty({ type: 'integer', description: 'Identities added to the inventory' }) imported: number;
  @ApiProperty({ type: 'integer', description: 'Entries whose certificate the inventory already held' }) skipped: number;
  @ApiProperty({ type: 'integer', description: 'Entries refused' }) failed: number;
  @ApiProperty({ type: [ManifestEntryRefusalDto], description: 'The first refused entries (up to 100), by index' }) failures: ManifestEntryRefusalDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Why the import as a whole failed' }) error: string | null;
  @ApiProperty() createdBy: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) finishedAt: string | null;
}

export class ManifestImportListDto {
  @ApiProperty({ type: [ManifestImportDto] }) items: ManifestImportDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as ?cursor= for the next page' }) nextCursor: string | null;
}

export function toManifestImportDto(job: ManifestImport): ManifestImportDto {
  return {
    id: job.id,
    status: job.status,
    contentSha256: job.contentSha256,
    signerFingerprint: job.signerFingerprint,
    signerSubject: job.signerSubject,
    registration: job.registration,
    iotTargetId: job.iotTargetId ?? 'default',
    policyName: job.policyName,
    sizeBytes: job.sizeBytes,
    total: job.total,
    processed: job.nextIndex,
    imported: job.imported,
    skipped: job.skipped,
    failed: job.failed,
    failures: job.failures,
    error: job.error,
    createdBy: job.createdBy,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    finishedAt: job.finishedAt,
  };
}

import { ApiKeyEntity } from './api-key.entity';
import { AuditEventEntity } from './audit-event.entity';
import { AuditHeadEntity } from './audit-head.entity';
import { AuthorityEntity } from './authority.entity';
import { CertificateEntity } from './certificate.entity';
import { ClaimAllowlistSerialEntity } from './claim-allowlist-serial.entity';
import { ClaimAllowlistEntity } from './claim-allowlist.entity';
import { ClaimEntity } from './claim.entity';
import { CrlChunkEntity, CrlEntity } from './crl.entity';
import { EstLabelEntity } from './est-label.entity';
import { ExchangeIdempotencyKeyEntity } from './exchange-idempotency-key.entity';
import { IdempotencyRecordEntity } from './idempotency-record.entity';
import { FleetAuditFindingEntity } from './fleet-audit-finding.entity';
import { FleetAuditEntity } from './fleet-audit.entity';
import { IotCaRegistrationEntity } from './iot-ca-registration.entity';
import { IotPolicyTemplateVersionEntity } from './iot-policy-template-version.entity';
import { IotPolicyTemplateEntity } from './iot-policy-template.entity';
import { IotTargetEntity } from './iot-target.entity';
import { LocalKeyEntity } from './local-key.entity';
import { ManifestImportEntity } from './manifest-import.entity';
import { OcspSignerEntity } from './ocsp-signer.entity';
import { OutboxJobEntity } from './outbox-job.entity';
import { ProvisionedDeviceEntity } from './provisioned-device.entity';
import { RotationCampaignMemberEntity } from './rotation-campaign-member.entity';
import { RotationCampaignEntity } from './rotation-campaign.entity';
import { UsedTokenIdEntity } from './used-token-id.entity';
import { PacingBudgetEntity } from './pacing-budget.entity';
import { WorkLeaseEntity } from './work-lease.entity';
import { RequestLimitBucketEntity } from './request-limit-bucket.entity';
import { TpmEnrollmentChallengeEntity } from './tpm-enrollment-challenge.entity';
import { TpmManufacturerRootEntity } from './tpm-manufacturer-root.entity';

/*
 * ORM entities for both drivers, one file per table (`<table>.entity.ts`). Column types are the portable subset
 * (varchar, text, integer, boolean) so one entity set yields identical behaviour on SQLite and PostgreSQL. Times are
 * stored as fixed-width RFC 3339 UTC strings (`2026-01-02T03:04:05.000Z`), which sort and compare correctly as text.
 * Binary values (DER, ciphertext) are base64 text. A new table gets its file here and its place in ENTITIES, then a
 * migration per driver (npm run migration:generate).
 */

/** Every table, for the data source (the migration tooling reads the same list through data-source-options.ts). */
export const ENTITIES = [
  TpmManufacturerRootEntity,
  TpmEnrollmentChallengeEntity,
  IotTargetEntity,
  IotPolicyTemplateEntity,
  IotPolicyTemplateVersionEntity,
  FleetAuditEntity,
  FleetAuditFindingEntity,
  OcspSignerEntity,
  RotationCampaignEntity,
  RotationCampaignMemberEntity,
  ClaimEntity,
  ClaimAllowlistEntity,
  ClaimAllowlistSerialEntity,
  ProvisionedDeviceEntity,
  ExchangeIdempotencyKeyEntity,
  IdempotencyRecordEntity,
  UsedTokenIdEntity,
  OutboxJobEntity,
  IotCaRegistrationEntity,
  LocalKeyEntity,
  AuthorityEntity,
  CertificateEntity,
  CrlEntity,
  CrlChunkEntity,
  ApiKeyEntity,
  AuditEventEntity,
  AuditHeadEntity,
  EstLabelEntity,
  PacingBudgetEntity,
  WorkLeaseEntity,
  RequestLimitBucketEntity,
  ManifestImportEntity,
];

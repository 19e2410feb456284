import { Column, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn, Unique } from 'typeorm';

/*
 * ORM entities for both drivers. Column types are the portable subset (varchar, text, integer, boolean)
 * so one entity set yields identical behaviour on SQLite and PostgreSQL. Times are stored as fixed-width
 * RFC 3339 UTC strings (`2026-01-02T03:04:05.000Z`), which sort and compare correctly as text.
 * Binary values (DER, ciphertext) are base64 text.
 */

@Entity('local_keys')
export class LocalKeyEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ name: 'key_spec', type: 'varchar', length: 16 }) keySpec: string;
  @Column({ type: 'varchar', length: 200 }) label: string;
  @Column({ name: 'public_key_spki', type: 'text' }) publicKeySpki: string;
  /** AES-256-GCM: base64(iv ‖ tag ‖ ciphertext of the PKCS #8 DER), AAD = key id. */
  @Column({ type: 'text' }) ciphertext: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
}

@Entity('authorities')
export class AuthorityEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 200 }) name: string;
  @Column({ type: 'varchar', length: 16 }) type: string;
  @Column({ name: 'parent_id', type: 'varchar', length: 36, nullable: true }) parentId: string | null;
  @Column({ type: 'varchar', length: 16 }) status: string;
  /** devices | claims: what its end-entity certificates are for. */
  @Column({ type: 'varchar', length: 16, default: 'devices' }) usage: string;
  @Column({ name: 'key_backend', type: 'varchar', length: 16 }) keyBackend: string;
  @Column({ name: 'key_spec', type: 'varchar', length: 16 }) keySpec: string;
  @Column({ name: 'key_ref', type: 'varchar', length: 2048 }) keyRef: string;
  /** One authority per key: the database refuses a second one even when two adoptions race. */
  @Index('uq_authorities_public_key', { unique: true })
  @Column({ name: 'public_key_sha256', type: 'varchar', length: 64 }) publicKeySha256: string;
  @Column({ type: 'text' }) subject: string;
  @Column({ type: 'varchar', length: 64 }) serial: string;
  @Column({ type: 'varchar', length: 64 }) fingerprint: string;
  @Column({ name: 'path_length', type: 'integer', nullable: true }) pathLength: number | null;
  @Column({ name: 'not_before', type: 'varchar', length: 32 }) notBefore: string;
  @Column({ name: 'not_after', type: 'varchar', length: 32 }) notAfter: string;
  @Column({ name: 'certificate_der', type: 'text' }) certificateDer: string;
  /** Last CRL number handed out; incremented in the database so replicas never reuse one. */
  @Column({ name: 'crl_number', type: 'integer', default: 0 }) crlNumber: number;
  /** Revocations recorded under this CA so far; a CRL that covers fewer is stale. Clock-independent. */
  @Column({ name: 'revocation_count', type: 'integer', default: 0 }) revocationCount: number;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'disabled_at', type: 'varchar', length: 32, nullable: true }) disabledAt: string | null;
  /** Set when the authority was rotated: the successor that issues in its place (this one is then 'retiring'). */
  @Column({ name: 'successor_id', type: 'varchar', length: 36, nullable: true }) successorId: string | null;
  @Column({ name: 'retiring_at', type: 'varchar', length: 32, nullable: true }) retiringAt: string | null;
  /** Whether it signs end-entity certificates itself (roots: only when created so; intermediates: unless created not to). */
  @Column({ name: 'allow_leaf_issuance', type: 'boolean', default: false }) allowLeafIssuance: boolean;
}

@Entity('certificates')
@Unique('uq_certificates_authority_serial', ['authorityId', 'serial'])
@Index('idx_certificates_issued', ['issuedAt', 'id'])
@Index('idx_certificates_revoked_key', ['publicKeySha256', 'revocationReason'])
export class CertificateEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Index('idx_certificates_authority')
  @Column({ name: 'authority_id', type: 'varchar', length: 36 }) authorityId: string;
  @Column({ type: 'varchar', length: 64 }) serial: string;
  @Index('uq_certificates_fingerprint', { unique: true })
  @Column({ type: 'varchar', length: 64 }) fingerprint: string;
  @Column({ type: 'varchar', length: 32 }) profile: string;
  @Column({ type: 'text' }) subject: string;
  @Index('idx_certificates_thing_name')
  @Column({ name: 'thing_name', type: 'varchar', length: 128, nullable: true }) thingName: string | null;
  @Index('idx_certificates_status')
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ name: 'not_before', type: 'varchar', length: 32 }) notBefore: string;
  @Index('idx_certificates_not_after')
  @Column({ name: 'not_after', type: 'varchar', length: 32 }) notAfter: string;
  @Column({ name: 'issued_at', type: 'varchar', length: 32 }) issuedAt: string;
  @Column({ name: 'public_key_sha256', type: 'varchar', length: 64 }) publicKeySha256: string;
  @Column({ name: 'key_description', type: 'varchar', length: 16 }) keyDescription: string;
  @Column({ name: 'certificate_der', type: 'text' }) certificateDer: string;
  @Column({ type: 'text', nullable: true }) metadata: string | null;
  @Column({ name: 'validity_clamped', type: 'boolean', default: false }) validityClamped: boolean;
  @Column({ name: 'revoked_at', type: 'varchar', length: 32, nullable: true }) revokedAt: string | null;
  @Column({ name: 'revocation_reason', type: 'varchar', length: 32, nullable: true }) revocationReason: string | null;
  /** Progress of the certificate in AWS IoT: none | pending | registered | active | inactive | revoked | failed. */
  @Column({ name: 'iot_status', type: 'varchar', length: 16, default: 'none' }) iotStatus: string;
  @Column({ name: 'iot_last_error', type: 'text', nullable: true }) iotLastError: string | null;
  /** JSON IotThingOptions: AWS IoT settings for this certificate that override the CA registration's. */
  @Column({ name: 'iot_thing', type: 'text', nullable: true }) iotThing: string | null;
  @Index('idx_certificates_claim')
  @Column({ name: 'claim_id', type: 'varchar', length: 36, nullable: true }) claimId: string | null;
  /** Lineage: the certificate this one renewed, and the one that renewed it (which makes this one superseded). */
  @Column({ name: 'replaces_id', type: 'varchar', length: 36, nullable: true }) replacesId: string | null;
  @Column({ name: 'replaced_by_id', type: 'varchar', length: 36, nullable: true }) replacedById: string | null;
  @Column({ name: 'superseded_at', type: 'varchar', length: 32, nullable: true }) supersededAt: string | null;
}

/**
 * Delegated OCSP signing certificates (id-kp-OCSPSigning, id-pkix-ocsp-nocheck), one current per authority, with a
 * local key, so answering OCSP never calls the CA's key backend (KMS) per request. Rotated before they expire.
 */
@Entity('ocsp_signers')
@Index('idx_ocsp_signers_authority', ['authorityId', 'notAfter'])
export class OcspSignerEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ name: 'authority_id', type: 'varchar', length: 36 }) authorityId: string;
  /** The local key store's reference of the signer's key. */
  @Column({ name: 'key_ref', type: 'varchar', length: 64 }) keyRef: string;
  @Column({ name: 'key_spec', type: 'varchar', length: 16 }) keySpec: string;
  @Column({ name: 'certificate_der', type: 'text' }) certificateDer: string;
  @Column({ name: 'not_before', type: 'varchar', length: 32 }) notBefore: string;
  @Column({ name: 'not_after', type: 'varchar', length: 32 }) notAfter: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
}

/** A rotation campaign: the set of certificates to renew by a deadline, frozen when it is opened. */
@Entity('rotation_campaigns')
export class RotationCampaignEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  /** open | completed | cancelled | closed (deadline passed and handled) */
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ type: 'varchar', length: 500 }) reason: string;
  /** JSON of the selector it was opened with. */
  @Column({ type: 'text' }) selector: string;
  @Column({ type: 'varchar', length: 32 }) deadline: string;
  /** report | revoke */
  @Column({ name: 'on_deadline', type: 'varchar', length: 16 }) onDeadline: string;
  /** iot-job, or null */
  @Column({ type: 'varchar', length: 16, nullable: true }) notify: string | null;
  @Column({ type: 'integer' }) total: number;
  @Column({ name: 'iot_job_id', type: 'varchar', length: 64, nullable: true }) iotJobId: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'closed_at', type: 'varchar', length: 32, nullable: true }) closedAt: string | null;
}

@Entity('rotation_campaign_members')
@Index('idx_rotation_members_state', ['campaignId', 'state', 'certificateId'])
export class RotationCampaignMemberEntity {
  @PrimaryColumn({ name: 'campaign_id', type: 'varchar', length: 36 }) campaignId: string;
  @Index('idx_rotation_members_certificate')
  @PrimaryColumn({ name: 'certificate_id', type: 'varchar', length: 36 }) certificateId: string;
  @Column({ name: 'thing_name', type: 'varchar', length: 128, nullable: true }) thingName: string | null;
  /** pending | renewed | revoked */
  @Column({ type: 'varchar', length: 16 }) state: string;
  @Column({ name: 'renewed_by_id', type: 'varchar', length: 36, nullable: true }) renewedById: string | null;
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
}

@Entity('crls')
export class CrlEntity {
  @PrimaryColumn({ name: 'authority_id', type: 'varchar', length: 36 }) authorityId: string;
  @PrimaryColumn({ name: 'crl_number', type: 'integer' }) crlNumber: number;
  @Column({ name: 'this_update', type: 'varchar', length: 32 }) thisUpdate: string;
  @Column({ name: 'next_update', type: 'varchar', length: 32 }) nextUpdate: string;
  /** The authority's revocation_count when this CRL's entries were read. */
  @Column({ name: 'revocations_covered', type: 'integer' }) revocationsCovered: number;
  @Column({ type: 'text' }) der: string;
}

@Entity('api_keys')
export class ApiKeyEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 200 }) name: string;
  @Column({ type: 'varchar', length: 16 }) role: string;
  @Index('uq_api_keys_prefix', { unique: true })
  @Column({ type: 'varchar', length: 32 }) prefix: string;
  /** SHA-256 of the whole key, hex. The key is 256 random bits, so a fast hash is enough. */
  @Column({ name: 'secret_hash', type: 'varchar', length: 64 }) secretHash: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'created_by', type: 'varchar', length: 64, nullable: true }) createdBy: string | null;
  @Column({ name: 'revoked_at', type: 'varchar', length: 32, nullable: true }) revokedAt: string | null;
}

@Entity('audit_events')
@Index('idx_audit_action', ['action', 'seq'])
@Index('idx_audit_target', ['targetId', 'seq'])
export class AuditEventEntity {
  @PrimaryColumn({ type: 'integer' }) seq: number;
  @Column({ name: 'occurred_at', type: 'varchar', length: 32 }) occurredAt: string;
  @Column({ name: 'actor_type', type: 'varchar', length: 32 }) actorType: string;
  @Column({ name: 'actor_id', type: 'varchar', length: 128, nullable: true }) actorId: string | null;
  @Column({ name: 'actor_role', type: 'varchar', length: 32, nullable: true }) actorRole: string | null;
  @Column({ type: 'varchar', length: 64 }) action: string;
  @Column({ name: 'target_type', type: 'varchar', length: 32, nullable: true }) targetType: string | null;
  @Column({ name: 'target_id', type: 'varchar', length: 128, nullable: true }) targetId: string | null;
  @Column({ name: 'request_id', type: 'varchar', length: 128, nullable: true }) requestId: string | null;
  @Column({ name: 'source_ip', type: 'varchar', length: 64, nullable: true }) sourceIp: string | null;
  @Column({ type: 'text' }) details: string;
  @Column({ name: 'prev_hash', type: 'varchar', length: 64 }) prevHash: string;
  @Column({ type: 'varchar', length: 64 }) hash: string;
}

/** Single row (id = 1) holding the chain head; locked FOR UPDATE to append, which serialises the chain. */
@Entity('audit_head')
export class AuditHeadEntity {
  @PrimaryColumn({ type: 'integer' }) id: number;
  @Column({ type: 'integer' }) seq: number;
  @Column({ type: 'varchar', length: 64 }) hash: string;
}

/**
 * The durable outbox: side effects on AWS, stored in the same transaction as the state change that needs
 * them, and worked by pollers that claim rows (FOR UPDATE SKIP LOCKED on PostgreSQL).
 */
@Entity('outbox_jobs')
@Index('idx_outbox_jobs_due', ['status', 'runAfter'])
@Index('idx_outbox_jobs_target', ['targetId'])
export class OutboxJobEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 64 }) kind: string;
  @Column({ type: 'text' }) payload: string;
  /** pending | running | done | dead */
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ type: 'integer', default: 0 }) attempts: number;
  @Column({ name: 'run_after', type: 'varchar', length: 32 }) runAfter: string;
  @Column({ name: 'locked_by', type: 'varchar', length: 64, nullable: true }) lockedBy: string | null;
  @Column({ name: 'locked_until', type: 'varchar', length: 32, nullable: true }) lockedUntil: string | null;
  @Column({ name: 'last_error', type: 'text', nullable: true }) lastError: string | null;
  /** At most one live (pending or running) job per key; a finished or dead one does not block a new one. */
  @Index('uq_outbox_jobs_live_dedupe', ['dedupeKey'], { unique: true, where: "status IN ('pending', 'running')" })
  @Column({ name: 'dedupe_key', type: 'varchar', length: 200, nullable: true }) dedupeKey: string | null;
  @Column({ name: 'target_type', type: 'varchar', length: 32, nullable: true }) targetType: string | null;
  @Column({ name: 'target_id', type: 'varchar', length: 128, nullable: true }) targetId: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
}

/** An authority's registration with AWS IoT (one per authority). */
@Entity('iot_ca_registrations')
export class IotCaRegistrationEntity {
  @PrimaryColumn({ name: 'authority_id', type: 'varchar', length: 36 }) authorityId: string;
  @Index('idx_iot_ca_registrations_ca_certificate')
  @Column({ name: 'ca_certificate_id', type: 'varchar', length: 64 }) caCertificateId: string;
  @Column({ name: 'ca_certificate_arn', type: 'varchar', length: 2048 }) caCertificateArn: string;
  @Column({ name: 'certificate_mode', type: 'varchar', length: 16 }) certificateMode: string;
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ name: 'auto_registration', type: 'boolean' }) autoRegistration: boolean;
  @Column({ name: 'device_registration', type: 'varchar', length: 16 }) deviceRegistration: string;
  @Column({ name: 'policy_name', type: 'varchar', length: 128, nullable: true }) policyName: string | null;
  /** JSON {templateBody, roleArn} for JITP. */
  @Column({ name: 'provisioning_template', type: 'text', nullable: true }) provisioningTemplate: string | null;
  @Column({ name: 'registered_at', type: 'varchar', length: 32 }) registeredAt: string;
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
}

/** A factory claim: who may exchange claim certificates for device certificates, how many, and how. */
@Entity('claims')
export class ClaimEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ type: 'varchar', length: 200 }) name: string;
  @Column({ type: 'varchar', length: 200 }) factory: string;
  @Column({ type: 'varchar', length: 200, nullable: true }) line: string | null;
  /** active | revoked */
  @Column({ type: 'varchar', length: 16 }) status: string;
  @Column({ name: 'claim_authority_id', type: 'varchar', length: 36 }) claimAuthorityId: string;
  @Column({ name: 'device_authority_id', type: 'varchar', length: 36 }) deviceAuthorityId: string;
  @Column({ type: 'varchar', length: 32 }) profile: string;
  @Column({ name: 'validity_days', type: 'integer', nullable: true }) validityDays: number | null;
  @Column({ name: 'max_devices', type: 'integer' }) maxDevices: number;
  /** Devices provisioned so far; raised only by a conditional UPDATE (used < max_devices) in the exchange's transaction. */
  @Column({ type: 'integer', default: 0 }) used: number;
  @Column({ name: 'not_before', type: 'varchar', length: 32 }) notBefore: string;
  @Column({ name: 'not_after', type: 'varchar', length: 32 }) notAfter: string;
  @Column({ name: 'serial_pattern', type: 'varchar', length: 256, nullable: true }) serialPattern: string | null;
  @Column({ name: 'thing_name_template', type: 'varchar', length: 128 }) thingNameTemplate: string;
  /** JSON IotThingOptions, or null. */
  @Column({ type: 'text', nullable: true }) iot: string | null;
  @Column({ name: 'allow_reprovisioning', type: 'boolean', default: false }) allowReprovisioning: boolean;
  /** Null until an allow-list is uploaded; from then on only listed serials may be exchanged. */
  @Column({ name: 'allowlist_size', type: 'integer', nullable: true }) allowlistSize: number | null;
  /** The claim's allow-list in force (claim_allowlists.id): replacing a list is one UPDATE of this pointer. */
  @Column({ name: 'allowlist_id', type: 'integer', nullable: true }) allowlistId: number | null;
  @Index('uq_claims_claim_certificate', { unique: true })
  @Column({ name: 'claim_certificate_id', type: 'varchar', length: 36 }) claimCertificateId: string;
  @Column({ name: 'last_exchange_at', type: 'varchar', length: 32, nullable: true }) lastExchangeAt: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'revoked_at', type: 'varchar', length: 32, nullable: true }) revokedAt: string | null;
}

/**
 * One upload of a claim's allow-list. Its serials are written while it is `staging` (invisible to the exchange),
 * it becomes `active` when the claim's pointer is swapped to it, and `retired` when replaced or abandoned; a
 * retired list's serials are deleted in the background of later uploads, then the list itself.
 */
@Entity('claim_allowlists')
export class ClaimAllowlistEntity {
  /** An integer, not a UUID: it prefixes every serial's key, a million times for a large list. */
  @PrimaryGeneratedColumn('increment') id: number;
  @Column({ name: 'claim_id', type: 'varchar', length: 36 }) claimId: string;
  /** staging | active | retired */
  @Index('idx_claim_allowlists_status')
  @Column({ type: 'varchar', length: 16 }) status: string;
  /** Distinct serials written so far. */
  @Column({ type: 'integer', default: 0 }) size: number;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  /** Touched by every chunk of a staging upload: a staging list untouched for long belongs to an upload that died. */
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
}

/** One B-tree keyed by (list, serial) on SQLite (WITHOUT ROWID): half the writes of a rowid table plus its key index. */
@Entity('claim_allowlist_serials', { withoutRowid: true })
export class ClaimAllowlistSerialEntity {
  @PrimaryColumn({ name: 'allowlist_id', type: 'integer' }) allowlistId: number;
  @PrimaryColumn({ name: 'device_serial', type: 'varchar', length: 64 }) deviceSerial: string;
}

/** One row per device a claim provisioned: the primary key makes "each serial once per claim" a database fact. */
@Entity('provisioned_devices')
export class ProvisionedDeviceEntity {
  @PrimaryColumn({ name: 'claim_id', type: 'varchar', length: 36 }) claimId: string;
  @PrimaryColumn({ name: 'device_serial', type: 'varchar', length: 64 }) deviceSerial: string;
  @Column({ name: 'certificate_id', type: 'varchar', length: 36 }) certificateId: string;
  @Column({ name: 'public_key_sha256', type: 'varchar', length: 64 }) publicKeySha256: string;
  @Column({ name: 'provisioned_at', type: 'varchar', length: 32 }) provisionedAt: string;
}

/** Idempotency-Key of an exchange: the request's hash and the certificate it produced. */
@Entity('exchange_idempotency_keys')
export class ExchangeIdempotencyKeyEntity {
  @PrimaryColumn({ name: 'claim_id', type: 'varchar', length: 36 }) claimId: string;
  @PrimaryColumn({ name: 'idempotency_key', type: 'varchar', length: 128 }) idempotencyKey: string;
  @Column({ name: 'request_sha256', type: 'varchar', length: 64 }) requestSha256: string;
  @Column({ name: 'certificate_id', type: 'varchar', length: 36 }) certificateId: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
}

/** Token ids (JWT jti) already used, kept until the token would have expired: each token works once. */
@Entity('used_token_ids')
export class UsedTokenIdEntity {
  /** SHA-256 of the signing certificate's fingerprint and the jti, hex (jti values are the caller's text). */
  @PrimaryColumn({ type: 'varchar', length: 64 }) id: string;
  @Index('idx_used_token_ids_expires')
  @Column({ name: 'expires_at', type: 'varchar', length: 32 }) expiresAt: string;
}

/** A managed AWS IoT policy: the current version of a named template (the AWS IoT policy of the same name). */
@Entity('iot_policy_templates')
export class IotPolicyTemplateEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 }) name: string;
  @Column({ type: 'integer' }) version: number;
  @Column({ type: 'text' }) document: string;
  /** JSON array of the lint finding codes an admin accepted for this version. */
  @Column({ name: 'accepted_findings', type: 'text' }) acceptedFindings: string;
  /** pending | synced | failed: where AWS IoT stands with this version. */
  @Column({ name: 'iot_status', type: 'varchar', length: 16 }) iotStatus: string;
  @Column({ name: 'iot_last_error', type: 'text', nullable: true }) iotLastError: string | null;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'updated_at', type: 'varchar', length: 32 }) updatedAt: string;
}

/** Every version of every template, as it was written (AWS IoT keeps at most five; we keep them all). */
@Entity('iot_policy_template_versions')
export class IotPolicyTemplateVersionEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 }) name: string;
  @PrimaryColumn({ type: 'integer' }) version: number;
  @Column({ type: 'text' }) document: string;
  @Column({ name: 'accepted_findings', type: 'text' }) acceptedFindings: string;
  @Column({ name: 'created_at', type: 'varchar', length: 32 }) createdAt: string;
  @Column({ name: 'created_by', type: 'varchar', length: 64, nullable: true }) createdBy: string | null;
}

/** A fleet audit run. */
@Entity('fleet_audits')
@Index('idx_fleet_audits_started', ['startedAt'])
export class FleetAuditEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  /** running | done | failed */
  @Column({ type: 'varchar', length: 16 }) status: string;
  /** manual | scheduled */
  @Column({ type: 'varchar', length: 16 }) trigger: string;
  /** JSON of the parameters (expiry windows). */
  @Column({ type: 'text' }) parameters: string;
  @Column({ name: 'started_at', type: 'varchar', length: 32 }) startedAt: string;
  @Column({ name: 'finished_at', type: 'varchar', length: 32, nullable: true }) finishedAt: string | null;
  /** JSON counts by type and severity, or the failure. */
  @Column({ type: 'text', nullable: true }) summary: string | null;
}

@Entity('fleet_audit_findings')
@Index('idx_fleet_audit_findings_audit', ['auditId', 'id'])
export class FleetAuditFindingEntity {
  @PrimaryColumn({ type: 'varchar', length: 36 }) id: string;
  @Column({ name: 'audit_id', type: 'varchar', length: 36 }) auditId: string;
  @Column({ type: 'varchar', length: 48 }) type: string;
  @Column({ type: 'varchar', length: 16 }) severity: string;
  @Column({ name: 'resource_type', type: 'varchar', length: 32 }) resourceType: string;
  @Column({ name: 'resource_id', type: 'varchar', length: 200 }) resourceId: string;
  /** JSON facts (affected certificate ids, AWS status, policy findings…). */
  @Column({ type: 'text' }) details: string;
  /** The remediation this finding offers, or null. */
  @Column({ type: 'varchar', length: 48, nullable: true }) remediation: string | null;
  @Column({ name: 'remediated_at', type: 'varchar', length: 32, nullable: true }) remediatedAt: string | null;
  @Column({ name: 'remediation_result', type: 'text', nullable: true }) remediationResult: string | null;
}

export const ENTITIES = [
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
  UsedTokenIdEntity,
  OutboxJobEntity,
  IotCaRegistrationEntity,
  LocalKeyEntity,
  AuthorityEntity,
  CertificateEntity,
  CrlEntity,
  ApiKeyEntity,
  AuditEventEntity,
  AuditHeadEntity,
];

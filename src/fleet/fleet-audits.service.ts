import { PRE_PROVISIONED_PROFILE } from '../certificates/certificate';
import { randomUUID } from 'node:crypto';
import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext, SYSTEM_CONTEXT } from '../common/actor';
import { AuthoritiesService } from '../authorities/authorities.service';
import { Clock } from '../common/clock';
import { Leases } from '../common/pacing';
import { decodeCursor, encodeCursor } from '../common/cursor';
import { DomainError, Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { IotRegistry } from '../iot/iot-registry';
import { DEFAULT_TARGET_ID } from '../iot/iot-target';
import { IotTargetsService } from '../iot/iot-targets.service';
import { PolicyTemplatesService } from '../iot/policy-templates.service';
import { MetricsService } from '../metrics/metrics.service';
import { RotationsService } from '../rotation/rotations.service';
import { AuditFinding, AuditParameters, FINDING_TYPES, FindingSeverity, FleetAudit } from './fleet-audit';
import { FleetAuditRepository } from './fleet-audit.repository';
import { FleetInventory } from './fleet-inventory.repository';

const DAY_MS = 86_400_000;
const DEFAULT_PARAMETERS: AuditParameters = { deviceExpiryDays: 30, caExpiryDays: 90, claimExpiryDays: 14, claimQuotaFraction: 0.9, policySample: 200 };
/** Keys our policy accepts; anything else in the inventory (imported or older) is a finding. */
const STRONG_KEYS = new Set(['EC-P256', 'EC-P384', 'EC-P521']);
const DRIFT_LIMIT = 10_000;
/** The lease that makes one replica run the schedule (docs/limits.md, "Periodic work"). */
const SCHEDULE_LEASE = 'fleet-audit-schedule';

type ListedCertificate = { certificateId: string; certificateArn: string; status: string };
/** A registered CA's certificates as AWS IoT lists them in one target, listed once per audit. */
type Listing = (targetId: string, caCertificateId: string) => Promise<ListedCertificate[]>;
type NewFinding = Omit<AuditFinding, 'id' | 'auditId' | 'remediatedAt' | 'remediationResult'>;
/** The IoT targets whose AWS calls failed in one audit: target id → the error's code (never its message). */
type Unreachable = Map<string, { error: string; awsError: string | null; check: string }>;

/**
 * Fleet audits: the checks that matter for a CA, run on demand and on a schedule. Each finding carries a
 * safe remediation where one exists (push REVOKED/INACTIVE to AWS IoT, revoke an unknown certificate there,
 * open a rotation campaign over expiring certificates), run on request and audited.
 */
@Injectable()
export class FleetAuditsService implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('FleetAudit');
  private readonly running = new Set<Promise<void>>();
  private scheduleTimer?: NodeJS.Timeout;

  constructor(
    private readonly repository: FleetAuditRepository,
    private readonly inventory: FleetInventory,
    private readonly authorities: AuthoritiesService,
    private readonly policies: PolicyTemplatesService,
    private readonly rotations: RotationsService,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    private readonly leases: Leases,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly targets: IotTargetsService,
  ) {}

  onModuleInit(): void {
    const { intervalSeconds, intervalHours } = this.config.fleetAudit;
    const everyMs = intervalSeconds > 0 ? intervalSeconds * 1000 : intervalHours * 3_600_000;
    if (everyMs > 0) {
      // Checked hourly (or four times an interval when shorter): a run is due when the latest one is older than the
      // interval. Only the replica holding the schedule's lease checks (docs/limits.md, "Periodic work"); the lease
      // outlives three checks, so a replica that dies hands the schedule on within three checks.
      const checkMs = Math.min(Math.ceil(everyMs / 4), 3_600_000);
      this.scheduleTimer = setInterval(() => void this.runIfDueAndHeld(everyMs, checkMs * 3), checkMs);
      this.scheduleTimer.unref();
    }
  }

  /** Audits in flight finish while the database is still open (TypeORM closes it in onApplicationShutdown). */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.scheduleTimer);
    await Promise.allSettled([...this.running]);
    if (this.scheduleTimer) await this.leases.release(SCHEDULE_LEASE).catch(() => undefined);
  }

  /** Starts an audit; it runs in the background and GET shows it. */
  async start(ctx: RequestContext, parameters: Partial<AuditParameters> = {}, trigger: FleetAudit['trigger'] = 'manual'): Promise<FleetAudit> {
    const audit: FleetAudit = { id: randomUUID(), status: 'running', trigger, parameters: { ...DEFAULT_PARAMETERS, ...parameters }, startedAt: this.clock.now().toISOString(), finishedAt: null, summary: null };
    await this.transactions.run(async () => {
      await this.repository.insert(audit);
      await this.audit.record(ctx, { action: 'fleet-audit.started', target: { type: 'fleet-audit', id: audit.id }, details: { trigger, parameters: audit.parameters } });
    });
    const run = this.run(audit).finally(() => this.running.delete(run));
    this.running.add(run);
    return audit;
  }

  async get(id: string): Promise<FleetAudit> {
    const audit = await this.repository.find(id);
    if (!audit) throw Errors.auditNotFound(`no fleet audit with id ${id}`);
    return audit;
  }

  list(limit: number): Promise<FleetAudit[]> {
    return this.repository.list(limit);
  }

  async findings(id: string, cursor: string | undefined, limit: number): Promise<{ items: AuditFinding[]; nextCursor: string | null }> {
    await this.get(id);
    const after = cursor ? decodeCursor<{ id: string }>(cursor, { id: 'string' }).id : undefined;
    const rows = await this.repository.findings(id, after, limit + 1);
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? encodeCursor({ id: items[items.length - 1].id }) : null };
  }

  /** Runs a finding's remediation once; audited. */
  async remediate(ctx: RequestContext, auditId: string, findingId: string): Promise<AuditFinding> {
    const finding = await this.repository.finding(auditId, findingId);
    if (!finding) throw Errors.findingNotFound(`no finding ${findingId} in audit ${auditId}`);
    if (!finding.remediation) throw Errors.findingNotRemediable(`finding ${findingId} (${finding.type}) has no automated remediation`);
    if (finding.remediatedAt) throw Errors.findingNotRemediable(`finding ${findingId} was remediated at ${finding.remediatedAt}`);
    let result: Record<string, unknown>;
    switch (finding.remediation) {
      // In the target (account and region) the finding was seen in; findings from before targets name none: default.
      case 'push-iot-status': {
        const status = finding.details.expected === 'INACTIVE' ? 'INACTIVE' : 'REVOKED';
        await (await this.registryOf(finding)).updateCertificate(finding.resourceId, status);
        result = { awsStatus: status, targetId: targetOfFinding(finding) };
        break;
      }
      case 'revoke-in-iot':
        await (await this.registryOf(finding)).updateCertificate(finding.resourceId, 'REVOKED');
        result = { awsStatus: 'REVOKED', targetId: targetOfFinding(finding) };
        break;
      case 'open-rotation-campaign': {
        const certificateIds = finding.details.certificateIds as string[];
        const deadline = new Date(Math.max(this.clock.now().getTime() + DAY_MS, new Date(String(finding.details.earliestNotAfter)).getTime() - DAY_MS));
        const campaign = await this.rotations.open(ctx, {
          selector: { certificateIds },
          reason: `fleet audit ${auditId}: ${certificateIds.length} certificate(s) expiring`,
          deadline: deadline.toISOString(),
          onDeadline: 'report',
        });
        result = { campaignId: campaign.id, total: campaign.total };
        break;
      }
    }
    const at = this.clock.now().toISOString();
    await this.transactions.run(async () => {
      if (!(await this.repository.markRemediated(findingId, at, result))) throw Errors.findingNotRemediable(`finding ${findingId} was remediated meanwhile`);
      await this.audit.record(ctx, { action: 'fleet-audit.remediated', target: { type: 'fleet-audit-finding', id: findingId }, details: { auditId, type: finding.type, remediation: finding.remediation, resource: finding.resourceId, result } });
    });
    return { ...finding, remediatedAt: at, remediationResult: result };
  }

  private registryOf(finding: AuditFinding): Promise<IotRegistry> {
    return this.targets.registryFor(targetOfFinding(finding));
  }

  private async runIfDueAndHeld(everyMs: number, leaseMs: number): Promise<void> {
    try {
      if (!(await this.leases.take(SCHEDULE_LEASE, leaseMs))) return;
    } catch (err) {
      this.logger.warn(`could not take the fleet-audit schedule lease: ${(err as Error).message}`);
      return;
    }
    await this.runIfDue(everyMs);
  }

  private async runIfDue(everyMs: number): Promise<void> {
    try {
      const latest = await this.repository.latest();
      if (latest && this.clock.now().getTime() - new Date(latest.startedAt).getTime() < everyMs) return;
      await this.start(SYSTEM_CONTEXT, {}, 'scheduled');
    } catch (err) {
      this.logger.error(`scheduled fleet audit failed to start: ${(err as Error).message}`);
    }
  }

  private async run(audit: FleetAudit): Promise<void> {
    const findings: NewFinding[] = [];
    try {
      findings.push(...(await this.expiringDevices(audit.parameters)));
      findings.push(...(await this.expiringAuthorities(audit.parameters)));
      findings.push(...(await this.weakKeys()));
      findings.push(...(await this.claims(audit.parameters)));
      if (this.config.iot) {
        // One listing per registered CA and target serves both checks (docs/operations.md, "Drift audit by listing";
        // docs/iot-targets.md: every target the CA is registered in is listed in its own account and region).
        // One unreachable target (its account or endpoint failing) must not fail the audit: its checks are skipped,
        // one IOT_TARGET_UNREACHABLE finding says so, and the other targets and checks run.
        const unreachable: Unreachable = new Map();
        const listings = new Map<string, Promise<ListedCertificate[]>>();
        const listed: Listing = (targetId, caCertificateId) => {
          const key = `${targetId}/${caCertificateId}`;
          if (!listings.has(key)) listings.set(key, this.listUnderCa(targetId, caCertificateId, unreachable));
          return listings.get(key)!;
        };
        findings.push(...(await this.statusDrift(listed)));
        findings.push(...(await this.unknownCertificates(listed)));
        findings.push(...(await this.permissivePolicies(audit.parameters, unreachable)));
        for (const [targetId, { error, awsError, check }] of unreachable) {
          findings.push({ type: 'IOT_TARGET_UNREACHABLE', severity: 'high', resourceType: 'iot-target', resourceId: targetId, details: { targetId, error, awsError, check }, remediation: null });
        }
      }
      const stored = findings.map((f) => ({ ...f, id: randomUUID(), auditId: audit.id, remediatedAt: null, remediationResult: null }));
      const summary = summarise(stored);
      await this.transactions.run(async () => {
        await this.repository.insertFindings(stored);
        await this.repository.finish(audit.id, 'done', this.clock.now().toISOString(), summary);
        await this.audit.record(SYSTEM_CONTEXT, { action: 'fleet-audit.finished', target: { type: 'fleet-audit', id: audit.id }, details: summary });
      });
      this.metrics.fleetAuditFindings.reset();
      for (const type of FINDING_TYPES) for (const severity of ['high', 'medium', 'low'] as FindingSeverity[]) {
        this.metrics.fleetAuditFindings.set({ type, severity }, stored.filter((f) => f.type === type && f.severity === severity).length);
      }
    } catch (err) {
      this.logger.error(`fleet audit ${audit.id} failed: ${(err as Error).message}`);
      await this.repository.finish(audit.id, 'failed', this.clock.now().toISOString(), { byType: {}, bySeverity: {}, total: 0, error: (err as Error).message.slice(0, 500) }).catch(() => undefined);
    }
  }

  private async expiringDevices(p: AuditParameters): Promise<NewFinding[]> {
    const now = this.clock.now();
    const groups = await this.inventory.expiringDeviceCertificates(now.toISOString(), new Date(now.getTime() + p.deviceExpiryDays * DAY_MS).toISOString());
    return groups.map((g) => ({
      type: 'DEVICE_CERTIFICATE_EXPIRING',
      severity: new Date(g.earliestNotAfter).getTime() - now.getTime() < 7 * DAY_MS ? 'high' : 'medium',
      resourceType: 'certificate-group',
      resourceId: `${g.authorityId}/${g.claimId ?? '-'}/${g.profile}`,
      details: { authorityId: g.authorityId, claimId: g.claimId, profile: g.profile, count: g.certificateIds.length, earliestNotAfter: g.earliestNotAfter, certificateIds: g.certificateIds },
      // Pre-provisioned identities (docs/secure-elements.md) were issued by their vendor, not by us: no campaign of ours renews them.
      remediation: g.profile === PRE_PROVISIONED_PROFILE ? null : 'open-rotation-campaign',
    }));
  }

  private async expiringAuthorities(p: AuditParameters): Promise<NewFinding[]> {
    const now = this.clock.now().getTime();
    return (await this.authorities.all())
      .filter((a) => a.status !== 'disabled' && new Date(a.notAfter).getTime() - now <= p.caExpiryDays * DAY_MS)
      .map((a) => ({
        type: 'CA_CERTIFICATE_EXPIRING',
        severity: 'high',
        resourceType: 'authority',
        resourceId: a.id,
        details: { name: a.name, notAfter: a.notAfter, status: a.status, hint: 'rotate it: POST /v1/authorities/{id}/rotate (intermediates), or plan a new root' },
        remediation: null,
      }));
  }

  private async weakKeys(): Promise<NewFinding[]> {
    return (await this.inventory.keyDescriptions())
      .filter((k) => !(STRONG_KEYS.has(k.keyDescription) || /^RSA-(\d+)$/.test(k.keyDescription) && Number(k.keyDescription.slice(4)) >= 2048))
      .map((k) => ({
        type: 'WEAK_KEY',
        severity: 'high',
        resourceType: 'key-type',
        resourceId: k.keyDescription,
        details: { count: k.count, sampleCertificateIds: k.sample },
        remediation: null,
      }));
  }

  private async claims(p: AuditParameters): Promise<NewFinding[]> {
    const now = this.clock.now().getTime();
    const findings: NewFinding[] = [];
    for (const claim of await this.inventory.activeClaims()) {
      if (claim.used >= claim.maxDevices * p.claimQuotaFraction) {
        findings.push({ type: 'CLAIM_NEAR_QUOTA', severity: claim.used >= claim.maxDevices ? 'medium' : 'low', resourceType: 'claim', resourceId: claim.id, details: { name: claim.name, used: claim.used, maxDevices: claim.maxDevices }, remediation: null });
      }
      if (new Date(claim.notAfter).getTime() - now <= p.claimExpiryDays * DAY_MS) {
        findings.push({ type: 'CLAIM_NEAR_EXPIRY', severity: 'low', resourceType: 'claim', resourceId: claim.id, details: { name: claim.name, notAfter: claim.notAfter }, remediation: null });
      }
    }
    return findings;
  }

  /**
   * Revoked here (or superseded past the grace period) but ACTIVE in AWS IoT. AWS's view comes from listing each
   * registered CA's certificates (ListCertificatesByCA, FLEET_AUDIT_LIST_PAGE_SIZE a page), not from one
   * DescribeCertificate per certificate: a certificate not listed under its CA's registration is not ACTIVE there.
   */
  private async statusDrift(listed: Listing): Promise<NewFinding[]> {
    const now = this.clock.now();
    const supersededBefore = new Date(now.getTime() - this.config.renewal.graceSeconds * 1000).toISOString();
    const candidates = await this.inventory.statusDriftCandidates(now.toISOString(), supersededBefore, DRIFT_LIMIT);
    if (candidates.length === 0) return [];
    const awsStatus = new Map<string, string>();
    for (const key of new Set(candidates.map((c) => `${c.targetId}/${c.caCertificateId}`))) {
      const [targetId, caCertificateId] = key.split('/');
      for (const c of await listed(targetId, caCertificateId)) awsStatus.set(`${targetId}/${c.certificateId.toLowerCase()}`, c.status);
    }
    const findings: NewFinding[] = [];
    for (const candidate of candidates) {
      const status = awsStatus.get(`${candidate.targetId}/${candidate.fingerprint.toLowerCase()}`);
      if (status !== 'ACTIVE') continue;
      const expected = candidate.status === 'revoked' ? 'REVOKED' : 'INACTIVE';
      findings.push({ type: 'IOT_STATUS_DRIFT', severity: 'high', resourceType: 'certificate', resourceId: candidate.fingerprint, details: { certificateId: candidate.id, here: candidate.status, awsStatus: status, expected, targetId: candidate.targetId }, remediation: 'push-iot-status' });
    }
    return findings;
  }

  /**
   * A CA's certificates in AWS IoT; none when AWS no longer has the CA (deleted there after we deactivated it), and
   * none when the target cannot be reached (recorded in `unreachable`; the target is not asked again in this audit).
   */
  private async listUnderCa(targetId: string, caCertificateId: string, unreachable: Unreachable): Promise<ListedCertificate[]> {
    if (unreachable.has(targetId)) return [];
    try {
      const registry = await this.targets.registryFor(targetId);
      return await registry.listCertificatesByCa(caCertificateId, this.config.fleetAudit.listPageSize);
    } catch (err) {
      if (err instanceof DomainError && err.extra.awsError === 'ResourceNotFoundException') return [];
      this.markUnreachable(unreachable, targetId, 'ListCertificatesByCA', err);
      return [];
    }
  }

  /** Records a target's failure by code only: an error message may quote an endpoint or an ARN (docs/threat-model.md). */
  private markUnreachable(unreachable: Unreachable, targetId: string, check: string, err: unknown): void {
    if (unreachable.has(targetId)) return;
    const error = err instanceof DomainError ? err.code : 'INTERNAL_ERROR';
    const awsError = err instanceof DomainError && typeof err.extra.awsError === 'string' ? err.extra.awsError : null;
    unreachable.set(targetId, { error, awsError, check });
    this.logger.warn(`fleet audit: IoT target ${targetId} unreachable (${check}: ${awsError ?? error}); its AWS checks are skipped`);
  }

  /** ACTIVE in AWS IoT under one of our registered CAs, but never issued by us. */
  private async unknownCertificates(listCa: Listing): Promise<NewFinding[]> {
    const findings: NewFinding[] = [];
    for (const registration of await this.inventory.activeRegistrations()) {
      const listed = (await listCa(registration.targetId, registration.caCertificateId)).filter((c) => c.status === 'ACTIVE');
      const known = await this.inventory.knownFingerprints(listed.map((c) => c.certificateId));
      for (const certificate of listed.filter((c) => !known.has(c.certificateId))) {
        findings.push({ type: 'IOT_UNKNOWN_CERTIFICATE', severity: 'high', resourceType: 'certificate', resourceId: certificate.certificateId, details: { authorityId: registration.authorityId, certificateArn: certificate.certificateArn, awsStatus: certificate.status, targetId: registration.targetId }, remediation: 'revoke-in-iot' });
      }
    }
    return findings;
  }

  /** The policies attached to (a sample of) our registered devices, linted as templates are. One finding per policy. */
  private async permissivePolicies(p: AuditParameters, unreachable: Unreachable): Promise<NewFinding[]> {
    // Per target: a policy name is the account's own (the same name may hold other documents in other accounts).
    const devicesByPolicy = new Map<string, { targetId: string; name: string; certificateIds: string[] }>();
    for (const certificate of await this.inventory.iotActiveCertificates(p.policySample)) {
      if (unreachable.has(certificate.targetId)) continue;
      let names: string[];
      try {
        names = await (await this.targets.registryFor(certificate.targetId)).listAttachedPolicies(certificate.certificateArn);
      } catch (err) {
        this.markUnreachable(unreachable, certificate.targetId, 'ListAttachedPolicies', err);
        continue;
      }
      for (const name of names) {
        const key = `${certificate.targetId}/${name}`;
        const entry = devicesByPolicy.get(key) ?? { targetId: certificate.targetId, name, certificateIds: [] };
        entry.certificateIds.push(certificate.id);
        devicesByPolicy.set(key, entry);
      }
    }
    const findings: NewFinding[] = [];
    for (const { targetId, name, certificateIds } of devicesByPolicy.values()) {
      if (unreachable.has(targetId)) continue;
      let policy: Awaited<ReturnType<IotRegistry['getPolicy']>>;
      try {
        policy = await (await this.targets.registryFor(targetId)).getPolicy(name);
      } catch (err) {
        this.markUnreachable(unreachable, targetId, 'GetPolicy', err);
        continue;
      }
      if (!policy) continue;
      const policyFindings = this.policies.lintDocument(policy.document);
      if (policyFindings.length === 0) continue;
      findings.push({
        type: 'PERMISSIVE_POLICY_ATTACHED',
        severity: policyFindings.some((f) => f.severity === 'high') ? 'high' : 'medium',
        resourceType: 'iot-policy',
        resourceId: name,
        details: { findings: policyFindings, devices: certificateIds.length, sampleCertificateIds: certificateIds.slice(0, 20), targetId },
        remediation: null,
      });
    }
    return findings;
  }
}

/** A finding's IoT target: named in its details (findings from before targets name none: the default target). */
function targetOfFinding(finding: AuditFinding): string {
  return typeof finding.details.targetId === 'string' ? finding.details.targetId : DEFAULT_TARGET_ID;
}

function summarise(findings: AuditFinding[]): NonNullable<FleetAudit['summary']> {
  const byType: Record<string, number> = {};
  const bySeverity: Record<string, number> = {};
  for (const f of findings) {
    byType[f.type] = (byType[f.type] ?? 0) + 1;
    bySeverity[f.severity] = (bySeverity[f.severity] ?? 0) + 1;
  }
  return { byType, bySeverity, total: findings.length };
}

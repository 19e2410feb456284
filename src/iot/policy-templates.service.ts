import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext } from '../common/actor';
import { Permission, roleAllows } from '../common/roles';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { OutboxService } from '../jobs/outbox.service';
import { IotRegistry } from './iot-registry';
import { IotRegistrationRepository } from './iot-registration.repository';
import { DEFAULT_TARGET_ID } from './iot-target';
import { IotTargetsService } from './iot-targets.service';
import { DEFAULT_POLICY_TEMPLATE, lintIotPolicy, parsePolicyDocument, PolicyFinding } from './policy-lint';
import { PolicyTemplate } from './policy-template';
import { PolicyTemplateRepository } from './policy-template.repository';
import { IOT_POLICY_NAME_PATTERN } from './iot-registration';

const SYNC_JOB = 'iot.sync-policy';
/** AWS IoT keeps at most five versions of a policy. */
const AWS_MAX_POLICY_VERSIONS = 5;

export interface SavePolicyInput {
  name: string;
  document: unknown;
  /** Finding codes the caller accepts for this version (admins only). */
  acceptFindings?: string[];
}

/**
 * Managed AWS IoT policies. A template is linted when written: a finding refuses it unless an admin accepts
 * that finding (audited). Each saved version reaches AWS IoT through the outbox (CreatePolicy, or
 * CreatePolicyVersion as default after pruning the oldest version, since AWS keeps five).
 */
@Injectable()
export class PolicyTemplatesService implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger('PolicyTemplates');

  constructor(
    private readonly repository: PolicyTemplateRepository,
    private readonly targets: IotTargetsService,
    private readonly registrations: IotRegistrationRepository,
    private readonly outbox: OutboxService,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.outbox.register(SYNC_JOB, {
      run: (p) => this.sync(String(p.name), Number(p.version), typeof p.targetId === 'string' ? p.targetId : undefined),
      onDead: (p, error) => this.repository.setIotStatus(String(p.name), Number(p.version), 'failed', error.slice(0, 1000)),
    });
  }

  /** Ships the default thing-scoped template: created once (any replica), never overwritten. */
  async onApplicationBootstrap(): Promise<void> {
    const now = this.clock.now().toISOString();
    const document = JSON.stringify(parsePolicyDocument(DEFAULT_POLICY_TEMPLATE.document));
    await this.transactions.run(async () => {
      const template: PolicyTemplate = { name: DEFAULT_POLICY_TEMPLATE.name, version: 1, document, acceptedFindings: [], iotStatus: 'pending', iotLastError: null, createdAt: now, updatedAt: now };
      if (await this.repository.insertFirst(template, null)) await this.scheduleSync(template);
    });
  }

  /** Lints and stores a new template, or the next version of an existing one. */
  async save(ctx: RequestContext, input: SavePolicyInput): Promise<{ template: PolicyTemplate; findings: (PolicyFinding & { accepted: boolean })[] }> {
    if (!IOT_POLICY_NAME_PATTERN.test(input.name)) throw Errors.validation('name must be 1-128 characters of letters, digits and _+=,.@-');
    let parsed;
    try {
      parsed = parsePolicyDocument(input.document as string | object);
    } catch (err) {
      throw Errors.invalidPolicyDocument((err as Error).message);
    }
    const findings = lintIotPolicy(parsed);
    const accepted = new Set(input.acceptFindings ?? []);
    if (accepted.size > 0 && !(ctx.actor.role && roleAllows(ctx.actor.role, Permission.AcceptPolicyFindings))) {
      await this.audit.record(ctx, { action: 'iot.policy-findings-accept-denied', target: { type: 'iot-policy', id: input.name }, details: { acceptFindings: [...accepted] } });
      throw Errors.forbidden('only an admin may accept policy findings');
    }
    const refused = findings.filter((finding) => !accepted.has(finding.code));
    if (refused.length > 0) {
      throw Errors.policyFindings(`the policy has ${refused.length} finding(s): ${refused.map((f) => `${f.code} (${f.statement})`).join(', ')}`, { findings: refused });
    }
    const acceptedFindings = [...new Set(findings.map((f) => f.code))].filter((code) => accepted.has(code)).sort();
    const document = JSON.stringify(parsed);
    const now = this.clock.now().toISOString();
    const template = await this.transactions.run(async () => {
      const current = await this.repository.find(input.name);
      const next: PolicyTemplate = {
        name: input.name,
        version: (current?.version ?? 0) + 1,
        document,
        acceptedFindings,
        iotStatus: 'pending',
        iotLastError: null,
        createdAt: current?.createdAt ?? now,
        updatedAt: now,
      };
      const stored = current ? await this.repository.insertNext(next, ctx.actor.id) : await this.repository.insertFirst(next, ctx.actor.id);
      if (!stored) throw Errors.policyTemplateConflict(`policy ${input.name} was changed meanwhile; read it and try again`);
      await this.audit.record(ctx, {
        action: 'iot.policy-saved',
        target: { type: 'iot-policy', id: input.name },
        details: { version: next.version, acceptedFindings, findings: findings.map((f) => ({ code: f.code, statement: f.statement })) },
      });
      await this.scheduleSync(next);
      return next;
    });
    return { template, findings: findings.map((f) => ({ ...f, accepted: accepted.has(f.code) })) };
  }

  async get(name: string): Promise<PolicyTemplate> {
    const template = await this.repository.find(name);
    if (!template) throw Errors.policyTemplateNotFound(`no policy template named ${name}`);
    return template;
  }

  list(): Promise<PolicyTemplate[]> {
    return this.repository.list();
  }

  versions(name: string) {
    return this.repository.versions(name);
  }

  /**
   * The AWS IoT policy name for a CA registration or a claim: a raw `policyName`, or a managed `policyTemplate`
   * (which must exist; it is the AWS IoT policy of the same name). Not both.
   */
  async policyNameFor(policyName: string | undefined, policyTemplate: string | undefined): Promise<string | undefined> {
    if (policyTemplate === undefined) return policyName;
    if (policyName !== undefined) throw Errors.validation('give policyName or policyTemplate, not both');
    await this.get(policyTemplate);
    return policyTemplate;
  }

  /** True when `policyName` is a managed template whose current version has not reached AWS IoT yet. */
  async awaitingSync(policyName: string): Promise<boolean> {
    const template = await this.repository.find(policyName);
    return template !== null && template.iotStatus !== 'synced';
  }

  /** Lints a policy document as attached in AWS IoT (fleet audits); unparsable documents are one finding. */
  lintDocument(document: string): PolicyFinding[] {
    try {
      return lintIotPolicy(parsePolicyDocument(document));
    } catch (err) {
      return [{ code: 'UNPARSABLE_POLICY', severity: 'medium', statement: '-', message: (err as Error).message }];
    }
  }

  private async scheduleSync(template: PolicyTemplate): Promise<void> {
    // Without AWS IoT configured the template is kept here only; it syncs once the service runs with AWS IoT.
    if (!this.config.iot) return;
    await this.outbox.enqueue({ kind: SYNC_JOB, payload: { name: template.name, version: template.version }, dedupeKey: `${SYNC_JOB}:${template.name}:${template.version}`, target: { type: 'iot-policy', id: template.name } });
  }

  /**
   * A CA was registered in a target (docs/iot-targets.md): every template is brought there too, so the devices
   * allocated to it find their policy. Called inside the registration's transaction.
   */
  async syncAllTo(targetId: string): Promise<void> {
    if (!this.config.iot) return;
    for (const template of await this.repository.list()) {
      await this.outbox.enqueue({ kind: SYNC_JOB, payload: { name: template.name, version: template.version, targetId }, dedupeKey: `${SYNC_JOB}:${template.name}:${template.version}:${targetId}`, target: { type: 'iot-policy', id: template.name } });
    }
  }

  /**
   * Brings AWS IoT's default version of the policy to this version in every target a CA is registered in (and the
   * default target), or in the one target named. Idempotent per target (a target already holding the document is
   * left alone), so a job that failed in one target and runs again redoes nothing elsewhere; an outdated job does nothing.
   */
  private async sync(name: string, version: number, onlyTarget?: string): Promise<void> {
    const template = await this.repository.find(name);
    if (!template || template.version !== version) return;
    const targetIds = onlyTarget ? [onlyTarget] : [...new Set([DEFAULT_TARGET_ID, ...(await this.registrations.targetIds())])];
    for (const targetId of targetIds) {
      try {
        await this.syncIn(await this.targets.registryFor(targetId), template);
      } catch (err) {
        // The job's error (and the template's iotLastError when it gives up) names the target that failed.
        if (err instanceof Error) err.message = `in IoT target ${targetId}: ${err.message}`;
        throw err;
      }
    }
    if (!onlyTarget) await this.repository.setIotStatus(name, version, 'synced', null);
    this.logger.log(`policy ${name} version ${version} is the default in AWS IoT (${targetIds.join(', ')})`);
  }

  private async syncIn(registry: IotRegistry, template: PolicyTemplate): Promise<void> {
    const name = template.name;
    const existing = await registry.getPolicy(name);
    if (!existing) {
      await registry.createPolicy(name, template.document);
    } else if (!sameDocument(existing.document, template.document)) {
      const versions = await registry.listPolicyVersions(name);
      // Make room: AWS refuses a sixth version. The default one is never deleted.
      const deletable = versions.filter((v) => !v.isDefault).sort((a, b) => Number(a.versionId) - Number(b.versionId));
      for (let count = versions.length; count >= AWS_MAX_POLICY_VERSIONS && deletable.length > 0; count--) {
        await registry.deletePolicyVersion(name, deletable.shift()!.versionId);
      }
      await registry.createPolicyVersion(name, template.document, true);
    }
  }
}

function sameDocument(a: string, b: string): boolean {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

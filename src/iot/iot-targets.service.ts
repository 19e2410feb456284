import { Inject, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext } from '../common/actor';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { AppConfig, IOT_DEFAULT_RATE_LIMITS, IotConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { IotRegistry } from './iot-registry';
import { Allocation, allocationTargets, DEFAULT_TARGET_ID, iotBudgetPrefix, IOT_TARGET_ID_PATTERN, IotTarget } from './iot-target';
import { Pacing } from '../common/pacing';
import { IotTargetRepository } from './iot-target.repository';

export interface CreateTargetRequest {
  id: string;
  accountId: string;
  region: string;
  roleArn?: string;
  profile?: string;
  endpoint?: string;
  rateLimits?: Record<string, number>;
}

/**
 * IoT targets (docs/iot-targets.md): AWS accounts and regions, each with its own SDK client, credentials and pacing
 * budget. The service's own AWS IoT configuration is the implicit target `default` (the IotRegistry bound in
 * iot.module.ts), so everything that predates targets keeps using it.
 */
@Injectable()
export class IotTargetsService {
  private readonly registries = new Map<string, Promise<IotRegistry>>();

  constructor(
    private readonly defaultRegistry: IotRegistry,
    private readonly repository: IotTargetRepository,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly pacing: Pacing,
  ) {}

  defaultTarget(): IotTarget {
    const iot = this.config.iot;
    return {
      id: DEFAULT_TARGET_ID,
      accountId: iot?.accountId ?? null,
      region: iot?.region ?? '',
      roleArn: null,
      profile: null,
      endpoint: iot?.endpoint ?? null,
      rateLimits: null,
      createdAt: null,
    };
  }

  async list(): Promise<IotTarget[]> {
    return [this.defaultTarget(), ...(await this.repository.list())];
  }

  /** The target, or IOT_TARGET_NOT_FOUND. Null and undefined name the default target. */
  async get(id: string | null | undefined): Promise<IotTarget> {
    if (id === null || id === undefined || id === DEFAULT_TARGET_ID) return this.defaultTarget();
    // No such id can exist; checked before the database, which refuses some bytes (NUL) outright.
    if (!IOT_TARGET_ID_PATTERN.test(id)) throw Errors.iotTargetNotFound('no IoT target by that id (ids are lower-case letters, digits and dashes)');
    const target = await this.repository.find(id);
    if (!target) throw Errors.iotTargetNotFound(`no IoT target ${id}`);
    return target;
  }

  /** Checks that every target an allocation names exists (IOT_TARGET_NOT_FOUND otherwise). */
  async checkAllocationTargets(allocation: Allocation): Promise<void> {
    for (const id of allocationTargets(allocation)) await this.get(id);
  }

  async create(ctx: RequestContext, request: CreateTargetRequest): Promise<IotTarget> {
    if (request.id === DEFAULT_TARGET_ID) throw Errors.iotTargetExists('the target "default" is the service\'s own AWS IoT configuration');
    for (const [operation, rate] of Object.entries(request.rateLimits ?? {})) {
      if (!(operation in IOT_DEFAULT_RATE_LIMITS) || !(rate > 0) || rate > 10_000) throw Errors.validation(`rateLimits.${operation}: a known operation (${Object.keys(IOT_DEFAULT_RATE_LIMITS).join(', ')}) with a rate in (0, 10000]`);
    }
    const target: IotTarget = {
      id: request.id,
      accountId: request.accountId,
      region: request.region,
      roleArn: request.roleArn ?? null,
      profile: request.profile ?? null,
      endpoint: request.endpoint ?? null,
      rateLimits: request.rateLimits ?? null,
      createdAt: this.clock.now().toISOString(),
    };
    await this.transactions.run(async () => {
      await this.repository.insert(target);
      await this.audit.record(ctx, {
        action: 'iot-target.created',
        target: { type: 'iot-target', id: target.id },
        details: { accountId: target.accountId, region: target.region, roleArn: target.roleArn, profile: target.profile, endpoint: target.endpoint, rateLimits: target.rateLimits },
      });
    });
    return target;
  }

  async delete(ctx: RequestContext, id: string): Promise<void> {
    if (id === DEFAULT_TARGET_ID) throw Errors.iotTargetInUse('the default target is the service\'s own AWS IoT configuration and cannot be deleted');
    await this.transactions.run(async () => {
      const target = await this.get(id);
      const refs = await this.repository.references(id);
      if (refs.registrations + refs.certificates + refs.claims + refs.estLabels > 0) {
        throw Errors.iotTargetInUse(`IoT target ${id} is still referenced (${refs.registrations} CA registrations, ${refs.certificates} certificates, ${refs.claims} claims, ${refs.estLabels} EST labels)`);
      }
      await this.repository.delete(id);
      await this.audit.record(ctx, { action: 'iot-target.deleted', target: { type: 'iot-target', id }, details: { accountId: target.accountId, region: target.region } });
    });
    this.registries.delete(id);
  }

  /** The AWS IoT client of a target: one per target, built on first use (the AWS SDK loads only then). */
  registryFor(id: string | null | undefined): Promise<IotRegistry> {
    if (id === null || id === undefined || id === DEFAULT_TARGET_ID) return Promise.resolve(this.defaultRegistry);
    let registry = this.registries.get(id);
    if (!registry) {
      registry = this.build(id);
      this.registries.set(id, registry);
      registry.catch(() => this.registries.delete(id));
    }
    return registry;
  }

  private async build(id: string): Promise<IotRegistry> {
    const target = await this.get(id);
    const base: IotConfig = this.config.iot ?? { region: target.region, requestTimeoutMs: 5000, maxAttempts: 4, rateLimits: { ...IOT_DEFAULT_RATE_LIMITS } };
    const { AwsIotRegistry, iotClient } = await import('./aws-iot-registry.js');
    const { targetCredentials } = await import('./iot-target-credentials.js');
    const config: IotConfig = { ...base, region: target.region, endpoint: target.endpoint ?? undefined };
    // Each account and region has its own pacing budget, held across replicas on PostgreSQL (docs/limits.md).
    return new AwsIotRegistry(iotClient(config, targetCredentials(target)), { ...base.rateLimits, ...target.rateLimits }, this.pacing, iotBudgetPrefix(target));
  }
}

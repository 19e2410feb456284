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
  /** By target id: the client, and the target version (its stored fields) it was built for. */
  private readonly registries = new Map<string, { version: string; registry: Promise<IotRegistry> }>();

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
      if (!Object.hasOwn(IOT_DEFAULT_RATE_LIMITS, operation) || !(rate > 0) || rate > 10_000) throw Errors.validation(`rateLimits.${operation}: a known operation (${Object.keys(IOT_DEFAULT_RATE_LIMITS).join(', ')}) with a rate in (0, 10000]`);
    }
    if (request.endpoint !== undefined && !this.config.iotTargetEndpointsAny) checkAwsEndpoint(request.endpoint);
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
      // One target per account and region: a move between two names of one account would disable the device
      // (docs/iot-targets.md). Checked in the transaction; two concurrent creates of one pair may still both pass.
      const twin = (await this.list()).find((other) => other.accountId === target.accountId && other.region === target.region);
      if (twin) throw Errors.iotTargetDuplicateAccount(`the IoT target ${twin.id} already names account ${target.accountId} in ${target.region}`);
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

  /**
   * The AWS IoT client of a target, built on first use (the AWS SDK loads only then). Cached per target *version*:
   * the row is read on every call (a primary-key lookup), and a target deleted and re-created with the same id — on
   * this replica or another — gets a new client for its new account, role and endpoint.
   */
  async registryFor(id: string | null | undefined): Promise<IotRegistry> {
    if (id === null || id === undefined || id === DEFAULT_TARGET_ID) return this.defaultRegistry;
    const target = await this.get(id);
    const version = JSON.stringify([target.accountId, target.region, target.roleArn, target.profile, target.endpoint, target.rateLimits, target.createdAt]);
    const cached = this.registries.get(id);
    if (cached && cached.version === version) return cached.registry;
    const entry = { version, registry: this.build(target) };
    this.registries.set(id, entry);
    entry.registry.catch(() => {
      if (this.registries.get(id) === entry) this.registries.delete(id);
    });
    return entry.registry;
  }

  private async build(target: IotTarget): Promise<IotRegistry> {
    const base: IotConfig = this.config.iot ?? { region: target.region, requestTimeoutMs: 5000, maxAttempts: 4, rateLimits: { ...IOT_DEFAULT_RATE_LIMITS } };
    const { AwsIotRegistry, iotClient } = await import('./aws-iot-registry.js');
    const { targetCredentials } = await import('./iot-target-credentials.js');
    const config: IotConfig = { ...base, region: target.region, endpoint: target.endpoint ?? undefined };
    // Each account and region has its own pacing budget, held across replicas on PostgreSQL (docs/limits.md).
    return new AwsIotRegistry(iotClient(config, targetCredentials(target)), { ...base.rateLimits, ...target.rateLimits }, this.pacing, iotBudgetPrefix(target));
  }
}

/**
 * Signed AWS calls carry the access key id and session token: a target's endpoint must be an AWS host over https,
 * never an internal address or plain http (docs/threat-model.md). IOT_TARGET_ENDPOINTS_ANY lifts this for stand-ins.
 */
function checkAwsEndpoint(endpoint: string): void {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw Errors.validation('endpoint must be a URL');
  }
  const host = url.hostname.toLowerCase();
  const aws = host.endsWith('.amazonaws.com') || host.endsWith('.amazonaws.com.cn');
  if (url.protocol !== 'https:' || !aws || url.username || url.password) {
    throw Errors.validation('endpoint must be an https URL of an AWS host (*.amazonaws.com or *.amazonaws.com.cn)');
  }
}

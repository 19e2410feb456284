import { X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { Logger } from '@nestjs/common';
import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  ConfirmTopicRuleDestinationCommand,
  CreateJobCommand,
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  DeletePolicyVersionCommand,
  GetPolicyCommand,
  GetTopicRuleDestinationCommand,
  ListAttachedPoliciesCommand,
  ListCertificatesByCACommand,
  ListPolicyVersionsCommand,
  CreateThingCommand,
  DescribeCACertificateCommand,
  DescribeCertificateCommand,
  DescribeJobCommand,
  DescribeThingCommand,
  DescribeThingGroupCommand,
  DescribeThingTypeCommand,
  DetachThingPrincipalCommand,
  GetRegistrationCodeCommand,
  IoTClient,
  RegisterCACertificateCommand,
  RegisterCertificateCommand,
  RegisterCertificateWithoutCACommand,
  UpdateCACertificateCommand,
  UpdateCertificateCommand,
  UpdateTopicRuleDestinationCommand,
} from '@aws-sdk/client-iot';
import { StandardRetryStrategy } from '@smithy/core/retry';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { HardLimitsNotRetried } from '../common/aws-retry';
import { DomainError, Errors } from '../common/errors';
import { LocalPacing, Pacer, Pacing } from '../common/pacing';
import { IotConfig } from '../config/config';
import { iotDomainError } from './iot-errors';
import {
  AlreadyRegistered,
  CreateJobInput,
  CreateThingOptions,
  DescribedCaCertificate,
  DescribedCertificate,
  DescribedTopicRuleDestination,
  IotRegistry,
  RegisterCaInput,
} from './iot-registry';

const NONE: ReadonlySet<string> = new Set();
const NOT_FOUND: ReadonlySet<string> = new Set(['ResourceNotFoundException']);
const ALREADY_EXISTS: ReadonlySet<string> = new Set(['ResourceAlreadyExistsException']);

/** AWS IoT's certificate id: the SHA-256 of the DER, lowercase hex; undefined for a PEM that does not parse. */
function certificateIdOf(pem: string): string | undefined {
  try {
    return new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();
  } catch {
    return undefined;
  }
}

/** The error with every occurrence of `secret` in its message replaced, so neither a log line nor a problem carries it. */
function redacted(err: unknown, secret: string): unknown {
  const error = err as { name?: string; message?: unknown; $metadata?: unknown };
  if (typeof error?.message !== 'string' || !error.message.includes(secret)) return err;
  return { name: error.name, message: error.message.split(secret).join('[redacted]'), $metadata: error.$metadata };
}

export function iotClient(config: IotConfig, credentials?: AwsCredentialIdentityProvider): IoTClient {
  const agentOptions = { keepAlive: true, maxSockets: 64 };
  return new IoTClient({
    region: config.region,
    endpoint: config.endpoint,
    ...(credentials ? { credentials } : {}),
    maxAttempts: config.maxAttempts,
    // LimitExceededException is a hard limit in AWS IoT (HTTP 410): answered at once, not retried as throttling.
    retryStrategy: new HardLimitsNotRetried(new StandardRetryStrategy(config.maxAttempts)),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: Math.min(config.requestTimeoutMs, 3000),
      requestTimeout: config.requestTimeoutMs,
      httpAgent: new http.Agent(agentOptions),
      httpsAgent: new https.Agent(agentOptions),
    }),
  });
}

/**
 * AWS IoT through @aws-sdk/client-iot (REST-JSON). Each control-plane operation is paced to its quota
 * (IOT_RATE_LIMITS, defaulting to AWS's published TPS) by the budget `<budgetPrefix>:<Operation>` of `pacing`, which
 * holds across replicas on PostgreSQL (docs/limits.md), so the outbox does not trip AWS's throttling on its own; the
 * SDK's own retries are not paced. A budget lets half a second of its rate go at once after a quiet spell: AWS's
 * bucket holds a second's worth, and the other half absorbs the network's jitter between replicas.
 */
export class AwsIotRegistry extends IotRegistry {
  private readonly logger = new Logger('IoT');
  private readonly limiters = new Map<string, Pacer>();

  constructor(
    private readonly client: IoTClient,
    rateLimits: Record<string, number> = {},
    pacing: Pacing = new LocalPacing(),
    budgetPrefix = 'iot:target:default',
  ) {
    super();
    for (const [operation, rate] of Object.entries(rateLimits)) this.limiters.set(operation, pacing.pacer(`${budgetPrefix}:${operation}`, rate, Math.max(1, Math.ceil(rate / 2))));
  }

  async registrationCode(): Promise<string> {
    const result = await this.call('GetRegistrationCode', () => this.client.send(new GetRegistrationCodeCommand({})));
    if (!result.registrationCode) throw iotDomainError({ name: 'EmptyResponse', $metadata: {} });
    return result.registrationCode;
  }

  async registerCaCertificate(input: RegisterCaInput): Promise<{ certificateId: string; certificateArn: string } & Partial<AlreadyRegistered<DescribedCaCertificate>>> {
    try {
      const result = await this.call(
        'RegisterCACertificate',
        () =>
          this.client.send(
            new RegisterCACertificateCommand({
              caCertificate: input.caCertificatePem,
              verificationCertificate: input.verificationCertificatePem,
              certificateMode: input.certificateMode,
              setAsActive: input.setAsActive,
              allowAutoRegistration: input.allowAutoRegistration,
              registrationConfig: input.registrationConfig,
            }),
          ),
        ALREADY_EXISTS,
      );
      return { certificateId: result.certificateId!, certificateArn: result.certificateArn! };
    } catch (err) {
      // ResourceAlreadyExistsException carries resourceId and resourceArn (AWS IoT API reference, RegisterCACertificate
      // "Errors"). A CA is registered once per account, so after a lost answer the retry lands here: describe what AWS
      // names, for the caller to compare with what it sent. A CA another account holds in DEFAULT mode is not
      // describable here, and the conflict stands.
      const existing = await this.describeConflict(err, input.caCertificatePem, (id) => this.describeCaCertificate(id));
      if (existing) return { certificateId: existing.certificateId, certificateArn: existing.certificateArn, existing };
      throw err;
    }
  }

  async describeCaCertificate(certificateId: string): Promise<DescribedCaCertificate | undefined> {
    try {
      const result = await this.call('DescribeCACertificate', () => this.client.send(new DescribeCACertificateCommand({ certificateId })), NOT_FOUND);
      const description = result.certificateDescription;
      if (!description?.certificateArn || !description.certificatePem) throw iotDomainError({ name: 'EmptyResponse', $metadata: {} });
      const config = result.registrationConfig;
      return {
        certificateId: description.certificateId ?? certificateId,
        certificateArn: description.certificateArn,
        certificatePem: description.certificatePem,
        status: description.status ?? '',
        autoRegistrationStatus: description.autoRegistrationStatus ?? '',
        certificateMode: description.certificateMode ?? 'DEFAULT',
        registrationConfig:
          config && (config.templateBody || config.roleArn || config.templateName)
            ? { templateBody: config.templateBody ?? undefined, roleArn: config.roleArn ?? undefined, templateName: config.templateName ?? undefined }
            : undefined,
      };
    } catch (err) {
      if (err instanceof DomainError && err.extra.awsError === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  }

  async updateCaCertificate(
    certificateId: string,
    update: { status: 'ACTIVE' | 'INACTIVE'; autoRegistration: boolean; registrationConfig?: { templateBody: string; roleArn: string } },
  ): Promise<void> {
    await this.call('UpdateCACertificate', () =>
      this.client.send(
        new UpdateCACertificateCommand({
          certificateId,
          newStatus: update.status,
          newAutoRegistrationStatus: update.autoRegistration ? 'ENABLE' : 'DISABLE',
          registrationConfig: update.registrationConfig,
        }),
      ),
    );
  }

  async deactivateCaCertificate(certificateId: string): Promise<void> {
    await this.call('UpdateCACertificate', () =>
      this.client.send(new UpdateCACertificateCommand({ certificateId, newStatus: 'INACTIVE', newAutoRegistrationStatus: 'DISABLE' })),
    );
  }

  async registerCertificate(
    certificatePem: string,
    caCertificatePem: string,
    status: 'INACTIVE' | 'REVOKED',
  ): Promise<{ certificateArn: string } & Partial<AlreadyRegistered<DescribedCertificate>>> {
    try {
      const result = await this.call('RegisterCertificate', () => this.client.send(new RegisterCertificateCommand({ certificatePem, caCertificatePem, status })), ALREADY_EXISTS);
      return { certificateArn: result.certificateArn! };
    } catch (err) {
      // A retry after a lost answer (or someone else registered it): the caller checks the described certificate is
      // the one it sent before adopting it.
      const existing = await this.describeConflict(err, certificatePem, (id) => this.describeCertificate(id));
      if (existing) return { certificateArn: existing.certificateArn, existing };
      throw err;
    }
  }

  async registerCertificateWithoutCa(
    certificatePem: string,
    status: 'ACTIVE' | 'INACTIVE' | 'REVOKED',
  ): Promise<{ certificateArn: string } & Partial<AlreadyRegistered<DescribedCertificate>>> {
    try {
      const result = await this.call('RegisterCertificateWithoutCA', () => this.client.send(new RegisterCertificateWithoutCACommand({ certificatePem, status })), ALREADY_EXISTS);
      return { certificateArn: result.certificateArn! };
    } catch (err) {
      const existing = await this.describeConflict(err, certificatePem, (id) => this.describeCertificate(id));
      if (existing) return { certificateArn: existing.certificateArn, existing };
      throw err;
    }
  }

  async describeCertificate(certificateId: string): Promise<DescribedCertificate | undefined> {
    try {
      const result = await this.call('DescribeCertificate', () => this.client.send(new DescribeCertificateCommand({ certificateId })), NOT_FOUND);
      const description = result.certificateDescription;
      if (!description?.certificateArn) throw iotDomainError({ name: 'EmptyResponse', $metadata: {} });
      return {
        certificateArn: description.certificateArn,
        status: description.status ?? '',
        certificatePem: description.certificatePem ?? '',
        caCertificateId: description.caCertificateId ?? undefined,
      };
    } catch (err) {
      if (err instanceof DomainError && err.extra.awsError === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  }

  /**
   * For a ResourceAlreadyExists conflict: the resource AWS names (resourceId; failing that, the id AWS IoT gives a
   * certificate, the SHA-256 of its DER), described, or undefined when it cannot be described.
   */
  private async describeConflict<T>(err: unknown, sentPem: string, describe: (id: string) => Promise<T | undefined>): Promise<T | undefined> {
    if (!(err instanceof DomainError) || err.extra.awsError !== 'ResourceAlreadyExistsException') return undefined;
    const id = typeof err.extra.resourceId === 'string' && /^[0-9a-fA-F]{64}$/.test(err.extra.resourceId) ? err.extra.resourceId : certificateIdOf(sentPem);
    if (!id) return undefined;
    this.logger.log(`ResourceAlreadyExists names ${id}: describing it to see whether it is ours`);
    return describe(id);
  }

  async updateCertificate(certificateId: string, status: 'ACTIVE' | 'INACTIVE' | 'REVOKED'): Promise<void> {
    await this.call('UpdateCertificate', () => this.client.send(new UpdateCertificateCommand({ certificateId, newStatus: status })));
  }

  async createThing(thingName: string, options: CreateThingOptions = {}): Promise<void> {
    const { thingTypeName, attributes } = options;
    const attributePayload = attributes && Object.keys(attributes).length > 0 ? { attributes } : undefined;
    try {
      await this.call('CreateThing', () => this.client.send(new CreateThingCommand({ thingName, thingTypeName, attributePayload })), ALREADY_EXISTS);
    } catch (err) {
      // AWS answers the same name with the same type and attributes with success (a retry lands here only after a
      // lost answer); ResourceAlreadyExists means the thing exists with another type or other attributes. The thing
      // is there, which is what the device needs: keep it as it is rather than fail the registration.
      if (err instanceof DomainError && err.extra.awsError === 'ResourceAlreadyExistsException') {
        this.logger.warn(`CreateThing ${thingName}: the thing already exists with another thing type or other attributes; keeping it as it is`);
        return;
      }
      throw err;
    }
  }

  async addThingToThingGroup(thingGroupName: string, thingName: string): Promise<void> {
    // Adding a thing to a group it is already in succeeds: a retry needs no special case.
    await this.call('AddThingToThingGroup', () => this.client.send(new AddThingToThingGroupCommand({ thingGroupName, thingName })));
  }

  /** True for a deprecated thing type too (CreateThing refuses those with InvalidRequestException). */
  async thingTypeExists(thingTypeName: string): Promise<boolean> {
    return this.exists(() => this.call('DescribeThingType', () => this.client.send(new DescribeThingTypeCommand({ thingTypeName })), NOT_FOUND));
  }

  async thingGroupExists(thingGroupName: string): Promise<boolean> {
    return this.exists(() => this.call('DescribeThingGroup', () => this.client.send(new DescribeThingGroupCommand({ thingGroupName })), NOT_FOUND));
  }

  async attachPolicy(policyName: string, target: string): Promise<void> {
    await this.call('AttachPolicy', () => this.client.send(new AttachPolicyCommand({ policyName, target })));
  }

  async attachThingPrincipal(thingName: string, principal: string): Promise<void> {
    await this.call('AttachThingPrincipal', () => this.client.send(new AttachThingPrincipalCommand({ thingName, principal })));
  }

  async detachThingPrincipal(thingName: string, principal: string): Promise<void> {
    try {
      await this.call('DetachThingPrincipal', () => this.client.send(new DetachThingPrincipalCommand({ thingName, principal })), NOT_FOUND);
    } catch (err) {
      // The thing, the certificate or the attachment is gone: detached is what we wanted.
      if (err instanceof DomainError && err.extra.awsError === 'ResourceNotFoundException') return;
      throw err;
    }
  }

  async thingArn(thingName: string): Promise<string | undefined> {
    try {
      const result = await this.call('DescribeThing', () => this.client.send(new DescribeThingCommand({ thingName })), NOT_FOUND);
      if (!result.thingArn) throw iotDomainError({ name: 'EmptyResponse', $metadata: {} });
      return result.thingArn;
    } catch (err) {
      if (err instanceof DomainError && err.extra.awsError === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  }

  async createJob(input: CreateJobInput): Promise<{ jobArn: string }> {
    const { jobId, targets, document, description } = input;
    try {
      const result = await this.call(
        'CreateJob',
        () => this.client.send(new CreateJobCommand({ jobId, targets, document: JSON.stringify(document), description, targetSelection: 'SNAPSHOT' })),
        ALREADY_EXISTS,
      );
      if (!result.jobArn) throw iotDomainError({ name: 'EmptyResponse', $metadata: {} });
      return { jobArn: result.jobArn };
    } catch (err) {
      // CreateJob is not idempotent in AWS: a retry after a lost answer gets ResourceAlreadyExists. The job id is the
      // caller's idempotency key, so the job that is there is the one asked for; its ARN comes from DescribeJob (the
      // exception's resourceArn is not relied on).
      if (err instanceof DomainError && err.extra.awsError === 'ResourceAlreadyExistsException') {
        const existing = await this.describeJob(jobId);
        if (existing?.status === 'DELETION_IN_PROGRESS') {
          throw Errors.iotConflict(`AWS IoT job ${jobId} exists but is being deleted; the job id cannot be used until the deletion ends`, {
            awsError: 'ResourceAlreadyExistsException',
            jobArn: existing.jobArn,
          });
        }
        if (existing) return { jobArn: existing.jobArn };
      }
      throw err;
    }
  }

  async confirmTopicRuleDestination(confirmationToken: string): Promise<void> {
    // The token is a credential for the destination: whatever AWS answers, the log line must not carry it.
    await this.call('ConfirmTopicRuleDestination', () => this.client.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken })), NONE, confirmationToken);
  }

  async getTopicRuleDestination(arn: string): Promise<DescribedTopicRuleDestination> {
    const result = await this.call('GetTopicRuleDestination', () => this.client.send(new GetTopicRuleDestinationCommand({ arn })));
    const destination = result.topicRuleDestination;
    if (!destination?.status) throw iotDomainError({ name: 'EmptyResponse', $metadata: {} });
    return {
      arn: destination.arn ?? arn,
      status: destination.status,
      statusReason: destination.statusReason ?? undefined,
      confirmationUrl: destination.httpUrlProperties?.confirmationUrl ?? undefined,
    };
  }

  async enableTopicRuleDestination(arn: string): Promise<void> {
    await this.call('UpdateTopicRuleDestination', () => this.client.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'ENABLED' })));
  }

  /** The job's ARN and status, or undefined when AWS IoT does not know it. */
  private async describeJob(jobId: string): Promise<{ jobArn: string; status?: string } | undefined> {
    try {
      const result = await this.call('DescribeJob', () => this.client.send(new DescribeJobCommand({ jobId })), NOT_FOUND);
      if (!result.job?.jobArn) throw iotDomainError({ name: 'EmptyResponse', $metadata: {} });
      return { jobArn: result.job.jobArn, status: result.job.status };
    } catch (err) {
      if (err instanceof DomainError && err.extra.awsError === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  }

  private async exists(describe: () => Promise<unknown>): Promise<boolean> {
    try {
      await describe();
      return true;
    } catch (err) {
      if (err instanceof DomainError && err.extra.awsError === 'ResourceNotFoundException') return false;
      throw err;
    }
  }

  /** Paced by the operation's limiter; AWS errors mapped to DomainErrors and logged, except the `expected` ones the caller handles. */
  async getPolicy(policyName: string): Promise<{ document: string; defaultVersionId: string } | undefined> {
    try {
      const result = await this.call('GetPolicy', () => this.client.send(new GetPolicyCommand({ policyName })), NOT_FOUND);
      return { document: result.policyDocument ?? '', defaultVersionId: result.defaultVersionId ?? '' };
    } catch (err) {
      if (err instanceof DomainError && err.extra.awsError === 'ResourceNotFoundException') return undefined;
      throw err;
    }
  }

  async createPolicy(policyName: string, document: string): Promise<{ versionId: string }> {
    const result = await this.call('CreatePolicy', () => this.client.send(new CreatePolicyCommand({ policyName, policyDocument: document })));
    return { versionId: result.policyVersionId ?? '1' };
  }

  async createPolicyVersion(policyName: string, document: string, setAsDefault: boolean): Promise<{ versionId: string }> {
    const result = await this.call('CreatePolicyVersion', () => this.client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: document, setAsDefault })));
    return { versionId: result.policyVersionId ?? '' };
  }

  async listPolicyVersions(policyName: string): Promise<{ versionId: string; isDefault: boolean; createdAt: Date | undefined }[]> {
    const result = await this.call('ListPolicyVersions', () => this.client.send(new ListPolicyVersionsCommand({ policyName })));
    return (result.policyVersions ?? []).map((v) => ({ versionId: v.versionId ?? '', isDefault: v.isDefaultVersion ?? false, createdAt: v.createDate }));
  }

  async deletePolicyVersion(policyName: string, versionId: string): Promise<void> {
    try {
      await this.call('DeletePolicyVersion', () => this.client.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: versionId })), NOT_FOUND);
    } catch (err) {
      // Gone already (a retry after a lost answer): what we wanted.
      if (err instanceof DomainError && err.extra.awsError === 'ResourceNotFoundException') return;
      throw err;
    }
  }

  async listAttachedPolicies(targetArn: string): Promise<string[]> {
    const names: string[] = [];
    let marker: string | undefined;
    do {
      const result = await this.call('ListAttachedPolicies', () => this.client.send(new ListAttachedPoliciesCommand({ target: targetArn, marker, pageSize: 250 })));
      names.push(...(result.policies ?? []).map((p) => p.policyName ?? '').filter(Boolean));
      marker = result.nextMarker ?? undefined;
    } while (marker);
    return names;
  }

  async listCertificatesByCa(caCertificateId: string, pageSize = 250): Promise<{ certificateId: string; certificateArn: string; status: string }[]> {
    const certificates: { certificateId: string; certificateArn: string; status: string }[] = [];
    let marker: string | undefined;
    do {
      const result = await this.call('ListCertificatesByCA', () => this.client.send(new ListCertificatesByCACommand({ caCertificateId, marker, pageSize })));
      for (const c of result.certificates ?? []) certificates.push({ certificateId: c.certificateId ?? '', certificateArn: c.certificateArn ?? '', status: c.status ?? '' });
      marker = result.nextMarker ?? undefined;
    } while (marker);
    return certificates;
  }

  /** `secret`, when given, is blanked out of what is logged and of the mapped error's message. */
  private async call<T>(operation: string, send: () => Promise<T>, expected: ReadonlySet<string> = NONE, secret?: string): Promise<T> {
    try {
      await this.limiters.get(operation)?.acquire();
      return await send();
    } catch (err) {
      if (err instanceof DomainError) throw err;
      const error = secret ? redacted(err, secret) : err;
      const mapped = iotDomainError(error, operation);
      if (expected.has(String(mapped.extra.awsError))) throw mapped;
      this.logger.warn(`${operation} failed: ${(error as Error).name}: ${String((error as Error).message).slice(0, 300)} → ${mapped.code}`);
      throw mapped;
    }
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { AuthorityRepository } from '../authorities/authority.repository';
import { Clock } from '../common/clock';
import { DomainError } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { DatabaseProbe } from '../database/database-probe';
import { IotRegistrationRepository } from '../iot/iot-registration.repository';
import { IotRegistry } from '../iot/iot-registry';
import { KeyManagers } from '../keys/key-manager';
import { KeyBackend } from '../keys/key-spec';
import { AwsCredentialsResolver } from './aws-credentials-resolver.port';
import { PublicTrustProbe } from './public-trust-probe.port';
import { SetupCheckDto, SetupReportDto } from './setup-check.dto';

/** Time bound of each check that leaves the process (TLS handshake, credential chain, AWS IoT). */
export const SETUP_CHECK_TIMEOUT_MS = 5000;

class TimedOut extends Error {}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimedOut(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describeError(err: unknown): string {
  if (err instanceof DomainError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * GET /v1/setup/check: whether this deployment is set up to work, checked from inside the running service
 * (its own environment, credentials and network path): the database and its schema, the key backends, AWS
 * configuration and credentials, the JITR settings (and the topic rule destination's status when
 * IOT_EVENTS_DESTINATION_ARN is set), and whether PUBLIC_BASE_URL presents a publicly trusted
 * certificate, which AWS IoT requires before it delivers the topic rule destination's confirmation and every
 * JITR event. Checks that need AWS are skipped, without any call, when no AWS region is configured.
 */
@Injectable()
export class SetupCheckService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: DatabaseProbe,
    private readonly authorities: AuthorityRepository,
    private readonly registrations: IotRegistrationRepository,
    private readonly keys: KeyManagers,
    private readonly iot: IotRegistry,
    private readonly trust: PublicTrustProbe,
    private readonly credentials: AwsCredentialsResolver,
    private readonly clock: Clock,
  ) {}

  async run(): Promise<SetupReportDto> {
    const database = await this.database();
    const jitrRegistrations = database.status === 'ok' ? await this.jitrRegistrations() : undefined;
    const checks = [
      database,
      ...(await Promise.all([
        this.keyBackend('local', database.status === 'ok'),
        this.keyBackend('aws-kms', database.status === 'ok'),
        // Listed only where PKCS11_MODULE is set: a token that cannot be opened stops the start, so here it is about keys.
        ...(this.config.pkcs11 ? [this.keyBackend('pkcs11', database.status === 'ok')] : []),
        this.awsCredentials(),
        this.awsIot(),
        this.publicTls(jitrRegistrations),
        this.topicRuleDestination(jitrRegistrations),
      ])),
      ...this.jitrSettings(jitrRegistrations),
    ];
    const status = checks.some((c) => c.status === 'fail') ? 'fail' : checks.some((c) => c.status === 'warn') ? 'warn' : 'ok';
    return { status, checkedAt: this.clock.now().toISOString(), checks };
  }

  private async database(): Promise<SetupCheckDto> {
    const name = 'database';
    const driver = this.config.database.driver;
    try {
      await this.db.ping();
    } catch (err) {
      return { name, status: 'fail', detail: `${driver}: not reachable (${describeError(err).slice(0, 200)})` };
    }
    try {
      const migrations = await this.db.migrations();
      const applied = new Set(migrations.applied);
      const known = migrations.known;
      const pending = known.filter((m) => !applied.has(m));
      const unknown = [...applied].filter((m) => !known.includes(m));
      if (pending.length) return { name, status: 'fail', detail: `${driver}: reachable, ${pending.length} migration(s) not applied (${pending.join(', ')}): run npm run migrate` };
      if (unknown.length) {
        return { name, status: 'warn', detail: `${driver}: reachable, schema has ${unknown.length} migration(s) this version does not know (${unknown.join(', ')}): a newer version migrated it` };
      }
      return { name, status: 'ok', detail: `${driver}: reachable, all ${known.length} migrations applied` };
    } catch (err) {
      return { name, status: 'fail', detail: `${driver}: reachable, but the migrations table cannot be read (${describeError(err).slice(0, 200)})` };
    }
  }

  /** Each active CA's key on this backend must be able to sign now (local: decrypts; KMS: DescribeKey, cached; pkcs11: on the token). */
  private async keyBackend(backend: KeyBackend, databaseOk: boolean): Promise<SetupCheckDto> {
    const name = `key-backend:${backend}`;
    let manager;
    try {
      manager = this.keys.get(backend);
    } catch {
      return { name, status: 'skipped', detail: 'not configured (set AWS_REGION to enable aws-kms); no call made' };
    }
    if (!databaseOk) return { name, status: 'skipped', detail: 'configured; its CA keys were not checked because the database is not reachable' };
    const active = (await this.authorities.listAll()).filter((a) => a.status === 'active' && a.keyBackend === backend);
    if (active.length === 0) return { name, status: 'ok', detail: `configured; no active CA uses it${backend === 'aws-kms' ? ' (no KMS call made)' : ''}` };
    const failures: string[] = [];
    await Promise.all(
      active.map(async (authority) => {
        try {
          await within(manager.checkKey(authority.keyRef, authority.keySpec), SETUP_CHECK_TIMEOUT_MS, 'key check');
        } catch (err) {
          failures.push(`${authority.id} (${authority.name}): ${describeError(err).slice(0, 200)}`);
        }
      }),
    );
    if (failures.length) return { name, status: 'fail', detail: `${failures.length} of ${active.length} active CA key(s) cannot sign: ${failures.join('; ')}` };
    return { name, status: 'ok', detail: `the keys of all ${active.length} active CA(s) can sign` };
  }

  private async awsCredentials(): Promise<SetupCheckDto> {
    const name = 'aws-credentials';
    const region = this.config.kms?.region ?? this.config.iot?.region;
    if (!region) return { name, status: 'skipped', detail: 'AWS_REGION (or AWS_DEFAULT_REGION) is not set: aws-kms and AWS IoT are off; no call made' };
    try {
      const { expiration } = await within(this.credentials.resolve(region), SETUP_CHECK_TIMEOUT_MS, 'the AWS credential chain');
      return { name, status: 'ok', detail: `region ${region}; credentials resolved from the default chain${expiration ? ` (temporary, expire ${expiration.toISOString()})` : ''}` };
    } catch (err) {
      return {
        name,
        status: 'fail',
        detail: `region ${region}; no credentials from the default chain (${describeError(err).slice(0, 200)}): give the task or instance its IAM role (docs/aws-setup.md §1.2)`,
      };
    }
  }

  /** GetRegistrationCode: read-only, needs only iot:GetRegistrationCode; proves credentials, network path and IAM. */
  private async awsIot(): Promise<SetupCheckDto> {
    const name = 'aws-iot';
    if (!this.config.iot) return { name, status: 'skipped', detail: 'AWS IoT is not configured (no AWS_REGION); no call made' };
    try {
      await within(this.iot.registrationCode(), SETUP_CHECK_TIMEOUT_MS, 'AWS IoT GetRegistrationCode');
      return { name, status: 'ok', detail: `AWS IoT in ${this.config.iot.region} answered GetRegistrationCode${this.config.iot.endpoint ? ` at ${this.config.iot.endpoint}` : ''}` };
    } catch (err) {
      return { name, status: 'fail', detail: `AWS IoT GetRegistrationCode failed: ${describeError(err).slice(0, 300)} (IAM policy: docs/iam/fleet-pki-service-policy.json)` };
    }
  }

  private async jitrRegistrations(): Promise<number | undefined> {
    try {
      return await this.registrations.countActiveJitr();
    } catch {
      return undefined;
    }
  }

  private jitrSettings(jitr: number | undefined): SetupCheckDto[] {
    const iot = this.config.iot;
    if (!iot) {
      return [
        { name: 'iot-events-secret', status: 'skipped', detail: 'AWS IoT is not configured' },
        { name: 'iot-events-destination-arn', status: 'skipped', detail: 'AWS IoT is not configured' },
      ];
    }
    const uses = jitr === undefined ? 'JITR use unknown (database not readable)' : jitr === 0 ? 'no active CA registration uses JITR' : `${jitr} active CA registration(s) use JITR`;
    const secret: SetupCheckDto = iot.eventsSecret
      ? { name: 'iot-events-secret', status: 'ok', detail: `set; ${uses}` }
      : jitr
        ? { name: 'iot-events-secret', status: 'fail', detail: `${uses}, but IOT_EVENTS_SECRET is not set: POST /v1/iot/events answers 404 and no device is activated (docs/aws-setup.md §1.3)` }
        : { name: 'iot-events-secret', status: 'skipped', detail: `not set; needed only for JITR, and ${uses}` };
    const destination: SetupCheckDto = iot.eventsDestinationArn
      ? { name: 'iot-events-destination-arn', status: 'ok', detail: `set (${iot.eventsDestinationArn})` }
      : jitr
        ? {
            name: 'iot-events-destination-arn',
            status: 'warn',
            detail: `${uses}, but IOT_EVENTS_DESTINATION_ARN is not set: the topic rule destination's confirmation is logged and ignored; confirm it by hand (docs/aws-setup.md §3.2)`,
          }
        : { name: 'iot-events-destination-arn', status: 'skipped', detail: `not set; needed only for JITR, and ${uses}` };
    return [secret, destination];
  }

  /**
   * GetTopicRuleDestination on IOT_EVENTS_DESTINATION_ARN: AWS IoT delivers only to an ENABLED destination (confirmed,
   * then enabled: "Managing HTTP topic rule destinations",
   * https://docs.aws.amazon.com/iot/latest/developerguide/rule-destination-http-managing.html).
   */
  private async topicRuleDestination(jitr: number | undefined): Promise<SetupCheckDto> {
    const name = 'iot-topic-rule-destination';
    const arn = this.config.iot?.eventsDestinationArn;
    if (!this.config.iot) return { name, status: 'skipped', detail: 'AWS IoT is not configured; no call made' };
    if (!arn) return { name, status: 'skipped', detail: 'IOT_EVENTS_DESTINATION_ARN is not set; no call made' };
    const notReady = jitr ? 'fail' : 'warn';
    let destination;
    try {
      destination = await within(this.iot.getTopicRuleDestination(arn), SETUP_CHECK_TIMEOUT_MS, 'AWS IoT GetTopicRuleDestination');
    } catch (err) {
      return {
        name,
        status: notReady,
        detail: `GetTopicRuleDestination ${arn} failed: ${describeError(err).slice(0, 300)} (is IOT_EVENTS_DESTINATION_ARN this account's destination? IAM: iot:GetTopicRuleDestination, docs/iam/fleet-pki-service-policy.json)`,
      };
    }
    const reason = destination.statusReason ? ` (${destination.statusReason.slice(0, 200)})` : '';
    switch (destination.status) {
      case 'ENABLED':
        return { name, status: 'ok', detail: `${arn} is ENABLED: AWS IoT delivers the rule's messages to it` };
      case 'DISABLED':
        return {
          name,
          status: notReady,
          detail: `${arn} is confirmed but DISABLED${reason}: AWS IoT delivers nothing to it. The service enables it after confirming it; look for iot.topic-rule-destination-enable-failed in the audit log, or enable it: aws iot update-topic-rule-destination --arn ${arn} --status ENABLED (docs/aws-setup.md §3.2)`,
        };
      case 'IN_PROGRESS':
        return {
          name,
          status: notReady,
          detail: `${arn} is IN_PROGRESS${reason}: not confirmed yet. AWS must reach PUBLIC_BASE_URL/v1/iot/events (see public-base-url-tls); ask for a new confirmation with aws iot update-topic-rule-destination --arn ${arn} --status IN_PROGRESS (docs/aws-setup.md §3.2)`,
        };
      default:
        return {
          name,
          status: notReady,
          detail: `${arn} is ${destination.status}${reason}: AWS IoT delivers nothing to it. After ERROR (the confirmation timed out) ask for a new confirmation: aws iot update-topic-rule-destination --arn ${arn} --status IN_PROGRESS (docs/aws-setup.md §3.2)`,
        };
    }
  }

  private async publicTls(jitr: number | undefined): Promise<SetupCheckDto> {
    const name = 'public-base-url-tls';
    const eventsUrl = `${this.config.publicBaseUrl}/v1/iot/events`;
    const verdict = await this.trust.probe(eventsUrl);
    if (verdict.trusted) return { name, status: 'ok', detail: `${eventsUrl}: ${verdict.detail}`, chain: verdict.chain };
    const consequence =
      'AWS IoT sends topic rule HTTP actions only to https:// endpoints with a certificate from a public CA it lists (docs/aws-setup.md §3.2): ' +
      'the destination confirmation and every JITR event would never arrive, and nothing here would show it. ' +
      'Serve PUBLIC_BASE_URL through a load balancer or proxy with a publicly trusted certificate (e.g. ACM), with the full chain.';
    const needed = jitr ? 'fail' : 'warn';
    const scope = jitr ? '' : ' (matters only for JITR, which no active CA registration uses yet)';
    return { name, status: needed, reason: verdict.reason, detail: `${eventsUrl}: not publicly trusted: ${verdict.detail}. ${consequence}${scope}`, chain: verdict.chain };
  }
}

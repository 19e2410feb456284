import { createHash, timingSafeEqual } from 'node:crypto';
import { Body, Controller, Headers, HttpCode, Inject, Logger, Post, Req } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { AuditService } from '../audit/audit.service';
import { RequestContext } from '../common/actor';
import { Public } from '../common/access.decorators';
import { DomainError, Errors } from '../common/errors';
import { ApiProblems, ProblemGroups } from '../common/openapi';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { MetricsService } from '../metrics/metrics.service';
import { IotDeviceSync } from './iot-device-sync';
import { IotRegistry } from './iot-registry';
import { isDestinationArn } from '../common/destination-arn';
import { TopicRuleDestinationEnabler } from './topic-rule-destination';

export const EVENTS_SECRET_HEADER = 'x-fleet-pki-events-secret';

export class IotEventResultDto {
  @ApiProperty({ enum: ['confirm-destination', 'confirmation-ignored', 'activate', 'reject', 'duplicate', 'not-our-ca'] }) decision: string;
  @ApiProperty({ nullable: true, type: String, format: 'uuid', description: 'Our certificate, when the event is about one' }) certificateId: string | null;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * The target of an AWS IoT topic rule HTTP action: the destination confirmation message, then JITR
 * events from `$aws/events/certificates/registered/<caCertificateId>`. Authenticated by a shared secret
 * header (IOT_EVENTS_SECRET), compared in constant time. Decisions are audited; the AWS calls they need
 * go through the outbox, so the rule gets its answer at once. A destination confirmed here is then enabled
 * through the outbox too (TopicRuleDestinationEnabler): AWS delivers nothing to a destination that is not ENABLED.
 */
@ApiTags('iot')
@Controller('v1/iot/events')
export class IotEventsController {
  private readonly logger = new Logger('IoTEvents');

  constructor(
    private readonly sync: IotDeviceSync,
    private readonly registry: IotRegistry,
    private readonly destinations: TopicRuleDestinationEnabler,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post()
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: 'AWS IoT topic rule HTTP action target: destination confirmation and JITR events',
    description: `JITR events are authenticated by the ${EVENTS_SECRET_HEADER} header (IOT_EVENTS_SECRET), not an API key. The destination confirmation (x-amz-rules-engine-message-type: DestinationConfirmation) comes before the rule's headers exist and is accepted without it (checked against IOT_EVENTS_DESTINATION_ARN when set): the service confirms the destination (ConfirmTopicRuleDestination) at once, then, only for the destination in IOT_EVENTS_DESTINATION_ARN whose confirmation URL is PUBLIC_BASE_URL/v1/iot/events, sets it ENABLED (UpdateTopicRuleDestination) through the outbox, within 15 minutes of the confirmation; any other is left for an operator to enable (audited iot.topic-rule-destination-enable-skipped). The body is the AWS IoT message as sent. Idempotent: a replayed event changes nothing. A JITR event is checked against the IoT target(s) of the AWS account it names (awsAccountId, docs/iot-targets.md): from an account where the CA has no registration of ours it is refused (422 IOT_EVENT_UNKNOWN_TARGET, audited iot.jitr-event-refused).`,
  })
  @ApiHeader({ name: EVENTS_SECRET_HEADER, required: false, description: 'The shared secret set on the topic rule HTTP action (every message but the destination confirmation)' })
  @ApiBody({ schema: { type: 'object', additionalProperties: true, example: { certificateId: '…', caCertificateId: '…', certificateStatus: 'PENDING_ACTIVATION', timestamp: 1764110000000, awsAccountId: '111122223333', certificateRegistrationTimestamp: '1764110000000' } } })
  @ApiOkResponse({ type: IotEventResultDto, description: 'What the service decided; AWS calls follow through the outbox' })
  // 404 while IOT_EVENTS_SECRET is unset; the destination confirmation calls AWS IoT while the rule waits.
  @ApiProblems(Errors.notFound, Errors.unauthenticated, Errors.iotEventUnknownTarget, ProblemGroups.iotCall)
  async receiveIotEvent(
    @Headers(EVENTS_SECRET_HEADER) secret: string | undefined,
    @Headers('x-amz-rules-engine-message-type') messageType: string | undefined,
    @Body() body: Record<string, unknown>,
    @Req() request: FastifyRequest,
  ): Promise<IotEventResultDto> {
    const expected = this.config.iot?.eventsSecret;
    if (!expected) throw Errors.notFound('the AWS IoT events endpoint is not enabled (set IOT_EVENTS_SECRET)');
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw Errors.validation('the body must be a JSON object');

    // AWS sends the destination confirmation before any rule uses the destination, so without the rule's
    // custom headers: it cannot carry our secret. Unauthenticated, it is acted on only for the destination
    // named in IOT_EVENTS_DESTINATION_ARN, stores nothing and is not audited.
    if (messageType === 'DestinationConfirmation' || body.messageType === 'DestinationConfirmation') {
      return this.confirmDestination(body, request, secretMatches(secret, expected));
    }
    if (!secretMatches(secret, expected)) {
      this.metrics.authFailures.inc({ reason: 'iot-events-secret' });
      this.logger.warn(`401 POST /v1/iot/events from ${request.ip}: wrong or missing ${EVENTS_SECRET_HEADER}`);
      throw Errors.unauthenticated(`send the shared secret in ${EVENTS_SECRET_HEADER}`);
    }
    const ctx: RequestContext = { actor: { type: 'aws-iot-rule', id: 'iot-events', role: null }, requestId: String(request.id), sourceIp: null };

    const { certificateId, caCertificateId, certificateStatus } = body;
    if (typeof certificateId !== 'string' || !HEX64.test(certificateId) || typeof caCertificateId !== 'string' || !HEX64.test(caCertificateId)) {
      throw Errors.validation('expected a JITR event with certificateId and caCertificateId (64 lowercase hex), or a confirmationToken');
    }
    if (certificateStatus !== 'PENDING_ACTIVATION') throw Errors.validation('only PENDING_ACTIVATION registration events are handled');
    const { awsAccountId } = body;
    if (awsAccountId !== undefined && (typeof awsAccountId !== 'string' || !/^\d{12}$/.test(awsAccountId))) throw Errors.validation('awsAccountId must be a 12-digit AWS account id');
    try {
      return await this.transactions.run(async () => {
        const { decision, certificateId: ourId, targetIds } = await this.sync.onRegistrationEvent(certificateId, caCertificateId, awsAccountId);
        await this.audit.record(ctx, {
          action: 'iot.jitr-event',
          target: ourId ? { type: 'certificate', id: ourId } : undefined,
          details: { decision, awsCertificateId: certificateId, caCertificateId, awsAccountId: awsAccountId ?? null, targetIds },
        });
        return { decision, certificateId: ourId };
      });
    } catch (err) {
      // From an account where the CA has no registration of ours: refused, and the refusal audited (docs/iot-targets.md).
      if (err instanceof DomainError && err.code === 'IOT_EVENT_UNKNOWN_TARGET') {
        this.logger.warn(`JITR event refused: ${err.message}`);
        await this.transactions.run(() =>
          this.audit.record(ctx, { action: 'iot.jitr-event-refused', details: { code: err.code, awsCertificateId: certificateId, caCertificateId, awsAccountId: awsAccountId ?? null } }),
        );
      }
      throw err;
    }
  }

  private async confirmDestination(body: Record<string, unknown>, request: FastifyRequest, authenticated: boolean): Promise<IotEventResultDto> {
    const token = body.confirmationToken;
    if (typeof token !== 'string' || token.length === 0 || token.length > 2048) throw Errors.validation('confirmationToken is missing or malformed');
    const arn = typeof body.arn === 'string' ? body.arn.slice(0, 300).replace(/[^\x21-\x7e]/g, '?') : 'no arn';
    const expectedArn = this.config.iot?.eventsDestinationArn;
    if (!authenticated && (expectedArn === undefined || body.arn !== expectedArn)) {
      this.metrics.authFailures.inc({ reason: 'iot-destination-unexpected' });
      this.logger.warn(
        `topic rule destination confirmation for ${arn} from ${request.ip} not acted on: set IOT_EVENTS_DESTINATION_ARN to that ARN and ask AWS to resend it, or open its enableUrl`,
      );
      return { decision: 'confirmation-ignored', certificateId: null };
    }
    // Confirmed directly (the token is never stored); enabling, the second step AWS requires, goes through the outbox
    // with the ARN only, and only once AWS has accepted the token.
    await this.registry.confirmTopicRuleDestination(token);
    // Enabled only when it is the destination configured: the message is accepted from anyone with a valid token (and
    // the shared secret lets any ARN through), so an ARN from the body alone must not turn a destination on.
    if (expectedArn !== undefined && body.arn === expectedArn) {
      await this.destinations.schedule(expectedArn, token);
      this.logger.log(`topic rule destination ${arn} confirmed; enabling it`);
    } else {
      await this.destinations.skipped(
        isDestinationArn(body.arn) ? body.arn : undefined,
        expectedArn === undefined ? 'confirmed, but IOT_EVENTS_DESTINATION_ARN is not set' : 'confirmed, but it is not the destination in IOT_EVENTS_DESTINATION_ARN',
      );
    }
    return { decision: 'confirm-destination', certificateId: null };
  }
}

/** Constant-time comparison of the presented secret with the configured one (hashed to equal lengths). */
function secretMatches(presented: string | undefined, expected: string): boolean {
  const a = createHash('sha256').update(presented ?? '').digest();
  const b = createHash('sha256').update(expected).digest();
  return presented !== undefined && timingSafeEqual(a, b);
}

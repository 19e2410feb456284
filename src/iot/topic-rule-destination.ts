import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { SYSTEM_CONTEXT } from '../common/actor';
import { Clock } from '../common/clock';
import { Errors, finalError } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { Transactions } from '../database/transactions';
import { OutboxJob } from '../jobs/outbox-job';
import { OutboxService } from '../jobs/outbox.service';
import { IotRegistry } from './iot-registry';

export const ENABLE_DESTINATION_JOB = 'iot.enable-topic-rule-destination';

/**
 * How long after the confirmation (the job's creation) the job may still enable the destination. Past it, a DISABLED
 * destination is left alone: it may be an operator's decision taken since, which a late retry must not undo.
 */
export const ENABLE_WINDOW_MS = 15 * 60_000;

/** The path of the events endpoint, which the destination's confirmation URL must be (docs/aws-setup.md §3.2). */
export const EVENTS_PATH = '/v1/iot/events';

/**
 * The second half of confirming an HTTP topic rule destination. AWS IoT's guide ("Managing HTTP topic rule
 * destinations", https://docs.aws.amazon.com/iot/latest/developerguide/rule-destination-http-managing.html) has the
 * owner of the confirmation URL (1) confirm the destination (ConfirmTopicRuleDestination with the token, which the
 * events controller does at once) and then (2) set it ENABLED with UpdateTopicRuleDestination: a confirmed destination
 * is DISABLED, and "A destination must be in the ENABLED state for it to be used in a rule. You can only enable a
 * destination that's in DISABLED status" (https://docs.aws.amazon.com/iot/latest/developerguide/rule-destination-http.html).
 *
 * Step 2 runs through the outbox, so it is retried with backoff (AWS may still be applying the confirmation, or
 * answer ConflictingResourceUpdateException) and survives a restart. Each run reads the status first: ENABLED is done
 * (a retry after a lost answer, or an operator got there first), DISABLED is enabled, IN_PROGRESS is retried later,
 * anything else needs an operator and is given up at once. Audited: iot.topic-rule-destination-enabled (previousStatus
 * DISABLED; or ENABLED when a retry finds it so, after an attempt whose answer was lost), and
 * iot.topic-rule-destination-enable-failed when the job is given up (also logged, with what to do). A destination
 * already ENABLED at the first run (a replayed confirmation) changes nothing and is not audited.
 * The job carries the destination ARN only: the confirmation token is never stored or logged.
 *
 * What it may enable, since the confirmation message is accepted from anyone holding a valid token:
 * - only the destination named in IOT_EVENTS_DESTINATION_ARN (the controller queues nothing for another, and a job
 *   for another ARN, or queued before the setting changed, ends without a change, audited
 *   iot.topic-rule-destination-enable-skipped);
 * - only a destination whose confirmation URL is this service's events endpoint (PUBLIC_BASE_URL + /v1/iot/events):
 *   otherwise the job is given up at once (a final error, audited as enable-failed);
 * - only once per confirmation, and only within ENABLE_WINDOW_MS of it: a DISABLED destination found later is left
 *   alone (enable-skipped), so a job retried long after the confirmation cannot override an operator's DISABLE. A
 *   replay of the same confirmation queues nothing while its job is kept (dedupe key, a week). An operator disabling
 *   the destination within the window while the job still retries is the remaining exposure (docs/aws-behaviours.md).
 *   The window runs from the first job queued for the confirmation's token (finished jobs are kept a week), so a
 *   replay of the confirmation, which queues a new job once the first one finished, gets no new window.
 */
@Injectable()
export class TopicRuleDestinationEnabler implements OnModuleInit {
  private readonly logger = new Logger('IoTDestination');

  constructor(
    private readonly outbox: OutboxService,
    private readonly registry: IotRegistry,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.outbox.register(ENABLE_DESTINATION_JOB, {
      run: (payload, job) => this.enable(String(payload.destinationArn), job),
      onDead: (payload, error) => this.givenUp(String(payload.destinationArn), error),
    });
  }

  /**
   * Queues the enabling of a destination AWS has just confirmed. One live job per confirmation token (keyed by its
   * hash), so a replayed confirmation queues nothing more while it runs (and, queued after it, gets no new window),
   * while a later confirmation of the same destination (after an operator asked AWS for a new one) queues its own.
   */
  async schedule(destinationArn: string, confirmationToken: string): Promise<void> {
    const tokenHash = createHash('sha256').update(confirmationToken).digest('hex').slice(0, 32);
    await this.transactions.run(() =>
      this.outbox.enqueue({
        kind: ENABLE_DESTINATION_JOB,
        payload: { destinationArn },
        dedupeKey: `${ENABLE_DESTINATION_JOB}:${tokenHash}`,
        target: { type: 'topic-rule-destination', id: destinationArn },
      }),
    );
  }

  private async enable(destinationArn: string, job: Pick<OutboxJob, 'attempts' | 'createdAt' | 'dedupeKey'>): Promise<void> {
    const attempt = job.attempts; // 1 for the job's first run
    const configured = this.config.iot?.eventsDestinationArn;
    if (destinationArn !== configured) {
      await this.skipped(destinationArn, configured === undefined ? 'IOT_EVENTS_DESTINATION_ARN is not set' : 'it is not the destination in IOT_EVENTS_DESTINATION_ARN');
      return;
    }
    const destination = await this.registry.getTopicRuleDestination(destinationArn);
    const expectedUrl = `${this.config.publicBaseUrl}${EVENTS_PATH}`;
    if (!sameUrl(destination.confirmationUrl, expectedUrl)) {
      throw finalError(
        Errors.iotRefused(
          `topic rule destination ${destinationArn} has the confirmation URL ${String(destination.confirmationUrl).slice(0, 300)}, not ${expectedUrl} (PUBLIC_BASE_URL${EVENTS_PATH}): this service does not enable it`,
          { awsError: 'TopicRuleDestinationConfirmationUrl' },
        ),
      );
    }
    switch (destination.status) {
      case 'ENABLED':
      case 'DISABLED': {
        if (destination.status === 'DISABLED') {
          // Measured from the first time this confirmation (token) was queued: a replay of it, queued anew once the
          // first job finished, gets no fresh window.
          const first = (job.dedupeKey ? await this.outbox.firstQueuedAt(job.dedupeKey) : undefined) ?? new Date(job.createdAt);
          const age = this.clock.now().getTime() - Math.min(first.getTime(), Date.parse(job.createdAt));
          if (!(age <= ENABLE_WINDOW_MS)) {
            await this.skipped(destinationArn, `it is DISABLED ${Math.round(age / 60_000)} minutes after its confirmation (more than ${ENABLE_WINDOW_MS / 60_000}): perhaps an operator's decision, left alone`);
            return;
          }
          await this.registry.enableTopicRuleDestination(destinationArn);
        }
        this.logger.log(`topic rule destination ${destinationArn} is ENABLED (it was ${destination.status})`);
        // ENABLED on a first run: enabled before this confirmation (a replayed message): nothing changed, nothing to
        // audit. ENABLED on a retry: most likely this job's earlier attempt, whose answer was lost.
        if (destination.status === 'ENABLED' && attempt <= 1) return;
        await this.audit.record(SYSTEM_CONTEXT, {
          action: 'iot.topic-rule-destination-enabled',
          target: { type: 'topic-rule-destination', id: destinationArn },
          details: { destinationArn, previousStatus: destination.status },
        });
        return;
      }
      case 'IN_PROGRESS':
        // ConfirmTopicRuleDestination answered, but AWS has not applied it yet: the outbox tries again later.
        throw Errors.iotUnavailable(`topic rule destination ${destinationArn} is still IN_PROGRESS after its confirmation; retrying`);
      default:
        // ERROR (the confirmation timed out), DELETING, or a status this code does not know: no retry changes it.
        throw finalError(
          Errors.iotRefused(
            `topic rule destination ${destinationArn} is ${destination.status}${destination.statusReason ? ` (${destination.statusReason.slice(0, 200)})` : ''}, not DISABLED: it cannot be enabled`,
            { awsError: 'TopicRuleDestinationStatus' },
          ),
        );
    }
  }

  /**
   * A confirmed destination this service leaves for an operator to enable (`destinationArn` undefined when the message
   * named none): logged, with the command, and audited iot.topic-rule-destination-enable-skipped.
   */
  async skipped(destinationArn: string | undefined, reason: string): Promise<void> {
    const arn = destinationArn ?? '<its ARN>';
    this.logger.warn(
      `topic rule destination ${destinationArn ?? '(no ARN in the message)'} not enabled by this service: ${reason}. If it should receive events, an operator enables it ` +
        `(aws iot update-topic-rule-destination --arn ${arn} --status ENABLED); docs/aws-setup.md §3.2`,
    );
    await this.audit.record(SYSTEM_CONTEXT, {
      action: 'iot.topic-rule-destination-enable-skipped',
      target: destinationArn ? { type: 'topic-rule-destination', id: destinationArn } : undefined,
      details: { destinationArn: destinationArn ?? null, reason },
    });
  }

  private async givenUp(destinationArn: string, error: string): Promise<void> {
    this.logger.error(
      `topic rule destination ${destinationArn} was confirmed but could not be enabled: ${error}. AWS IoT delivers nothing to it until it is ENABLED: ` +
        `check it with aws iot get-topic-rule-destination --arn ${destinationArn}, then enable it (aws iot update-topic-rule-destination --arn ${destinationArn} --status ENABLED) ` +
        'or ask for a new confirmation (--status IN_PROGRESS); docs/aws-setup.md §3.2',
    );
    await this.audit.record(SYSTEM_CONTEXT, {
      action: 'iot.topic-rule-destination-enable-failed',
      target: { type: 'topic-rule-destination', id: destinationArn },
      details: { destinationArn, error: error.slice(0, 500) },
    });
  }
}

/** The same http(s) URL, up to the normalisation URL parsing does and a trailing slash. */
function sameUrl(actual: string | undefined, expected: string): boolean {
  if (actual === undefined) return false;
  const normal = (url: string) => {
    try {
      return new URL(url).href.replace(/\/+$/, '');
    } catch {
      return undefined;
    }
  };
  const a = normal(actual);
  return a !== undefined && a === normal(expected);
}

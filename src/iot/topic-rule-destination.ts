import { createHash } from 'node:crypto';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { SYSTEM_CONTEXT } from '../auth/actor';
import { Errors, finalError } from '../common/errors';
import { Transactions } from '../database/transactions';
import { OutboxService } from '../jobs/outbox.service';
import { IotRegistry } from './iot-registry';

export const ENABLE_DESTINATION_JOB = 'iot.enable-topic-rule-destination';

/**
 * An HTTP topic rule destination ARN (arn:${Partition}:iot:${Region}:${Account}:ruledestination/http/${Uuid}), as
 * IOT_EVENTS_DESTINATION_ARN is checked, and short enough for the outbox and audit target columns.
 */
export function isDestinationArn(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 128 && /^arn:aws[a-z-]*:iot:[a-z0-9-]+:\d{12}:ruledestination\/http\/[\w-]+$/.test(value);
}

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
 */
@Injectable()
export class TopicRuleDestinationEnabler implements OnModuleInit {
  private readonly logger = new Logger('IoTDestination');

  constructor(
    private readonly outbox: OutboxService,
    private readonly registry: IotRegistry,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
  ) {}

  onModuleInit(): void {
    this.outbox.register(ENABLE_DESTINATION_JOB, {
      run: (payload, job) => this.enable(String(payload.destinationArn), job.attempts),
      onDead: (payload, error) => this.givenUp(String(payload.destinationArn), error),
    });
  }

  /**
   * Queues the enabling of a destination AWS has just confirmed. One job per confirmation token (keyed by its hash),
   * so a replayed confirmation queues nothing more while a later confirmation of the same destination (after an
   * operator asked AWS for a new one) queues its own.
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

  /** `attempt`: 1 for the job's first run. */
  private async enable(destinationArn: string, attempt: number): Promise<void> {
    const destination = await this.registry.getTopicRuleDestination(destinationArn);
    switch (destination.status) {
      case 'ENABLED':
      case 'DISABLED': {
        if (destination.status === 'DISABLED') await this.registry.enableTopicRuleDestination(destinationArn);
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

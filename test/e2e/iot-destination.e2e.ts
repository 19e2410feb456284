import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DataSource } from 'typeorm';
import { Clock } from '../../src/common/clock';
import { CapturedOutput } from '../support/captured-output';
import { eventually } from '../support/eventually';
import { IotDestinationConfirmation, IotStandIn } from '../../tools/standins';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

/** The real clock, moved forward by hand: the outbox keeps running while a test makes a job look old. */
class OffsetClock extends Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

/**
 * The topic rule destination after AWS's confirmation message: the service confirms it (ConfirmTopicRuleDestination)
 * and then, as AWS's guide requires, sets it ENABLED (UpdateTopicRuleDestination) through the outbox: retried when AWS
 * answers ConflictingResourceUpdateException, idempotent after a lost answer, given up (logged and audited) when it
 * cannot be enabled. The confirmation token is never stored nor logged. State checked in the IoT stand-in, which
 * models IN_PROGRESS → DISABLED (confirmed) → ENABLED (only from DISABLED).
 */

const SECRET = 'iot-events-secret-for-tests-0123456789abcdef';
const DESTINATION_ARN = 'arn:aws:iot:us-east-1:111122223333:ruledestination/http/7a280e37-b9c6-47a2-a751-0703693f46e4';
const JOB_KIND = 'iot.enable-topic-rule-destination';
const MAX_ATTEMPTS = 4;

for (const { driver, skip } of drivers())
  describe(`AWS IoT topic rule destination: confirmed, then enabled (${driver})`, { skip }, () => {
    let iot: IotStandIn;
    let t: TestApp;
    const tokens: string[] = [];
    let output: CapturedOutput;
    const clock = new OffsetClock();

    before(async () => {
      // Everything the service logs, to show the token never reaches a log line.
      output = new CapturedOutput();
      iot = await new IotStandIn().start();
      t = await startTestApp(driver, {
        iot,
        clock,
        env: {
          LOG_LEVEL: 'info',
          IOT_EVENTS_SECRET: SECRET,
          IOT_EVENTS_DESTINATION_ARN: DESTINATION_ARN,
          IOT_MAX_ATTEMPTS: '1',
          OUTBOX_POLL_MS: '25',
          OUTBOX_BACKOFF_BASE_MS: '40',
          OUTBOX_BACKOFF_MAX_MS: '200',
          OUTBOX_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        },
      });
    });
    after(async () => {
      await t?.close();
      await iot?.stop();
      output.restore();
    });

    /** A fresh destination as CreateTopicRuleDestination leaves it (IN_PROGRESS), and the message AWS would send. */
    function createdDestination(options: { arn?: string; confirmationUrl?: string } = {}): IotDestinationConfirmation {
      const token = `AYADeMXL-${randomBytes(24).toString('base64url')}/+x==`;
      tokens.push(token);
      // Created as docs/aws-setup.md §3.2 says: the confirmation URL is PUBLIC_BASE_URL/v1/iot/events.
      const confirmationUrl = options.confirmationUrl ?? `${t.config.publicBaseUrl}/v1/iot/events`;
      return iot.seedTopicRuleDestination({ arn: options.arn ?? DESTINATION_ARN, confirmationToken: token, confirmationUrl });
    }

    /** AWS IoT's confirmation request: POST {confirmationUrl}/?confirmationToken=…, its headers, no secret (unless given). */
    function deliver(message: IotDestinationConfirmation, secret?: string) {
      const req = t
        .http()
        .post('/v1/iot/events/')
        .query({ confirmationToken: message.confirmationToken })
        .set('x-amz-rules-engine-message-type', 'DestinationConfirmation')
        .set('x-amz-rules-engine-destination-arn', message.arn);
      if (secret) req.set('x-fleet-pki-events-secret', secret);
      return req.send(message);
    }

    const placeholder = (n: number) => (driver === 'postgres' ? `$${n}` : '?');

    async function jobs(): Promise<{ status: string; attempts: number; payload: string; dedupe_key: string; last_error: string | null }[]> {
      return t.app.get(DataSource).query(`SELECT status, attempts, payload, dedupe_key, last_error FROM outbox_jobs WHERE kind = ${placeholder(1)} ORDER BY created_at`, [JOB_KIND]);
    }

    async function auditDetails(action: string): Promise<Record<string, unknown>[]> {
      const res = await t.http().get('/v1/audit').query({ action, targetId: DESTINATION_ARN, limit: 500 }).set(bearer(t.adminKey));
      assert.equal(res.status, 200);
      return res.body.items.map((e: { details: Record<string, unknown> }) => e.details);
    }

    async function selfCheck(): Promise<{ status: string; detail: string }> {
      const res = await t.http().get('/v1/setup/check').set(bearer(t.adminKey));
      return res.body.checks.find((c: { name: string }) => c.name === 'iot-topic-rule-destination');
    }

    it('retries UpdateTopicRuleDestination after ConflictingResourceUpdateException until the destination is ENABLED; a replayed confirmation changes nothing', async () => {
      const message = createdDestination();
      assert.equal((await selfCheck()).status, 'warn', 'IN_PROGRESS: not ready (a warning: no CA uses JITR)');
      iot.configure({ conflictingUpdates: { UpdateTopicRuleDestination: 2 } });
      const conflictsBefore = iot.conflicts.get('UpdateTopicRuleDestination') ?? 0;
      const res = await deliver(message);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body, { decision: 'confirm-destination', certificateId: null });

      await eventually('the destination is ENABLED in AWS IoT', () => iot.topicRuleDestination(DESTINATION_ARN)?.status === 'ENABLED');
      assert.equal((iot.conflicts.get('UpdateTopicRuleDestination') ?? 0) - conflictsBefore, 2, 'two refusals, then the third attempt enabled it');
      await eventually('the job is done', async () => (await jobs()).at(-1)?.status === 'done');
      const job = (await jobs()).at(-1)!;
      assert.equal(job.attempts, 3);
      assert.deepEqual(JSON.parse(job.payload), { destinationArn: DESTINATION_ARN });
      assert.deepEqual(await auditDetails('iot.topic-rule-destination-enabled'), [{ destinationArn: DESTINATION_ARN, previousStatus: 'DISABLED' }]);

      const check = await selfCheck();
      assert.equal(check.status, 'ok');
      assert.match(check.detail, /is ENABLED/);

      // The same confirmation again (AWS retrying, or anyone replaying it): the destination is already ENABLED, so no
      // update and no audit event.
      const updates = iot.calls.get('UpdateTopicRuleDestination');
      assert.equal((await deliver(message)).status, 200);
      await eventually('the replay\'s job is done', async () => (await jobs()).every((j) => j.status === 'done'));
      assert.equal(iot.calls.get('UpdateTopicRuleDestination'), updates);
      assert.equal((await auditDetails('iot.topic-rule-destination-enabled')).length, 1);
      assert.equal(iot.topicRuleDestination(DESTINATION_ARN)?.status, 'ENABLED');
    });

    it('after a lost UpdateTopicRuleDestination answer, the retry finds the destination ENABLED and does not update it again', async () => {
      const message = createdDestination();
      iot.configure({ loseResponses: { UpdateTopicRuleDestination: 1 } });
      const updatesBefore = iot.calls.get('UpdateTopicRuleDestination') ?? 0;
      const enabledBefore = (await auditDetails('iot.topic-rule-destination-enabled')).length;
      assert.equal((await deliver(message)).status, 200);
      await eventually('the job is done', async () => (await jobs()).at(-1)?.status === 'done');
      const job = (await jobs()).at(-1)!;
      assert.equal(job.attempts, 2, 'the lost answer failed the first attempt');
      assert.equal(iot.lostResponses.get('UpdateTopicRuleDestination'), 1);
      assert.equal((iot.calls.get('UpdateTopicRuleDestination') ?? 0) - updatesBefore, 1, 'one update: a second would be refused (ENABLED is not DISABLED)');
      assert.equal(iot.topicRuleDestination(DESTINATION_ARN)?.status, 'ENABLED');
      const enabled = await auditDetails('iot.topic-rule-destination-enabled');
      assert.equal(enabled.length, enabledBefore + 1);
      assert.deepEqual(enabled.at(-1), { destinationArn: DESTINATION_ARN, previousStatus: 'ENABLED' });
    });

    it(`gives up after ${MAX_ATTEMPTS} refused attempts, leaves the destination DISABLED, and reports it (audit, log, self-check)`, async () => {
      const message = createdDestination();
      iot.configure({ conflictingUpdates: { UpdateTopicRuleDestination: 1000 } });
      const conflictsBefore = iot.conflicts.get('UpdateTopicRuleDestination') ?? 0;
      try {
        assert.equal((await deliver(message)).status, 200);
        await eventually('the failure is audited', async () => (await auditDetails('iot.topic-rule-destination-enable-failed')).length === 1);
      } finally {
        iot.configure({ conflictingUpdates: {} });
      }
      assert.equal((iot.conflicts.get('UpdateTopicRuleDestination') ?? 0) - conflictsBefore, MAX_ATTEMPTS);
      const [failed] = await auditDetails('iot.topic-rule-destination-enable-failed');
      assert.equal(failed.destinationArn, DESTINATION_ARN);
      assert.match(String(failed.error), /ConflictingResourceUpdateException/);
      const job = (await jobs()).at(-1)!;
      assert.equal(job.status, 'dead');
      assert.equal(job.attempts, MAX_ATTEMPTS);
      assert.equal(iot.topicRuleDestination(DESTINATION_ARN)?.status, 'DISABLED', 'confirmed, not enabled');
      assert.match(output.text, new RegExp(`topic rule destination ${DESTINATION_ARN} was confirmed but could not be enabled: .*update-topic-rule-destination --arn ${DESTINATION_ARN} --status ENABLED`));
      const check = await selfCheck();
      assert.equal(check.status, 'warn');
      assert.match(check.detail, /confirmed but DISABLED: AWS IoT delivers nothing to it.*iot\.topic-rule-destination-enable-failed/);
    });

    it('gives up at once, without waiting for the attempts to run out, when the destination went to ERROR', async () => {
      const message = createdDestination();
      iot.configure({ conflictingUpdates: { UpdateTopicRuleDestination: 1000 } });
      const conflictsBefore = iot.conflicts.get('UpdateTopicRuleDestination') ?? 0;
      try {
        assert.equal((await deliver(message)).status, 200);
        await eventually('a first attempt was refused', () => (iot.conflicts.get('UpdateTopicRuleDestination') ?? 0) > conflictsBefore);
        iot.setTopicRuleDestinationStatus(DESTINATION_ARN, 'ERROR', 'the confirmation timed out');
      } finally {
        iot.configure({ conflictingUpdates: {} });
      }
      await eventually('the failure is audited', async () => (await auditDetails('iot.topic-rule-destination-enable-failed')).length === 2);
      const failed = (await auditDetails('iot.topic-rule-destination-enable-failed')).at(-1)!;
      assert.match(String(failed.error), /is ERROR \(the confirmation timed out\), not DISABLED: it cannot be enabled/);
      const job = (await jobs()).at(-1)!;
      assert.equal(job.status, 'dead');
      assert.ok(job.attempts < MAX_ATTEMPTS, `given up after ${job.attempts} attempt(s), a failure no retry fixes`);
      assert.equal(iot.topicRuleDestination(DESTINATION_ARN)?.status, 'ERROR');
      const check = await selfCheck();
      assert.equal(check.status, 'warn');
      assert.match(check.detail, /is ERROR \(the confirmation timed out\).*--status IN_PROGRESS/);
    });

    it('confirms, but never enables, a destination other than IOT_EVENTS_DESTINATION_ARN, even with the shared secret (issue 25)', async () => {
      const otherArn = 'arn:aws:iot:us-east-1:111122223333:ruledestination/http/0b9e4cf1-52d4-4d6c-9b6e-6a8a3f6f7f00';
      const message = createdDestination({ arn: otherArn });
      const jobsBefore = (await jobs()).length;
      const res = await deliver(message, SECRET);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body, { decision: 'confirm-destination', certificateId: null });
      assert.equal(iot.topicRuleDestination(otherArn)?.status, 'DISABLED', 'confirmed with its token, not enabled');
      assert.equal((await jobs()).length, jobsBefore, 'no job queued to enable it');
      const skipped = await t.http().get('/v1/audit').query({ action: 'iot.topic-rule-destination-enable-skipped', targetId: otherArn }).set(bearer(t.adminKey));
      assert.deepEqual(skipped.body.items.map((e: { details: unknown }) => e.details), [
        { destinationArn: otherArn, reason: 'confirmed, but it is not the destination in IOT_EVENTS_DESTINATION_ARN' },
      ]);
      assert.match(output.text, new RegExp(`topic rule destination ${otherArn} not enabled by this service: .*--arn ${otherArn} --status ENABLED`));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(iot.topicRuleDestination(otherArn)?.status, 'DISABLED');
    });

    it('gives up at once, audited, when the destination\'s confirmation URL is not PUBLIC_BASE_URL/v1/iot/events (issue 25)', async () => {
      const message = createdDestination({ confirmationUrl: 'https://elsewhere.example/v1/iot/events' });
      const failedBefore = (await auditDetails('iot.topic-rule-destination-enable-failed')).length;
      const updatesBefore = iot.calls.get('UpdateTopicRuleDestination') ?? 0;
      assert.equal((await deliver(message)).status, 200);
      await eventually('the failure is audited', async () => (await auditDetails('iot.topic-rule-destination-enable-failed')).length === failedBefore + 1);
      const failed = (await auditDetails('iot.topic-rule-destination-enable-failed')).at(-1)!;
      assert.match(String(failed.error), new RegExp(`confirmation URL https://elsewhere\\.example/v1/iot/events, not ${t.config.publicBaseUrl.replace(/\./g, '\\.')}/v1/iot/events`));
      const job = (await jobs()).at(-1)!;
      assert.equal(job.status, 'dead');
      assert.equal(job.attempts, 1, 'a final error: no retries');
      assert.equal(iot.calls.get('UpdateTopicRuleDestination') ?? 0, updatesBefore, 'never enabled');
      assert.equal(iot.topicRuleDestination(DESTINATION_ARN)?.status, 'DISABLED');
    });

    it('leaves alone a destination an operator DISABLED: a confirmation replayed past the enable window changes nothing (issue 25)', async () => {
      const message = createdDestination();
      assert.equal((await deliver(message)).status, 200);
      await eventually('the destination is ENABLED', () => iot.topicRuleDestination(DESTINATION_ARN)?.status === 'ENABLED');
      await eventually('the job is done', async () => (await jobs()).every((j) => j.status === 'done' || j.status === 'dead'));
      // The operator turns it off; later, the same confirmation comes again (AWS retrying, or anyone holding it).
      iot.setTopicRuleDestinationStatus(DESTINATION_ARN, 'DISABLED');
      const skippedBefore = (await auditDetails('iot.topic-rule-destination-enable-skipped')).length;
      const updatesBefore = iot.calls.get('UpdateTopicRuleDestination') ?? 0;
      clock.offsetMs += 16 * 60_000;
      try {
        assert.equal((await deliver(message)).status, 200);
        await eventually('the skip is audited', async () => (await auditDetails('iot.topic-rule-destination-enable-skipped')).length === skippedBefore + 1);
      } finally {
        clock.offsetMs = 0;
      }
      const skipped = (await auditDetails('iot.topic-rule-destination-enable-skipped')).at(-1)!;
      assert.match(String(skipped.reason), /^it is DISABLED 16 minutes after its confirmation \(more than 15\): perhaps an operator's decision, left alone$/);
      // The handler audits the skip, then the outbox marks its job finished: wait for that, then check how.
      await eventually('the replay\'s job is finished', async () => !['pending', 'running'].includes((await jobs()).at(-1)!.status));
      assert.equal((await jobs()).at(-1)!.status, 'done', 'nothing to retry');
      assert.equal(iot.calls.get('UpdateTopicRuleDestination') ?? 0, updatesBefore, 'no UpdateTopicRuleDestination');
      assert.equal(iot.topicRuleDestination(DESTINATION_ARN)?.status, 'DISABLED', 'the operator\'s decision stands');
    });

    it('the self-check says when it cannot read the destination, and what to look at', async () => {
      iot.configure({ failureMode: 'http503' });
      try {
        const check = await selfCheck();
        assert.equal(check.status, 'warn');
        assert.match(check.detail, new RegExp(`^GetTopicRuleDestination ${DESTINATION_ARN} failed: IOT_UNAVAILABLE: .*iot:GetTopicRuleDestination`));
      } finally {
        iot.configure({ failureMode: 'none' });
      }
    });

    it('never stores nor logs a confirmation token (outbox, audit, log), while the log names the destination', async () => {
      assert.ok(tokens.length >= 4);
      const rows = JSON.stringify(await t.app.get(DataSource).query('SELECT * FROM outbox_jobs'));
      const audit = JSON.stringify((await t.http().get('/v1/audit').query({ limit: 500 }).set(bearer(t.adminKey))).body);
      assert.match(output.text, new RegExp(`topic rule destination ${DESTINATION_ARN} confirmed; enabling it`), 'the log was captured');
      for (const token of tokens) {
        const fragment = token.slice(9, 33);
        for (const [where, text] of [['outbox', rows], ['audit', audit], ['log', output.text]] as const) assert.ok(!text.includes(fragment), `a token in the ${where}`);
      }
    });
  });

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { LoggerService } from '@nestjs/common';
import type { Response } from 'supertest';
import { OpenSslWorkspace } from '../support/openssl';
import { createClaim, StationCredentials, stationToken } from '../support/station';
import { bearer, drivers, startTestApp, TestApp } from '../support/test-app';

type Body = Response['body'];

/** Every line the application logs, by level. */
class CapturedLog implements LoggerService {
  readonly lines: { level: string; message: string; context?: string }[] = [];
  private add(level: string, message: unknown, rest: unknown[]): void {
    const context = rest.length && typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined;
    this.lines.push({ level, message: String(message), context });
  }
  log(message: unknown, ...rest: unknown[]) { this.add('log', message, rest); }
  error(message: unknown, ...rest: unknown[]) { this.add('error', message, rest); }
  warn(message: unknown, ...rest: unknown[]) { this.add('warn', message, rest); }
  debug(message: unknown, ...rest: unknown[]) { this.add('debug', message, rest); }
  verbose(message: unknown, ...rest: unknown[]) { this.add('verbose', message, rest); }
  fatal(message: unknown, ...rest: unknown[]) { this.add('fatal', message, rest); }
  at(level: string) {
    return this.lines.filter((line) => line.level === level);
  }
}

/**
 * Races the database settles with a unique constraint are expected and handled: they are not errors to an operator,
 * and what is logged of them carries no query parameters (serials, keys, token ids).
 */
for (const { driver, skip } of drivers())
describe(`expected races on ${driver} log no errors`, { skip }, () => {
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  const log = new CapturedLog();
  let station: StationCredentials;

  before(async () => {
    t = await startTestApp(driver);
    t.app.useLogger(log);
    const root = await admin('/v1/authorities', { name: 'Race Root', type: 'root', subject: { commonName: 'Race Root' } });
    const claimCa = await admin('/v1/authorities', { name: 'Claims', type: 'intermediate', parentId: root.id, usage: 'claims', subject: { commonName: 'Race Claims CA' } });
    const deviceCa = await admin('/v1/authorities', { name: 'Devices', type: 'intermediate', parentId: root.id, subject: { commonName: 'Race Devices CA' } });
    ({ station } = await createClaim(t, { claimAuthorityId: claimCa.id, deviceAuthorityId: deviceCa.id, maxDevices: 100 }));
  });
  beforeEach(() => {
    log.lines.length = 0;
  });
  after(async () => {
    await t?.close();
    ssl.cleanup();
  });

  async function admin(path: string, body: unknown): Promise<Body> {
    const res = await t.http().post(path).set(bearer(t.adminKey)).send(body as object);
    assert.ok([200, 201].includes(res.status), `${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  function exchange(body: object, headers: Record<string, string> = {}, token = stationToken(t, station)) {
    return t.http().post('/v1/provisioning/exchange').set(headers).set('Authorization', `Bearer ${token}`).send(body);
  }

  function assertNoErrors(): void {
    assert.deepEqual(log.at('error'), [], 'no ERROR line');
    assert.deepEqual(log.at('fatal'), []);
  }

  it('concurrent exchanges of one serial: one certificate, the losers answered as retries, no ERROR line, no parameters logged', async () => {
    // As below: up to five rounds, each with its own serial, until the requests meet at the unique constraint.
    const races = () => log.at('debug').filter((line) => line.context === 'Database');
    for (let round = 1; round <= 5 && races().length === 0; round++) {
      const serial = `RACE-SERIAL-${round}`;
      const csr = ssl.newCsr('ec:P-256', `/CN=${serial}`).csrPem;
      const answers = await Promise.all(Array.from({ length: 8 }, () => exchange({ deviceSerial: serial, csr })));
      assert.ok(answers.every((res) => res.status === 201 || res.status === 200), JSON.stringify(answers.map((res) => [res.status, res.body.code])));
      assert.equal(new Set(answers.map((res) => res.body.id)).size, 1);
      assertNoErrors();
    }
    assert.ok(races().length >= 1, 'the race happened and was logged at debug');
    for (const line of races()) assert.ok(!line.message.includes('RACE-SERIAL-'), line.message);
  });

  it('one Idempotency-Key on concurrent different requests: one certificate, the others IDEMPOTENCY_KEY_REUSED, no ERROR line', async () => {
    // Whether the requests meet inside the database (the unique constraint) or one already sees the other's key depends
    // on timing: up to five rounds, each with its own key, until the race happens; every round must hold the rules.
    const keyRace = () => log.at('debug').some((line) => line.context === 'Database' && line.message.includes('exchange_idempotency_keys'));
    for (let round = 0; round < 5 && !keyRace(); round++) {
      const requests = Array.from({ length: 6 }, (_, i) => ({ deviceSerial: `RACE-KEY-${round}-${i}`, csr: ssl.newCsr('ec:P-256', `/CN=RACE-KEY-${round}-${i}`).csrPem }));
      const answers = await Promise.all(requests.map((body) => exchange(body, { 'Idempotency-Key': `race-key-${round}` })));
      const statuses = JSON.stringify(answers.map((res) => [res.status, res.body.code]));
      assert.equal(answers.filter((res) => res.status === 201).length, 1, statuses);
      assert.ok(answers.filter((res) => res.status !== 201).every((res) => res.body.code === 'IDEMPOTENCY_KEY_REUSED'), statuses);
      assertNoErrors();
    }
    assert.ok(keyRace(), 'the key race happened');
  });

  it('one station token replayed concurrently: used once, the replays refused, no ERROR line', async () => {
    const token = stationToken(t, station);
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => exchange({ deviceSerial: `RACE-JTI-${i}`, csr: ssl.newCsr('ec:P-256', `/CN=RACE-JTI-${i}`).csrPem }, {}, token)),
    );
    assert.equal(answers.filter((res) => res.status === 201).length, 1, JSON.stringify(answers.map((res) => [res.status, res.body.code])));
    assert.ok(answers.filter((res) => res.status !== 201).every((res) => res.body.code === 'TOKEN_REPLAYED'));
    assertNoErrors();
  });
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Logger } from '@nestjs/common';
import { configureLogging, ServiceLogger } from './service-logger';
import { CENSOR, scrubSecrets } from './log-redaction';

const apiKey = `fpk_0123456789ab.${randomBytes(32).toString('base64url')}`;
const jwt = `eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzdGF0aW9uLTcifQ.${randomBytes(40).toString('base64url')}`;
const pem = `-----BEGIN PRIVATE KEY-----\n${randomBytes(48).toString('base64')}\n-----END PRIVATE KEY-----`;

function capture(level: 'debug' | 'info' | 'warn' = 'debug'): { lines: Record<string, unknown>[]; raw: string[] } {
  const raw: string[] = [];
  const lines: Record<string, unknown>[] = [];
  configureLogging({ level, format: 'json', output: { write: (line) => void (raw.push(line), lines.push(JSON.parse(line) as Record<string, unknown>)) } });
  return { lines, raw };
}

describe('scrubSecrets', () => {
  it('replaces API key secrets (keeping the key id), JWTs and PEM private keys, raw or JSON-escaped', () => {
    assert.equal(scrubSecrets(`key ${apiKey} used`), `key fpk_0123456789ab.${CENSOR} used`);
    assert.equal(scrubSecrets(`token ${jwt}`), `token ${CENSOR}`);
    assert.equal(scrubSecrets(`key: ${pem} end`), `key: ${CENSOR} end`);
    assert.equal(scrubSecrets(JSON.stringify({ msg: `key: ${pem}` })), JSON.stringify({ msg: `key: ${CENSOR}` }));
    assert.equal(scrubSecrets(JSON.stringify({ msg: `cut: ${pem.slice(0, 60)}` })), JSON.stringify({ msg: `cut: ${CENSOR}` }));
    assert.equal(scrubSecrets('nothing secret here, fpk_0123456789ab alone is an id'), 'nothing secret here, fpk_0123456789ab alone is an id');
  });

  it('keeps a JSON line valid JSON: never past an escaped quote or into the next field', () => {
    const quoted = JSON.stringify({ msg: `cannot parse "${pem.slice(0, 60)}" from file`, other: 'kept' });
    assert.deepEqual(JSON.parse(scrubSecrets(quoted)), { msg: `cannot parse "${CENSOR}`, other: 'kept' });
    const split = JSON.stringify({ msg: `begins ${pem.slice(0, 40)}`, detail: 'between', err: { message: `ends ${pem.slice(-40)}` } });
    const scrubbed = JSON.parse(scrubSecrets(split)) as { msg: string; detail: string; err: { message: string } };
    assert.equal(scrubbed.msg, `begins ${CENSOR}`);
    assert.equal(scrubbed.detail, 'between');
  });
});

describe('the service logger', () => {
  it('writes a Nest Logger call as a JSON line with its level and context', () => {
    const { lines } = capture();
    new ServiceLogger().warn('disk almost full', 'Keys');
    assert.equal(lines.length, 1);
    assert.equal(lines[0].level, 'warn');
    assert.equal(lines[0].context, 'Keys');
    assert.equal(lines[0].msg, 'disk almost full');
  });

  it('censors secret fields by name and secret shapes anywhere, errors included', () => {
    const { raw } = capture();
    const logger = new ServiceLogger();
    logger.log({ msg: 'fields', headers: { authorization: `Bearer ${apiKey}`, cookie: 's=1', 'x-pkcs12-password': 'hunter2hunter2' }, body: { a: 1 }, password: 'p4ssw0rd-p4ss', privateKey: 'k' }, 'Test');
    logger.warn({ msg: 'nested', req: { headers: { authorization: 'Basic dXNlcjpodW50ZXIy' }, body: 'hunter2hunter2' }, err: { config: { headers: { authorization: 'Basic dXNlcjpodW50ZXIy' } } } }, 'Test');
    logger.error(`failed with ${jwt} and ${apiKey}`, 'Test');
    logger.error(new Error(`boom ${pem}`), 'Test');
    const text = raw.join('');
    for (const secret of [apiKey.split('.')[1], jwt, 'hunter2hunter2', 'p4ssw0rd-p4ss', 'dXNlcjpodW50ZXIy', 'BEGIN PRIVATE KEY', '"a":1']) assert.ok(!text.includes(secret), `${secret} in ${text}`);
    assert.ok(text.includes(CENSOR));
  });

  it('honours LOG_LEVEL on stdout, and gives an output every level (the output filters)', () => {
    const root = configureLogging({ level: 'warn', format: 'json' });
    assert.equal(root.isLevelEnabled('info'), false);
    assert.equal(root.isLevelEnabled('warn'), true);
    assert.equal(configureLogging({ level: 'silent', format: 'json' }).isLevelEnabled('fatal'), false);
    assert.equal(configureLogging({ level: 'warn', format: 'json', output: { write: () => {} } }).isLevelEnabled('trace'), true);
  });

  it('drops Nest start-up chatter', () => {
    const { lines } = capture();
    const logger = new ServiceLogger();
    logger.log('Nest application successfully started', 'NestApplication');
    logger.log('AppModule dependencies initialized', 'InstanceLoader');
    assert.equal(lines.length, 0);
    logger.warn('a warning at start-up still shows', 'NestApplication');
    assert.equal(lines.length, 1);
  });

  it('is what Nest\'s static Logger writes through once installed', () => {
    const { lines } = capture();
    Logger.overrideLogger(new ServiceLogger());
    new Logger('IoT').error('sync failed');
    Logger.overrideLogger(false);
    assert.deepEqual([lines[0]?.context, lines[0]?.level, lines[0]?.msg], ['IoT', 'error', 'sync failed']);
  });
});

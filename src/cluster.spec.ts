import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from './app.config';
import { workerConfig } from './cluster';

describe('workerConfig (WORKERS > 1)', () => {
  const base = { DATABASE_URL: 'postgres://db/pki', FLEET_PKI_MASTER_KEY: 'ab'.repeat(32), AWS_REGION: 'eu-west-1' };

  it('divides the rates that stand for a share of an AWS quota among the workers', () => {
    const config = loadConfig({ ...base, WORKERS: '4', IOT_RATE_LIMITS: 'RegisterCertificate=10', KMS_MAX_SIGN_RATE: '300' });
    const worker = workerConfig(config);
    assert.equal(worker.iot!.rateLimits.RegisterCertificate, 2.5);
    assert.equal(worker.iot!.rateLimits.AttachPolicy, config.iot!.rateLimits.AttachPolicy / 4);
    assert.equal(worker.kms!.maxSignRate, 75);
    assert.equal(worker.workers, 4);
    assert.deepEqual(worker.database, config.database);
  });

  it('keeps an unpaced KMS unpaced and never paces a worker below one signature per second', () => {
    assert.equal(workerConfig(loadConfig({ ...base, WORKERS: '4' })).kms!.maxSignRate, 0);
    assert.equal(workerConfig(loadConfig({ ...base, WORKERS: '8', KMS_MAX_SIGN_RATE: '3' })).kms!.maxSignRate, 1);
  });

  it('changes nothing without AWS, and nothing for one worker', () => {
    const noAws = loadConfig({ DATABASE_URL: 'postgres://db/pki', FLEET_PKI_MASTER_KEY: 'ab'.repeat(32), WORKERS: '2' });
    assert.deepEqual(workerConfig(noAws), noAws);
    const one = loadConfig({ ...base, WORKERS: '1', KMS_MAX_SIGN_RATE: '300' });
    assert.deepEqual(workerConfig(one), one);
  });
});

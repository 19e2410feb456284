import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { APP_SETTING_RULES, loadConfig } from './app.config';
import { generateApiKey } from './auth/api-key-secret';
import { ConfigError } from './config/config';
import { listProfiles } from './pki/profiles';

describe('loadConfig (the application: config/ with the rules of auth/ and pki/)', () => {
  it('takes a bootstrap admin key only in the format auth/ makes keys in', () => {
    const { key } = generateApiKey();
    assert.equal(loadConfig({ DATA_DIR: '/d', FLEET_PKI_BOOTSTRAP_ADMIN_KEY: key }).auth.bootstrapAdminKey, key);
    for (const bad of ['admin-password', `fpk_0123456789AB.${'A'.repeat(43)}`, `fpk_0123456789ab.${'A'.repeat(42)}`]) {
      assert.throws(() => loadConfig({ DATA_DIR: '/d', FLEET_PKI_BOOTSTRAP_ADMIN_KEY: bad }), (err: unknown) => err instanceof ConfigError && err.variable === 'FLEET_PKI_BOOTSTRAP_ADMIN_KEY');
    }
  });

  it('lets the renewal switches name exactly the profiles pki/ says renew themselves', () => {
    const renewable = listProfiles().filter((profile) => profile.renewal).map((profile) => profile.name);
    assert.deepEqual(APP_SETTING_RULES.renewableProfiles, renewable);
    assert.ok(renewable.includes('device') && !renewable.includes('claim'));
    assert.deepEqual(loadConfig({ DATA_DIR: '/d', RENEWAL_SAME_KEY_PROFILES: renewable.join(',') }).renewal.sameKeyProfiles, renewable);
    assert.throws(() => loadConfig({ DATA_DIR: '/d', RENEWAL_AFTER_EXPIRY_DAYS: 'claim=30' }), /RENEWAL_AFTER_EXPIRY_DAYS/);
  });
});

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

  it('turns the pkcs11 backend on with PKCS11_MODULE, names the setting that is missing or wrong, and never holds the PIN as a value', () => {
    assert.equal(loadConfig({ DATA_DIR: '/d' }).pkcs11, undefined);
    const variable = (env: Record<string, string>) => {
      try {
        loadConfig({ DATA_DIR: '/d', ...env });
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.variable;
      }
      return 'accepted';
    };
    const module = '/etc/hostname'; // any existing file: loading it as a module happens at start, in keys/
    assert.equal(variable({ PKCS11_TOKEN_LABEL: 'ca' }), 'PKCS11_MODULE');
    assert.equal(variable({ PKCS11_MODULE: '/no/such/module.so', PKCS11_TOKEN_LABEL: 'ca', PKCS11_PIN: '123456' }), 'PKCS11_MODULE');
    assert.equal(variable({ PKCS11_MODULE: 'relative.so', PKCS11_TOKEN_LABEL: 'ca', PKCS11_PIN: '123456' }), 'PKCS11_MODULE');
    assert.equal(variable({ PKCS11_MODULE: module, PKCS11_PIN: '123456' }), 'PKCS11_TOKEN_LABEL');
    assert.equal(variable({ PKCS11_MODULE: module, PKCS11_TOKEN_LABEL: 'ca', PKCS11_SLOT: '1', PKCS11_PIN: '123456' }), 'PKCS11_TOKEN_LABEL');
    assert.equal(variable({ PKCS11_MODULE: module, PKCS11_SLOT: 'one', PKCS11_PIN: '123456' }), 'PKCS11_SLOT');
    assert.equal(variable({ PKCS11_MODULE: module, PKCS11_TOKEN_LABEL: 'ca' }), 'PKCS11_PIN');
    assert.equal(variable({ PKCS11_MODULE: module, PKCS11_TOKEN_LABEL: 'ca', PKCS11_PIN_FILE: '/no/such/pin' }), 'PKCS11_PIN_FILE');
    const config = loadConfig({ DATA_DIR: '/d', PKCS11_MODULE: module, PKCS11_TOKEN_LABEL: 'ca', PKCS11_PIN: 'pin-4711-secret', PKCS11_SESSIONS: '8' });
    assert.equal(config.pkcs11?.pin(), 'pin-4711-secret');
    assert.equal(config.pkcs11?.sessions, 8);
    assert.ok(!JSON.stringify(config).includes('pin-4711-secret'));
  });
});

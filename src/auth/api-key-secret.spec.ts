import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { API_KEY_PATTERN, apiKeyMatches, apiKeyPrefix, generateApiKey, hashApiKey } from './api-key-secret';

describe('generateApiKey', () => {
  it('makes keys that match API_KEY_PATTERN, with the prefix as the public part', () => {
    for (let i = 0; i < 200; i++) {
      const { key, prefix } = generateApiKey();
      const match = API_KEY_PATTERN.exec(key);
      assert.ok(match, `${key} matches the pattern`);
      assert.equal(match[1], prefix);
      assert.match(prefix, /^[0-9a-f]{12}$/);
      assert.ok(key.startsWith(`fpk_${prefix}.`));
    }
  });

  it('carries a 256-bit secret: 43 base64url characters that decode to 32 bytes', () => {
    const { key } = generateApiKey();
    const secret = key.split('.')[1];
    assert.equal(secret.length, 43);
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(secret, 'base64url').length, 32);
    assert.equal(Buffer.from(secret, 'base64url').toString('base64url'), secret, 'canonical encoding');
  });

  it('gives every key a different prefix and secret', () => {
    const keys = Array.from({ length: 500 }, () => generateApiKey());
    assert.equal(new Set(keys.map((k) => k.prefix)).size, keys.length);
    assert.equal(new Set(keys.map((k) => k.key.split('.')[1])).size, keys.length);
  });
});

describe('apiKeyPrefix', () => {
  it('returns the public prefix of a well-formed key', () => {
    const { key, prefix } = generateApiKey();
    assert.equal(apiKeyPrefix(key), prefix);
  });

  const malformed: [string, string][] = [
    ['an empty string', ''],
    ['a key without the fpk_ marker', `abc_0123456789ab.${'A'.repeat(43)}`],
    ['a key with an upper-case prefix', `fpk_0123456789AB.${'A'.repeat(43)}`],
    ['a key with a short prefix', `fpk_0123456789a.${'A'.repeat(43)}`],
    ['a key with a 42-character secret', `fpk_0123456789ab.${'A'.repeat(42)}`],
    ['a key with a 44-character secret', `fpk_0123456789ab.${'A'.repeat(44)}`],
    ['a key with standard base64 characters', `fpk_0123456789ab.${'A'.repeat(42)}+`],
    ['a key with trailing whitespace', `fpk_0123456789ab.${'A'.repeat(43)} `],
    ['a key with a trailing newline', `fpk_0123456789ab.${'A'.repeat(43)}\n`],
  ];
  for (const [name, key] of malformed) {
    it(`returns undefined for ${name}`, () => assert.equal(apiKeyPrefix(key), undefined));
  }
});

describe('hashApiKey', () => {
  it('is the lowercase hex SHA-256 of the whole key', () => {
    assert.equal(hashApiKey('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const { key } = generateApiKey();
    assert.equal(hashApiKey(key), createHash('sha256').update(key).digest('hex'));
    assert.match(hashApiKey(key), /^[0-9a-f]{64}$/);
  });
});

describe('apiKeyMatches', () => {
  const { key } = generateApiKey();
  const stored = hashApiKey(key);

  it('is true for the key that was stored', () => {
    assert.equal(apiKeyMatches(key, stored), true);
  });

  const others: [string, () => [string, string]][] = [
    ['another key', () => [generateApiKey().key, stored]],
    ['the same key with one character changed', () => [key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'), stored]],
    ['only the public prefix', () => [key.split('.')[0], stored]],
    ['an empty presented key', () => ['', stored]],
    ['an empty stored hash', () => [key, '']],
    ['a truncated stored hash', () => [key, stored.slice(0, 62)]],
    ['a stored hash that is not hex', () => [key, 'z'.repeat(64)]],
    ['the stored hash presented as the key', () => [stored, stored]],
  ];
  for (const [name, make] of others) {
    it(`is false for ${name}`, () => {
      const [presented, storedHash] = make();
      assert.equal(apiKeyMatches(presented, storedHash), false);
    });
  }
});

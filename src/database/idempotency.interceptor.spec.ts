import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestHash } from './idempotency.interceptor';

describe('requestHash (Idempotency-Key)', () => {
  const body = { authorityId: 'a', csr: 'PEM', metadata: { b: 1, a: [1, 2] } };

  it('is the same for the same JSON in another key order', () => {
    assert.equal(requestHash('POST', '/v1/certificates', body), requestHash('POST', '/v1/certificates', { metadata: { a: [1, 2], b: 1 }, csr: 'PEM', authorityId: 'a' }));
  });

  it('differs with the body, the URL (path or query) or the method', () => {
    const base = requestHash('POST', '/v1/certificates', body);
    assert.notEqual(requestHash('POST', '/v1/certificates', { ...body, csr: 'OTHER' }), base);
    assert.notEqual(requestHash('POST', '/v1/certificates?format=p12', body), base);
    assert.notEqual(requestHash('PUT', '/v1/certificates', body), base);
    assert.notEqual(requestHash('POST', '/v1/certificates', { ...body, metadata: { b: 1, a: [2, 1] } }), base, 'array order matters');
  });

  it('leaves password fields out (secrets never hashed into the database), at any depth', () => {
    assert.equal(requestHash('POST', '/v1/claims', { name: 'x', pkcs12Password: 'one' }), requestHash('POST', '/v1/claims', { name: 'x', pkcs12Password: 'two' }));
    assert.equal(requestHash('POST', '/v1/claims', { name: 'x', pkcs12Password: 'one' }), requestHash('POST', '/v1/claims', { name: 'x' }));
  });

  it('hashes text and binary bodies as their bytes', () => {
    assert.equal(requestHash('POST', '/e', 'MIIB'), requestHash('POST', '/e', Buffer.from('MIIB')));
    assert.notEqual(requestHash('POST', '/e', 'MIIB'), requestHash('POST', '/e', 'MIIC'));
  });
});

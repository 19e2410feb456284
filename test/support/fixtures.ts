import assert from 'node:assert/strict';
import { OpenSslWorkspace } from './openssl';
import { bearer, TestApp } from './test-app';

export interface CaPair {
  root: { id: string; certificatePem: string };
  intermediate: { id: string; certificatePem: string };
}

/** A root and an intermediate CA (both EC P-256) made through the API. */
export async function createCaPair(t: TestApp): Promise<CaPair> {
  const root = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
    name: 'Test Root',
    type: 'root',
    subject: { commonName: 'Test Root CA' },
  });
  assert.equal(root.status, 201, JSON.stringify(root.body));
  const intermediate = await t.http().post('/v1/authorities').set(bearer(t.adminKey)).send({
    name: 'Test Issuing',
    type: 'intermediate',
    parentId: root.body.id,
    subject: { commonName: 'Test Issuing CA' },
  });
  assert.equal(intermediate.status, 201, JSON.stringify(intermediate.body));
  return { root: root.body, intermediate: intermediate.body };
}

/** Issues a device certificate for a fresh openssl key. */
export async function issueDevice(t: TestApp, ssl: OpenSslWorkspace, authorityId: string, thingName: string): Promise<{ id: string; serial: string }> {
  const res = await t.http().post('/v1/certificates').set(bearer(t.adminKey)).send({
    authorityId,
    csr: ssl.newCsr('ec:P-256', `/CN=${thingName}`).csrPem,
    profile: 'device',
    thingName,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

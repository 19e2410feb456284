import assert from 'node:assert/strict';
import { createPrivateKey, KeyObject, randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { JwsAlgorithm } from '../../src/pki/jws';
import { pemDecode } from '../../tools/clients/pem';
import { signX5cJwt } from '../../tools/clients/station-jwt';
import { bearer, TestApp } from './test-app';
import { recordPrivateKey, recordSecret } from './log-capture';

/** A claim as a test station holds it: the claim certificate and its private key. */
export interface StationCredentials {
  claimId: string;
  certificatePem: string;
  privateKey: KeyObject;
  alg: JwsAlgorithm;
}

/** The exchange audience the app expects (PUBLIC_BASE_URL + path). */
export function exchangeAudience(t: TestApp): string {
  return `${t.config.publicBaseUrl}/v1/provisioning/exchange`;
}

/** A fresh single-use token for the exchange, signed with the claim key; `overrides` replace payload fields. */
export function stationToken(t: TestApp, station: StationCredentials, overrides: Record<string, unknown> = {}, signWith?: KeyObject): string {
  return stationTokenFor(exchangeAudience(t), station, overrides, signWith);
}

/** The same for a service that is not a TestApp (a process of its own): `audience` is its PUBLIC_BASE_URL + the exchange path. */
export function stationTokenFor(audience: string, station: StationCredentials, overrides: Record<string, unknown> = {}, signWith?: KeyObject): string {
  const now = Math.floor(Date.now() / 1000);
  return recorded(signX5cJwt({
    alg: station.alg,
    privateKey: signWith ?? station.privateKey,
    chainDer: [pemDecode(station.certificatePem, ['CERTIFICATE'])!],
    payload: { aud: audience, iat: now, exp: now + 120, jti: randomUUID(), sub: 'test-station-1', ...overrides },
  }));
}

/** Every token a test makes is a secret the log scan looks for (test/support/log-capture.ts). */
function recorded(jwt: string): string {
  recordSecret('jwt', jwt);
  return jwt;
}

/** Creates a claim with a generated key; returns the claim body and the station's credentials. */
export async function createClaim(
  t: TestApp,
  input: { claimAuthorityId: string; deviceAuthorityId: string } & Record<string, unknown>,
): Promise<{ claim: Response['body']; station: StationCredentials }> {
  const res = await t.http().post('/v1/claims').set(bearer(t.adminKey)).send({
    name: 'Test claim',
    factory: 'Test factory',
    maxDevices: 100,
    notAfter: new Date(Date.now() + 7 * 86_400_000).toISOString(),
    thingNameTemplate: 'acme-{serial}',
    claimCertificate: { generateKey: true },
    ...input,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return { claim: res.body, station: stationCredentials(res.body) };
}

/** The station's credentials from the answer to POST /v1/claims with a generated key (its key recorded for the log scan). */
export function stationCredentials(claim: { id: string; claimCertificate: { certificatePem: string; privateKeyPem: string } }): StationCredentials {
  recordPrivateKey(claim.claimCertificate.privateKeyPem);
  const key = createPrivateKey(claim.claimCertificate.privateKeyPem);
  const alg = key.asymmetricKeyType === 'rsa' ? 'RS256' : key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'ES384' : 'ES256';
  return { claimId: claim.id, certificatePem: claim.claimCertificate.certificatePem, privateKey: key, alg };
}

/** A fresh single-use token for POST /v1/certificates/renew, signed with the device key (ES256). */
export function deviceToken(t: TestApp, certificatePem: string, privateKey: KeyObject, overrides: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  return recorded(signX5cJwt({
    alg: 'ES256',
    privateKey,
    chainDer: [pemDecode(certificatePem, ['CERTIFICATE'])!],
    payload: { aud: `${t.config.publicBaseUrl}/v1/certificates/renew`, iat: now, exp: now + 120, jti: randomUUID(), ...overrides },
  }));
}

import { createHash, generateKeyPairSync, KeyObject, randomUUID, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { signX5cJwt } from '../../tools/clients/station-jwt';
import { Authority } from '../authorities/authority';
import { AuthoritiesService } from '../authorities/authorities.service';
import { Clock } from '../common/clock';
import { DomainError, Errors } from '../common/errors';
import { Pruner } from '../database/pruner';
import { MetricsService } from '../metrics/metrics.service';
import { signCertificate } from '../pki/certificate';
import { describeCertificate } from '../pki/issuance';
import { keyIdentifier } from '../pki/extensions';
import { certificateParts } from '../pki/certificate';
import { findProfile } from '../pki/profiles';
import { randomSerial } from '../pki/serial';
import { digestOf, SigningKey } from '../pki/signing';
import { CertificateRecord } from './certificate';
import { CertificateAuthenticator, CertificateAuthOptions } from './certificate-authenticator';
import { CertificateRepository } from './certificate.repository';
import { UsedTokenIds } from './used-token-ids.repository';

const URLS = { crl: 'https://pki.example.com/crl', caCertificate: 'https://pki.example.com/ca', ocsp: 'https://pki.example.com/ocsp' };

function signer(privateKey: KeyObject): SigningKey {
  return { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign(digestOf('ECDSA_SHA_256'), data, privateKey) };
}

/** A CA and a device certificate under it, as stored rows, and the device's private key. */
async function issued(): Promise<{ authority: Authority; certificate: CertificateRecord; deviceKey: KeyObject }> {
  const now = new Date();
  const caPair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caSpki = caPair.publicKey.export({ type: 'spki', format: 'der' });
  const ca = describeCertificate({ kind: 'root-ca', subject: { commonName: 'Spec CA' }, pathLength: null, validityDays: 30, subjectPublicKeyInfo: caSpki, now, backdateSeconds: 300 });
  const caDer = await signCertificate({ serial: randomSerial(), ...ca.tbs }, signer(caPair.privateKey));
  const devicePair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = describeCertificate({
    kind: 'end-entity',
    issuer: { name: certificateParts(caDer).subject, keyId: keyIdentifier(caSpki), notBefore: ca.tbs.notBefore, notAfter: ca.tbs.notAfter },
    urls: URLS,
    profile: findProfile('device'),
    names: { subject: { commonName: 'sensor-1' }, dnsNames: [], ipAddresses: [], thingName: 'sensor-1' },
    validityDays: 10,
    subjectPublicKeyInfo: devicePair.publicKey.export({ type: 'spki', format: 'der' }),
    now,
    backdateSeconds: 300,
  });
  const der = await signCertificate({ serial: randomSerial(), ...leaf.tbs }, signer(caPair.privateKey));
  const authority = { id: 'ca-1', usage: 'devices', certificateDer: caDer } as unknown as Authority;
  const certificate = {
    id: 'cert-1',
    authorityId: authority.id,
    fingerprint: createHash('sha256').update(der).digest('hex'),
    profile: 'device',
    status: 'active',
    notBefore: leaf.tbs.notBefore.toISOString(),
    notAfter: leaf.tbs.notAfter.toISOString(),
    certificateDer: der,
  } as unknown as CertificateRecord;
  return { authority, certificate, deviceKey: devicePair.privateKey };
}

/** The database behind the authenticator, counting its round trips. */
class Store {
  readonly used = new Set<string>();
  reads = 0;
  combined = 0;
  uses = 0;
  constructor(readonly certificate: CertificateRecord, public authority: Authority) {}
}

function authenticator(store: Store): CertificateAuthenticator {
  const find = (fingerprint: string) => (fingerprint === store.certificate.fingerprint ? { certificate: store.certificate, authority: store.authority } : null);
  const spend = (id: string) => {
    const fresh = !store.used.has(id);
    store.used.add(id);
    return fresh;
  };
  const certificates = {
    findByFingerprintWithAuthority: async (fingerprint: string) => (store.reads++, find(fingerprint)),
    findByFingerprintSpendingToken: async (fingerprint: string, token: { id: string }) => {
      store.combined++;
      const tokenFresh = spend(token.id);
      const found = find(fingerprint);
      return found ? { ...found, tokenFresh } : null;
    },
  } as unknown as CertificateRepository;
  const usedTokenIds = { use: async (id: string) => (store.uses++, spend(id)) } as unknown as UsedTokenIds;
  const metrics = { stationAuthFailures: { inc: () => undefined } } as unknown as MetricsService;
  const clock = { now: () => new Date() } as Clock;
  return new CertificateAuthenticator(certificates, {} as AuthoritiesService, usedTokenIds, clock, metrics, { register: () => undefined } as unknown as Pruner);
}

const AUDIENCE = 'https://pki.example.com/v1/devices/renew';

function request(token: string): FastifyRequest {
  return { headers: { authorization: `Bearer ${token}` }, method: 'POST', url: '/v1/devices/renew', ip: '127.0.0.1', id: 'req-1', raw: { socket: {} } } as unknown as FastifyRequest;
}

function tokenOf(key: KeyObject, certificate: CertificateRecord, payload: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  return signX5cJwt({ alg: 'ES256', privateKey: key, chainDer: [certificate.certificateDer], payload: { aud: AUDIENCE, iat: now, exp: now + 60, jti: randomUUID(), ...payload } });
}

const options = (accept: CertificateAuthOptions['accept'] = () => undefined): CertificateAuthOptions => ({
  audience: AUDIENCE,
  purpose: 'device',
  untrusted: Errors.claimCertificateUntrusted,
  accept,
});

async function refusal(work: Promise<unknown>): Promise<string> {
  try {
    await work;
  } catch (err) {
    if (err instanceof DomainError) return err.code;
    throw err;
  }
  assert.fail('expected a refusal');
}

describe('CertificateAuthenticator, tokens of a key known here', () => {
  it('reads the certificate and spends the token id in one round trip once the key signed here before', async () => {
    const { authority, certificate, deviceKey } = await issued();
    const store = new Store(certificate, authority);
    const auth = authenticator(store);
    const first = await auth.authenticate(request(tokenOf(deviceKey, certificate)), options());
    assert.equal(first.certificate.id, certificate.id);
    assert.deepEqual([store.reads, store.uses, store.combined], [1, 1, 0], 'the first time: the certificate, then the token id');
    const second = await auth.authenticate(request(tokenOf(deviceKey, certificate, { sub: 'line-2' })), options());
    assert.equal(second.name, 'line-2');
    assert.deepEqual([store.reads, store.uses, store.combined], [1, 1, 1], 'then both in one');
  });

  it('refuses a replay, and judges the row read fresh: a certificate or authority refused now is refused at once', async () => {
    const { authority, certificate, deviceKey } = await issued();
    const store = new Store(certificate, authority);
    const auth = authenticator(store);
    const token = tokenOf(deviceKey, certificate);
    await auth.authenticate(request(token), options());
    assert.equal(await refusal(auth.authenticate(request(token), options())), 'TOKEN_REPLAYED');
    const revoked = () => {
      throw Errors.claimRevoked('revoked meanwhile');
    };
    assert.equal(await refusal(auth.authenticate(request(tokenOf(deviceKey, certificate)), options(revoked))), 'CLAIM_REVOKED');
  });

  it('gives a token that fails its signature or claims the ordinary answer, and spends nothing for it', async () => {
    const { authority, certificate, deviceKey } = await issued();
    const store = new Store(certificate, authority);
    const auth = authenticator(store);
    await auth.authenticate(request(tokenOf(deviceKey, certificate)), options());
    const spent = store.used.size;
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    assert.equal(await refusal(auth.authenticate(request(tokenOf(otherKey, certificate)), options())), 'TOKEN_SIGNATURE_INVALID');
    assert.equal(await refusal(auth.authenticate(request(tokenOf(deviceKey, certificate, { aud: 'https://elsewhere.example/' })), options())), 'TOKEN_AUDIENCE_MISMATCH');
    assert.equal(store.used.size, spent, 'no token id spent');
    assert.equal(store.combined, 0);
  });
});

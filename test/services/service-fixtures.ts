import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { DomainError, ErrorKind } from '../../src/common/errors';
import { ParsedCsr } from '../../src/pki/csr';
import { checkPublicKey } from '../../src/pki/key-policy';
import { OpenSslWorkspace } from '../support/openssl';
import { ServiceContext } from './service-context';

/** Awaits `work` and asserts it failed with the domain error `kind` (its stable API code); returns the error. */
export async function rejectsWith(work: Promise<unknown>, kind: ErrorKind): Promise<DomainError> {
  const outcome = await work.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  assert.ok('error' in outcome, `expected ${kind.code}, but it succeeded`);
  const { error } = outcome;
  assert.ok(error instanceof DomainError, `expected ${kind.code}, got ${String(error)}`);
  assert.equal(error.code, kind.code, error.message);
  return error;
}

/** A root and, under it, an issuing CA of `usage` (EC P-256, local keys) made through AuthoritiesService. */
export async function createCaPair(
  s: ServiceContext,
  name: string,
  options: { usage?: 'devices' | 'claims'; issuingValidityDays?: number } = {},
): Promise<{ rootId: string; issuingId: string }> {
  const root = await s.authorities.create(s.admin, { name: `${name} Root`, type: 'root', keyBackend: 'local', subject: { commonName: `${name} Root CA` }, usage: options.usage });
  const issuing = await s.authorities.create(s.admin, {
    name: `${name} Issuing`,
    type: 'intermediate',
    parentId: root.id,
    keyBackend: 'local',
    subject: { commonName: `${name} Issuing CA` },
    usage: options.usage,
    validityDays: options.issuingValidityDays,
  });
  return { rootId: root.id, issuingId: issuing.id };
}

export function pemOf(der: Buffer): string {
  return new X509Certificate(der).toString();
}

/** `openssl verify -x509_strict` of a certificate against the chain of the authority that issued it (and CRLs, when given). */
export async function opensslVerify(
  s: ServiceContext,
  ssl: OpenSslWorkspace,
  certificate: { authorityId: string; certificateDer: Buffer },
  crlsDer?: Buffer[],
): Promise<{ ok: boolean; output: string }> {
  const chain = (await s.authorities.chainPemById(certificate.authorityId)).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g)!;
  const rootPem = chain[chain.length - 1];
  const intermediatesPem = chain.slice(0, -1).join('');
  return ssl.verify({ rootPem, intermediatesPem: intermediatesPem || undefined, leafPem: pemOf(certificate.certificateDer), crlsDer });
}

export async function assertOpensslVerifies(s: ServiceContext, ssl: OpenSslWorkspace, certificate: { authorityId: string; certificateDer: Buffer }): Promise<void> {
  const verified = await opensslVerify(s, ssl, certificate);
  assert.ok(verified.ok, verified.output);
}

/** The audit events of `action` on `targetId`, oldest first. */
export async function auditEvents(s: ServiceContext, action: string, targetId: string): Promise<{ actorType: string; actorId: string | null; details: Record<string, unknown> }[]> {
  return (await s.audit.list({ action, targetId, limit: 50 })).items;
}

/** The audit chain recomputes from the first event to the head. */
export async function assertAuditChainVerifies(s: ServiceContext): Promise<void> {
  const result = await s.audit.verify();
  assert.deepEqual(result.firstBrokenSeq, null);
  assert.ok(result.ok && result.checked > 0, JSON.stringify(result));
}

/** A request for a key the service got without a CSR (as a claim's generated key): IssueOptions.parsedCsr. */
export function requestForKey(spki: Buffer): ParsedCsr {
  return { subject: {}, publicKeySpki: spki, publicKey: checkPublicKey(spki), dnsNames: [], ipAddresses: [], otherNames: 0 };
}

export const DAY_MS = 86_400_000;

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import { generateApiKey } from '../../src/auth/api-key-secret';
import { Transactions } from '../../src/database/transactions';
import { OutboxRepository } from '../../src/jobs/outbox.repository';
import { OutboxService } from '../../src/jobs/outbox.service';
import { DEFAULT_POLICY_TEMPLATE } from '../../src/iot/policy-lint';
import { OCSP_ROUTES } from '../../src/revocation/ocsp-http';
import { buildCsr } from '../../tools/csr-builder';
import { IotStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { bearer, startTestApp, TestApp } from '../support/test-app';

/** A new self-signed CA certificate (a TPM manufacturer root for the allow-list routes), made by openssl. */
function freshCaPem(): string {
  return execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', `/CN=matrix TPM vendor ${randomUUID()}`, '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

/**
 * The role matrix (src/common/roles.ts), route by route: every registered route is called with no key, a
 * malformed key, a well-formed unknown key, a revoked key, and a key of each role. Public routes answer
 * everyone; protected ones answer 401 (unauthenticated), 403 (role lacks the permission) or the handler's
 * own status. 403s are audited as auth.denied; 401s never touch the audit chain.
 */

type Role = 'admin' | 'operator' | 'auditor' | 'aws-integration';
const EVENTS_SECRET = 'matrix-events-secret-0123456789abcdef0123456789';
type Identity = 'no key' | 'malformed key' | 'unknown key' | 'revoked key' | Role;
const UNAUTHENTICATED: Identity[] = ['no key', 'malformed key', 'unknown key', 'revoked key'];
const ROLES: Role[] = ['admin', 'operator', 'auditor', 'aws-integration'];
const IDENTITIES: Identity[] = [...UNAUTHENTICATED, ...ROLES];

/** Ids made in `before`. */
interface Fixtures {
  /** A root CA (no path length limit). */
  root: string;
  /** An active intermediate CA under it. */
  authority: string;
  /** An active device certificate under it. */
  certificate: string;
  /** An intermediate under an external root, pending, and the certificate and chain an openssl root made for it. */
  pendingAuthority: string;
  pendingUpload: { certificatePem: string; chainPem: string };
  /** A P-256 CSR made by openssl, issued as often as the matrix asks. */
  csrPem: string;
  /** An intermediate registered with the AWS IoT stand-in. */
  iotAuthority: string;
  /** An intermediate with usage "claims". */
  claimAuthority: string;
  /** An active factory claim. */
  claim: string;
  /** Another claim's certificate SHA-256 fingerprint (= AWS IoT certificate id: the certificate provider's principalId). */
  claimFingerprint: string;
  /** An open rotation campaign. */
  rotation: string;
  /** A finished fleet audit. */
  audit: string;
}

/**
 * What fills `:id`: an existing resource, or (`fresh-*`) a new one made with the admin key just before each
 * call, so that a state change (disable, revoke) meets the same state whichever identity calls first.
 */
type IdSource = 'fresh-est-label' | 'fresh-tpm-root' | 'authority' | 'pending-authority' | 'certificate' | 'claim' | 'fresh-claim' | 'rotation' | 'fresh-rotation' | 'policy' | 'audit' | 'fresh-finding' | 'fresh-intermediate' | 'fresh-authority' | 'fresh-certificate' | 'fresh-api-key' | 'iot-registered-authority' | 'fresh-iot-registered-authority' | 'fresh-dead-job' | 'iot-target' | 'fresh-iot-target' | 'fresh-offline-root' | 'manifest-import';

type Expectation =
  /** Anyone, with or without a key, gets this status. */
  | { public: number }
  /**
   * The status for each role's key (403 = the role lacks the permission); every other caller gets 401. The
   * aws-integration role (the AWS Lambdas' key) is refused everywhere (403) but where its row says otherwise.
   */
  | { admin: number; operator: number; auditor: number; 'aws-integration'?: number };

type MatrixRoute = {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Exactly as registered (Fastify syntax). */
  path: string;
  id?: IdSource;
  body?: (f: Fixtures) => object | string;
  /** Extra headers every caller sends (e.g. the IoT events shared secret, which is not an API key). */
  headers?: Record<string, string>;
  /** The URL to call when the registered path is a wildcard. */
  url?: string;
  /** Problem codes a public route's 401 may carry (it authenticates by other means than API keys). */
  problems?: string[];
} & Expectation;

/** A manifest upload names its manifest signer certificate (the committed test fixture) in a header. */
const MANIFEST_HEADERS = {
  'Content-Type': 'application/json',
  'X-Manifest-Signer-Certificate': fs.readFileSync(require.resolve('../../../test/fixtures/secure-elements/manifest-signer.pem'), 'utf8').replace(/-----[A-Z ]+-----|\s/g, ''),
};
let manifestUploads = 0;

/** EST bodies are base64 DER PKCS#10; problems come back as problem+json when asked for. */
const EST_HEADERS = { 'Content-Type': 'application/pkcs10', Accept: 'application/problem+json' };

/** Distinct device serials for the certificate provider row (each call provisions one device on the fixture claim). */
let awsSerial = 0;

const ROUTES: MatrixRoute[] = [
  // health and metrics
  { method: 'GET',    path: '/healthz',                       public: 200 },
  { method: 'GET',    path: '/readyz',                        public: 200 },
  { method: 'GET',    path: '/metrics',                       public: 200 },
  // authorities
  { method: 'POST',   path: '/v1/authorities',                body: () => ({ name: 'Matrix Root', type: 'root', subject: { commonName: 'Matrix Root CA' } }),
                                                              admin: 201, operator: 403, auditor: 403 },
  { method: 'GET',    path: '/v1/authorities',                admin: 200, operator: 200, auditor: 200 },
  { method: 'GET',    path: '/v1/authorities/:id',            id: 'authority',
                                                              admin: 200, operator: 200, auditor: 200 },
  { method: 'POST',   path: '/v1/authorities/:id/disable',    id: 'fresh-authority',
                                                              admin: 200, operator: 403, auditor: 403 },
  { method: 'POST',   path: '/v1/authorities/:id/signing-window', id: 'fresh-offline-root', body: () => ({ minutes: 5, reason: 'role matrix' }),
                                                              admin: 200, operator: 403, auditor: 403 },
  { method: 'POST',   path: '/v1/authorities/:id/signing-window/close', id: 'fresh-offline-root',
                                                              admin: 200, operator: 403, auditor: 403 },
  { method: 'GET',    path: '/v1/authorities/:id/certificate', id: 'authority', public: 200 },
  { method: 'GET',    path: '/v1/authorities/:id/crl',        id: 'authority', public: 200 },
  { method: 'POST',   path: '/v1/authorities/:id/certificate', id: 'pending-authority', body: (f) => f.pendingUpload,
                                                              admin: 200, operator: 403, auditor: 403 },
  // OCSP (RFC 6960): a malformed request still gets HTTP 200 with an OCSP malformedRequest answer
  { method: 'POST',   path: '/ocsp',                          headers: { 'Content-Type': 'application/ocsp-request' }, public: 200 },
  { method: 'GET',    path: '/ocsp*',                         url: '/ocsp/MAA=', public: 200 },
  // certificates
  { method: 'POST',   path: '/v1/certificates',               body: (f) => ({ authorityId: f.authority, csr: f.csrPem, profile: 'device', thingName: 'matrix-thing' }),
                                                              admin: 201, operator: 201, auditor: 403 },
  { method: 'GET',    path: '/v1/certificates',               admin: 200, operator: 200, auditor: 200 },
  { method: 'GET',    path: '/v1/certificates/:id',           id: 'certificate',
                                                              admin: 200, operator: 200, auditor: 200 },
  { method: 'POST',   path: '/v1/certificates/:id/revoke',    id: 'fresh-certificate', body: () => ({ reason: 'superseded' }),
                                                              admin: 200, operator: 200, auditor: 403 },
  // AWS IoT registration of an authority (against the IoT stand-in)
  { method: 'POST',   path: '/v1/authorities/:id/iot-registration', id: 'fresh-authority', body: () => ({ certificateMode: 'SNI_ONLY' }),
                                                              admin: 201, operator: 403, auditor: 403 },
  { method: 'GET',    path: '/v1/authorities/:id/iot-registration', id: 'iot-registered-authority',
                                                              admin: 200, operator: 200, auditor: 200 },
  { method: 'DELETE', path: '/v1/authorities/:id/iot-registration', id: 'fresh-iot-registered-authority',
                                                              admin: 200, operator: 403, auditor: 403 },
  // IoT targets (AWS accounts and regions; docs/iot-targets.md): admins manage them, every role reads them
  { method: 'POST',   path: '/v1/iot/targets',                body: () => ({ id: `matrix-${Math.random().toString(36).slice(2, 10)}`, accountId: freshAccountId(), region: 'eu-west-1' }),
                                                              admin: 201, operator: 403, auditor: 403 },
  { method: 'GET',    path: '/v1/iot/targets',                admin: 200, operator: 200, auditor: 200 },
  { method: 'GET',    path: '/v1/iot/targets/:targetId',      id: 'iot-target',
                                                              admin: 200, operator: 200, auditor: 200 },
  { method: 'DELETE', path: '/v1/iot/targets/:targetId',      id: 'fresh-iot-target',
                                                              admin: 204, operator: 403, auditor: 403 },
  // moving a certificate to the target it is in already: a no-op for admins
  { method: 'POST',   path: '/v1/certificates/:id/iot-target', id: 'fresh-certificate', body: () => ({ targetId: 'default' }),
                                                              admin: 200, operator: 403, auditor: 403 },
  // AWS IoT topic rule target: authenticated by its shared secret, whatever API key comes along
  { method: 'POST',   path: '/v1/iot/events',                 headers: { 'X-Fleet-Pki-Events-Secret': EVENTS_SECRET },
                                                              body: () => ({ certificateId: 'a'.repeat(64), caCertificateId: 'b'.repeat(64), certificateStatus: 'PENDING_ACTIVATION' }), public: 200 },
  // factory claims
  { method: 'POST',   path: '/v1/claims',                     body: (f) => claimBody(f),
                                                              admin: 201, operator: 403, auditor: 403 },
  { method: 'GET',    path: '/v1/claims',                     admin: 200, operator: 200, auditor: 200 },
  { method: 'GET',    path: '/v1/claims/:id',                 id: 'claim',
                                                              admin: 200, operator: 200, auditor: 200 },
  { method: 'PUT',    path: '/v1/claims/:id/allowlist',       id: 'claim', body: () => ['SN0001', 'SN0002'],
                                                              admin: 200, operator: 403, auditor: 403 },
  { method: 'POST',   path: '/v1/claims/:id/revoke',          id: 'fresh-claim', body: () => ({ reason: 'cessationOfOperation' }),
                                                              admin: 200, operator: 403, auditor: 403 },
  // factory stations: authenticated by a claim certificate, so an API key (or nothing) is a 401 whatever its role
  { method: 'POST',   path: '/v1/provisioning/exchange',      body: (f) => ({ deviceSerial: 'SN0001', csr: f.csrPem }),
                                                              public: 401, problems: ['UNAUTHENTICATED', 'TOKEN_INVALID'] },
  // the AWS IoT Lambdas (docs/aws-fleet-provisioning.md): the provider route is the aws-integration role's alone (an
  // admin key must not issue as a claim without its claim certificate); admins may read a status
  { method: 'POST',   path: '/v1/provisioning/aws-certificate-provider',
                                                              body: (f) => ({ certificateSigningRequest: buildCsr({ commonName: `AWSMATRIX${++awsSerial}` }), principalId: f.claimFingerprint, clientId: 'matrix-client' }),
                                                              admin: 403, operator: 403, auditor: 403, 'aws-integration': 201 },
  { method: 'POST',   path: '/v1/provisioning/aws-certificate-status', body: (f) => ({ certificateId: f.claimFingerprint }),
                                                              admin: 200, operator: 403, auditor: 403, 'aws-integration': 200 },
  // TPM-attested enrollment (docs/hardware-identity.md): by a claim certificate, like the exchange
  { method: 'POST',   path: '/v1/provisioning/attestations',  body: (f) => ({ deviceSerial: 'SN0001', csr: f.csrPem }),
                                                              public: 401, problems: ['UNAUTHENTICATED', 'TOKEN_INVALID'] },
  { method: 'POST',   path: '/v1/provisioning/attestations/:challengeId/activation', url: `/v1/provisioning/attestations/${randomUUID()}/activation`, body: () => ({ secret: 'AAAA' }),
                                                              public: 401, problems: ['UNAUTHENTICATED', 'TOKEN_INVALID'] },
  // TPM manufacturer roots: admins manage the allow-list, every role reads it
  { method: 'POST',   path: '/v1/tpm/manufacturer-roots',     body: () => ({ name: 'matrix vendor', certificatePem: freshCaPem() }),
                                                              admin: 201, operator: 403, auditor: 403 },
  { method: 'GET',    path: '/v1/tpm/manufacturer-roots',     admin: 200, operator: 200, auditor: 200 },
  { method: 'DELETE', path: '/v1/tpm/manufacturer-roots/:id', id: 'fresh-tpm-root',
                                                              admin: 200, operator: 403, auditor: 403 },
  // devices renew by their own certificate, so an API key (or nothing) is a 401 whatever its role
  { method: 'POST',   path: '/v1/certificates/renew',         body: (f) => ({ csr: f.csrPem }),
                                                              public: 401, problems: ['UNAUTHENTICATED', 'TOKEN_INVALID'] },
  // EST (RFC 7030): the label named default is an authority label (fixture), so enrollment takes an API key of a role
  // that may issue; cacerts and csrattrs are public; re-enrollment is by the device certificate alone. Problems are
  // asked for as problem+json (EST answers text/plain unless Accept names problem+json).
  { method: 'GET',    path: '/.well-known/est/cacerts',       public: 200 },
  { method: 'GET',    path: '/.well-known/est/:label/cacerts', url: '/.well-known/est/default/cacerts', public: 200 },
  { method: 'GET',    path: '/.well-known/est/csrattrs',      public: 200 },
  { method: 'GET',    path: '/.well-known/est/:label/csrattrs', url: '/.well-known/est/default/csrattrs', public: 200 },
  { method: 'POST',   path: '/.well-known/est/simpleenroll',  headers: EST_HEADERS, body: (f) => estBody(f.csrPem),
                                                              admin: 200, operator: 200, auditor: 403 },
  { method: 'POST',   path: '/.well-known/est/:label/simpleenroll', url: '/.well-known/est/default/simpleenroll', headers: EST_HEADERS, body: (f) => estBody(f.csrPem),
                                                              admin: 200, operator: 200, auditor: 403 },
  { method: 'POST',   path: '/.well-known/est/serverkeygen',  headers: EST_HEADERS, body: (f) => estBody(f.csrPem),
                                                              admin: 200, operator: 200, auditor: 403 },
  { method: 'POST',   path: '/.well-known/est/:label/serverkeygen', url: '/.well-known/est/default/serverkeygen', headers: EST_HEADERS, body: (f) => estBody(f.csrPem),
                                                              admin: 200, operator: 200, auditor: 403 },
  { method: 'POST',   path: '/.well-known/est/simplereenroll', headers: EST_HEADERS, body: (f) => estBody(f.csrPem),
                                                              public: 401, problems: ['UNAUTHENTICATED', 'TOKEN_INVALID'] },
  { method: 'POST',   path: '/.well-known/est/:label/simplereenroll', url: '/.well-known/est/default/simplereenroll', headers: EST_HEADERS, body: (f) => estBody(f.csrPem),
                                                              public: 401, problems: ['UNAUTHENTICATED', 'TOKEN_INVALID'] },
  { method: 'POST',   path: '/v1/est/labels',                 body: (f) => ({ label: `matrix-${Math.random().toString(36).slice(2, 10)}`, kind: 'authority', authorityId: f.authority, profile: 'device' }),
                                                              admin: 201, operator: 403, auditor: 403 },
  { method: 'GET',    path: '/v1/est/labels',                 admin: 200, operator: 200, auditor: 200 },
  { method: 'DELETE', path: '/v1/est/labels/:label',          id: 'fresh-est-label',
                                                              admin: 200, operator: 403, auditor: 403 },
  // rotation campaigns
  { method: 'POST',   path: '/v1/rotations',                  body: (f) => rotationBody(f),
                                                              admin: 201, operator: 201, auditor: 403 },
  { method: 'GET',    path: '/v1/rotations',                  admin: 200, operator: 200, auditor: 200 },
  { method: 'GET',    path: '/v1/rotations/:id',              id: 'rotation',
                                                              admin: 200, operator: 200, auditor: 200 },
  { method: 'GET',    path: '/v1/rotations/:id/pending',      id: 'rotation',
                                                              admin: 200, operator: 200, auditor: 200 },
  { method: 'POST',   path: '/v1/rotations/:id/cancel',       id: 'fresh-rotation',
                                                              admin: 200, operator: 200, auditor: 403 },
  { method: 'POST',   path: '/v1/authorities/:id/rotate',     id: 'fresh-intermediate', body: () => ({}),
                                                              admin: 201, operator: 403, auditor: 403 },
  // managed AWS IoT policies and fleet audits
  { method: 'POST',   path: '/v1/iot/policies',               body: () => ({ name: 'matrix-policy', document: DEFAULT_POLICY_TEMPLATE.document }),
                                                              admin: 201, operator: 201, auditor: 403 },
  { method: 'GET',    path: '/v1/iot/policies',               admin: 200, operator: 200, auditor: 200 },
  { method: 'GET',    path: '/v1/iot/policies/:name',         id: 'policy',
                                                              admin: 200, operator: 200, auditor: 200 },
  { method: 'POST',   path: '/v1/fleet/audits',               body: () => ({ policySample: 0 }),
                                                              admin: 202, operator: 202, auditor: 403 },
  { method: 'GET',    path: '/v1/fleet/audits',               admin: 200, operator: 200, auditor: 200 },
  { method: 'GET',    path: '/v1/fleet/audits/:id',           id: 'audit',
                                                              admin: 200, operator: 200, auditor: 200 },
  { method: 'POST',   path: '/v1/fleet/audits/:id/findings/:findingId/remediate', id: 'fresh-finding',
                                                              admin: 200, operator: 200, auditor: 403 },
  // secure-element manifests (each upload differs by leading whitespace, so each is a new import: 202)
  { method: 'POST',   path: '/v1/manifests',                  url: '/v1/manifests?registration=none', headers: MANIFEST_HEADERS, body: () => `${' '.repeat(manifestUploads++)}[]`,
                                                              admin: 202, operator: 202, auditor: 403 },
  { method: 'GET',    path: '/v1/manifests',                  admin: 200, operator: 200, auditor: 200 },
  { method: 'GET',    path: '/v1/manifests/:id',              id: 'manifest-import',
                                                              admin: 200, operator: 200, auditor: 200 },
  // dead outbox jobs
  { method: 'GET',    path: '/v1/jobs',                       url: '/v1/jobs?state=dead', admin: 200, operator: 200, auditor: 200 },
  { method: 'POST',   path: '/v1/jobs/:id/retry',             id: 'fresh-dead-job',
                                                              admin: 200, operator: 200, auditor: 403 },
  // audit
  { method: 'GET',    path: '/v1/audit',                      admin: 200, operator: 403, auditor: 200 },
  { method: 'GET',    path: '/v1/audit/verify',               admin: 200, operator: 403, auditor: 200 },
  // API keys
  { method: 'POST',   path: '/v1/api-keys',                   body: () => ({ name: 'matrix key', role: 'auditor' }),
                                                              admin: 201, operator: 403, auditor: 403 },
  { method: 'GET',    path: '/v1/api-keys',                   admin: 200, operator: 403, auditor: 403 },
  { method: 'GET',    path: '/v1/me',                         admin: 200, operator: 200, auditor: 200, 'aws-integration': 200 },
  { method: 'DELETE', path: '/v1/api-keys/:id',               id: 'fresh-api-key',
                                                              admin: 200, operator: 403, auditor: 403 },
  // setup self-check
  { method: 'GET',    path: '/v1/setup/check',                admin: 200, operator: 403, auditor: 403 },
];

function estBody(csrPem: string): string {
  return csrPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
}

function claimBody(f: Fixtures): object {
  return {
    name: 'Matrix claim',
    factory: 'Matrix factory',
    claimAuthorityId: f.claimAuthority,
    deviceAuthorityId: f.authority,
    maxDevices: 10,
    notAfter: new Date(Date.now() + 86_400_000).toISOString(),
    thingNameTemplate: 'matrix-{serial}',
    claimCertificate: { generateKey: true },
  };
}

function rotationBody(f: Fixtures): object {
  return { selector: { authorityId: f.authority }, reason: 'matrix', deadline: new Date(Date.now() + 86_400_000).toISOString(), onDeadline: 'report' };
}

/** The route with its parameters filled: `:id` (or `:name`), and `:findingId` from an "auditId|findingId" pair. */
function fillPath(path: string, id: string): string {
  const [first, second] = id.split('|');
  return path.replace(/:id|:name|:label|:targetId/, first).replace(':findingId', second ?? '');
}

/** What each identity expects on a route. */
function expectedStatus(route: MatrixRoute, identity: Identity): number {
  if ('public' in route) return route.public;
  if (UNAUTHENTICATED.includes(identity)) return 401;
  if (identity === 'aws-integration') return route['aws-integration'] ?? 403;
  return route[identity as Exclude<Role, 'aws-integration'>];
}

/**
 * Every route the app serves, as "METHOD /path" (Fastify syntax): those read from Fastify's route tree, and the
 * OCSP responder's, served ahead of Fastify. HEAD twins of GET routes (exposeHeadRoutes), the Swagger UI under
 * /docs and the ops console's static files under /console (no data: the page calls the API with the user's key;
 * test/e2e/console.e2e.ts) are left out.
 */
function registeredRoutes(t: TestApp): string[] {
  const tree = t.app.getHttpAdapter().getInstance().printRoutes({ commonPrefix: false });
  const prefixes: string[] = [];
  const routes = new Set<string>(OCSP_ROUTES);
  for (const line of tree.split('\n')) {
    if (line.trim() === '') continue;
    const match = /^((?:│ {3}| {4})*)[├└]── (.+?)(?: \(([A-Z]+(?:, [A-Z]+)*)\))?$/.exec(line);
    assert.ok(match, `unexpected line in Fastify's route tree: ${JSON.stringify(line)}`);
    const depth = match[1].length / 4;
    prefixes.length = depth;
    prefixes.push(match[2]);
    for (const method of match[3]?.split(', ') ?? []) routes.add(`${method} ${prefixes.join('')}`);
  }
  return [...routes]
    .filter((route) => !(route.startsWith('HEAD ') && routes.has(`GET ${route.slice('HEAD '.length)}`)))
    .filter((route) => !/^[A-Z]+ \/(docs|console)(\/|\*|$)/.test(route))
    .sort();
}

describe('role matrix on sqlite', () => {
  let t: TestApp;
  const ssl = new OpenSslWorkspace();
  const f: Fixtures = { root: '', authority: '', certificate: '', csrPem: '', iotAuthority: '', claimAuthority: '', claim: '', claimFingerprint: '', rotation: '', audit: '', pendingAuthority: '', pendingUpload: { certificatePem: '', chainPem: '' } };
  const keys = {} as Record<Role | 'revoked', { id: string; key: string }>;
  const unknownKey = generateApiKey().key;
  let requestSeq = 0;
  let iot: IotStandIn;
  /** Every 403 the matrix received, to find its auth.denied event. */
  const denied: { requestId: string; route: string; role: Role }[] = [];
  /** Every 401 the matrix received, which must have left no audit event. */
  const unauthenticated: string[] = [];

  before(async () => {
    iot = await new IotStandIn().start();
    t = await startTestApp('sqlite', { iot, env: { IOT_EVENTS_SECRET: EVENTS_SECRET } });
    for (const role of ROLES) keys[role] = role === 'admin' ? { id: '', key: t.adminKey } : await createKey(role);
    keys.revoked = await createKey('admin');
    const revoked = await t.http().delete(`/v1/api-keys/${keys.revoked.id}`).set(bearer(t.adminKey));
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    const bootstrapAdmin = ((await admin('GET', '/v1/api-keys')).items as { id: string; name: string }[]).find((k) => k.name === 'bootstrap admin');
    assert.ok(bootstrapAdmin);
    keys.admin.id = bootstrapAdmin.id;
    f.root = (await admin('POST', '/v1/authorities', { name: 'Matrix Fixture Root', type: 'root', subject: { commonName: 'Matrix Fixture Root' } })).id;
    f.authority = (await admin('POST', '/v1/authorities', { name: 'Matrix Fixture Issuing', type: 'intermediate', parentId: f.root, subject: { commonName: 'Matrix Fixture Issuing' } })).id;
    f.csrPem = ssl.newCsr('ec:P-256', '/CN=matrix-thing').csrPem;
    const pending = await admin('POST', '/v1/authorities', { name: 'Matrix External', type: 'intermediate', parent: 'external', subject: { commonName: 'Matrix External CA' } });
    f.pendingAuthority = pending.id;
    f.pendingUpload = signedByOfflineRoot(ssl, pending.csrPem as string);
    f.certificate = (await admin('POST', '/v1/certificates', { authorityId: f.authority, csr: f.csrPem, profile: 'device', thingName: 'matrix-fixture' })).id;
    f.iotAuthority = await resolveId('fresh-iot-registered-authority');
    f.claimAuthority = (await admin('POST', '/v1/authorities', { name: 'Matrix Claims', type: 'intermediate', parentId: f.root, usage: 'claims', subject: { commonName: 'Matrix Claims CA' } })).id;
    f.claim = await resolveId('fresh-claim');
    // A claim of its own (the matrix uploads an allow-list to f.claim).
    const claimCertificateId = (await admin('GET', `/v1/claims/${await resolveId('fresh-claim')}`)).claimCertificateId as string;
    f.claimFingerprint = (await admin('GET', `/v1/certificates/${claimCertificateId}`)).fingerprint as string;
    f.rotation = await resolveId('fresh-rotation');
    // A certificate expiring within the audit window gives every fresh audit a remediable finding.
    await admin('POST', '/v1/certificates', { authorityId: f.authority, csr: f.csrPem, profile: 'device', thingName: 'matrix-expiring', validityDays: 10 });
    f.audit = (await finishedAudit()).id;
    await admin('POST', '/v1/est/labels', { label: 'default', kind: 'authority', authorityId: f.authority, profile: 'device', serverKeygen: true });
  });
  after(async () => {
    await t?.close();
    await iot?.stop();
    ssl.cleanup();
  });

  it('has exactly one matrix entry for every route the app registers (a new route needs a row here)', () => {
    const table = ROUTES.map((route) => `${route.method} ${route.path}`).sort();
    assert.equal(new Set(table).size, table.length, 'no route is listed twice');
    const registered = registeredRoutes(t);
    assert.deepEqual(table, registered);
    assert.equal(ROUTES.length, registered.length);
  });

  for (const route of ROUTES) {
    describe(`${route.method} ${route.path}`, () => {
      for (const identity of IDENTITIES) {
        const status = expectedStatus(route, identity);
        it(`answers ${identity} with ${status}`, async () => {
          const id = route.id ? await resolveId(route.id) : undefined;
          const path = id ? fillPath(route.path, id) : route.url ?? route.path;
          const requestId = `role-matrix-${++requestSeq}`;
          const res = await call(route.method, path, identity, route.body?.(f), requestId, route.headers);
          assert.equal(res.status, status, `${identity} → ${route.method} ${path}: ${(res.text ?? '').slice(0, 500)}`);
          if (status === 401 && route.problems) {
            assertProblem(res, route.problems);
          } else if (status === 401) {
            assertProblem(res, 'UNAUTHENTICATED');
            assert.equal(res.headers['www-authenticate'], 'Bearer');
            unauthenticated.push(requestId);
          } else if (status === 403) {
            assertProblem(res, 'FORBIDDEN');
            assert.equal(res.headers['www-authenticate'], undefined);
            denied.push({ requestId, route: `${route.method} ${route.path}`, role: identity as Role });
          } else {
            assert.ok(res.status < 400, `the handler ran and succeeded: ${(res.text ?? '').slice(0, 500)}`);
          }
          if ((status === 401 || status === 403) && route.id?.startsWith('fresh-')) await assertUntouched(route.id as IdSource, id!);
        });
      }
    });
  }

  it('writes one auth.denied audit event per 403, naming the route, role, key and request', async () => {
    assert.ok(denied.length >= 10, `the matrix produced ${denied.length} 403s`);
    const events = await auditEvents({ action: 'auth.denied' });
    assert.equal(events.length, denied.length, 'exactly one auth.denied event per 403');
    for (const d of denied) {
      const event = events.find((e) => e.requestId === d.requestId);
      assert.ok(event, `auth.denied event for ${d.role} on ${d.route}`);
      assert.deepEqual(event.actor, { type: 'api-key', id: keys[d.role].id, role: d.role });
      assert.equal(event.details.route, d.route);
      assert.equal(event.details.role, d.role);
      assert.notEqual(event.details.permission, 'undeclared', `${d.route} declares a permission`);
    }
  });

  it('writes no audit event for any 401 of the matrix', async () => {
    assert.equal(unauthenticated.length, ROUTES.filter((r) => !('public' in r)).length * UNAUTHENTICATED.length);
    const requestIds = new Set((await auditEvents({})).map((e) => e.requestId));
    for (const requestId of unauthenticated) assert.ok(!requestIds.has(requestId), `no audit event for 401 request ${requestId}`);
  });

  it('leaves the audit chain unchanged through a burst of 401s on every protected route', async () => {
    const [adminPrefix] = t.adminKey.split('.');
    const badHeaders = [
      undefined,
      'Bearer',
      'Bearer not-an-api-key',
      `Basic ${Buffer.from('admin:admin').toString('base64')}`,
      `Bearer ${t.adminKey} ${t.adminKey}`,
      `Bearer ${t.adminKey.slice(0, -1)}`,
      `Bearer ${unknownKey}`,
      `Bearer ${adminPrefix}.${generateApiKey().key.split('.')[1]}`, // a real key's prefix with another secret
      `Bearer ${keys.revoked.key}`,
    ];
    const before = await chainLength();
    let count = 0;
    for (const route of ROUTES.filter((r) => !('public' in r))) {
      const existing: Partial<Record<IdSource, string>> = { policy: 'fleet-default', audit: f.audit, 'fresh-finding': `${f.audit}|${f.audit}` };
      const path = fillPath(route.path, (route.id && existing[route.id]) ?? (route.id?.includes('certificate') ? f.certificate : route.id?.includes('claim') ? f.claim : route.id?.includes('rotation') ? f.rotation : f.authority));
      for (const header of badHeaders) {
        let req = t.http()[lower(route.method)](route.url ?? path).set(route.headers ?? {});
        if (header !== undefined) req = req.set('Authorization', header);
        const res = await (route.body ? req.send(route.body(f)) : req);
        assert.equal(res.status, 401, `${header} → ${route.method} ${path}: ${res.text.slice(0, 300)}`);
        assertProblem(res, 'UNAUTHENTICATED');
        assert.equal(res.headers['www-authenticate'], 'Bearer');
        count++;
      }
    }
    assert.ok(count > 100);
    assert.equal(await chainLength(), before, `${count} 401s wrote no audit event`);
  });

  it('keeps a verifiable audit chain after the whole matrix', async () => {
    const verify = await t.http().get('/v1/audit/verify').set(bearer(t.adminKey));
    assert.equal(verify.status, 200);
    assert.deepEqual({ ok: verify.body.ok, firstBrokenSeq: verify.body.firstBrokenSeq }, { ok: true, firstBrokenSeq: null });
  });

  function lower(method: MatrixRoute['method']): 'get' | 'post' | 'put' | 'delete' {
    return method.toLowerCase() as 'get' | 'post' | 'put' | 'delete';
  }

  function call(method: MatrixRoute['method'], path: string, identity: Identity, body: object | string | undefined, requestId: string, headers: Record<string, string> = {}) {
    let req = t.http()[lower(method)](path).set('X-Request-Id', requestId).set(headers);
    switch (identity) {
      case 'no key':
        break;
      case 'malformed key':
        req = req.set('Authorization', 'Bearer fpk_not-a-key');
        break;
      case 'unknown key':
        req = req.set(bearer(unknownKey));
        break;
      case 'revoked key':
        req = req.set(bearer(keys.revoked.key));
        break;
      default:
        req = req.set(bearer(keys[identity].key));
    }
    return body === undefined ? req : req.send(body);
  }

  async function admin(method: MatrixRoute['method'], path: string, body?: object): Promise<{ id: string } & Record<string, unknown>> {
    const req = t.http()[lower(method)](path).set(bearer(t.adminKey));
    const res = await (body === undefined ? req : req.send(body));
    assert.ok(res.status >= 200 && res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  }

  async function createKey(role: Role): Promise<{ id: string; key: string }> {
    const created = await admin('POST', '/v1/api-keys', { name: `matrix ${role}`, role });
    return { id: created.id, key: created.key as string };
  }

  async function resolveId(source: IdSource): Promise<string> {
    switch (source) {
      case 'authority':
        return f.authority;
      case 'pending-authority':
        return f.pendingAuthority;
      case 'certificate':
        return f.certificate;
      case 'fresh-authority':
        return (await admin('POST', '/v1/authorities', { name: 'Matrix Disposable', type: 'intermediate', parentId: f.root, subject: { commonName: 'Matrix Disposable CA' } })).id;
      case 'fresh-offline-root':
        return (await admin('POST', '/v1/authorities', { name: 'Matrix Offline Root', type: 'root', offline: true, subject: { commonName: 'Matrix Offline Root' } })).id;
      case 'fresh-certificate':
        return (await admin('POST', '/v1/certificates', { authorityId: f.authority, csr: f.csrPem, profile: 'device', thingName: 'matrix-disposable' })).id;
      case 'fresh-api-key':
        return (await admin('POST', '/v1/api-keys', { name: 'matrix disposable', role: 'auditor' })).id;
      case 'iot-registered-authority':
        return f.iotAuthority;
      case 'fresh-tpm-root':
        return (await admin('POST', '/v1/tpm/manufacturer-roots', { name: 'matrix disposable vendor', certificatePem: freshCaPem() })).id as string;
      case 'fresh-est-label':
        return (await admin('POST', '/v1/est/labels', { label: `matrix-${Math.random().toString(36).slice(2, 10)}`, kind: 'authority', authorityId: f.authority, profile: 'device' })).label as string;
      case 'claim':
        return f.claim;
      case 'fresh-claim':
        return (await admin('POST', '/v1/claims', claimBody(f))).id;
      case 'rotation':
        return f.rotation;
      case 'policy':
        return 'fleet-default';
      case 'audit':
        return f.audit;
      case 'manifest-import': {
        const res = await t.http().post('/v1/manifests?registration=none').set(bearer(t.adminKey)).set(MANIFEST_HEADERS).send(`${' '.repeat(manifestUploads++)}[]`);
        assert.equal(res.status, 202, res.text);
        return res.body.id as string;
      }
      case 'fresh-finding': {
        const audit = await finishedAudit();
        const findings = (await admin('GET', `/v1/fleet/audits/${audit.id}`)).findings as { id: string; remediation: string | null }[];
        const finding = findings.find((x) => x.remediation === 'open-rotation-campaign');
        assert.ok(finding, 'the fresh audit has a remediable finding');
        return `${audit.id}|${finding.id}`;
      }
      case 'fresh-intermediate':
        return (await admin('POST', '/v1/authorities', { name: 'Matrix Rotatable', type: 'intermediate', parentId: f.root, subject: { commonName: 'Matrix Rotatable CA' } })).id;
      case 'fresh-rotation':
        return (await admin('POST', '/v1/rotations', rotationBody(f))).id;
      case 'fresh-dead-job': {
        // A job of a kind that succeeds when retried; inserted dead, as the outbox leaves one.
        t.app.get(OutboxService).register('matrix.dead', { run: async () => undefined });
        const now = new Date().toISOString();
        const id = randomUUID();
        await t.app.get(Transactions).run(() =>
          t.app.get(OutboxRepository).insert({ id, kind: 'matrix.dead', payload: {}, status: 'dead', attempts: 12, runAfter: now, lockedBy: null, lockedUntil: null, lastError: 'MATRIX: given up', dedupeKey: null, targetType: null, targetId: null, createdAt: now, updatedAt: now }),
        );
        return id;
      }
      case 'iot-target':
        return 'default';
      case 'fresh-iot-target': {
        const id = `matrix-${Math.random().toString(36).slice(2, 10)}`;
        await admin('POST', '/v1/iot/targets', { id, accountId: freshAccountId(), region: 'eu-west-1' });
        return id;
      }
      case 'fresh-iot-registered-authority': {
        const id = await resolveId('fresh-authority');
        await admin('POST', `/v1/authorities/${id}/iot-registration`, { certificateMode: 'SNI_ONLY' });
        return id;
      }
    }
  }

  /** Starts a fleet audit (no AWS policy reads) and waits until it finished. */
  async function finishedAudit(): Promise<{ id: string }> {
    const started = await admin('POST', '/v1/fleet/audits', { policySample: 0 });
    // Bounded by time, not by a count of polls: each poll is slower on a loaded machine.
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
      const audit = await admin('GET', `/v1/fleet/audits/${started.id}`);
      if (audit.status !== 'running') return audit;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('the fleet audit did not finish within 30 s');
  }

  /** A refused call left the resource as it was. */
  async function assertUntouched(source: IdSource, id: string): Promise<void> {
    if (source === 'fresh-authority') assert.equal((await admin('GET', `/v1/authorities/${id}`)).status, 'active');
    if (source === 'fresh-iot-registered-authority') assert.equal((await admin('GET', `/v1/authorities/${id}/iot-registration`)).status, 'ACTIVE');
    if (source === 'fresh-intermediate') assert.equal((await admin('GET', `/v1/authorities/${id}`)).status, 'active');
    if (source === 'fresh-rotation') assert.equal((await admin('GET', `/v1/rotations/${id}`)).status, 'open');
    if (source === 'fresh-claim') assert.equal((await admin('GET', `/v1/claims/${id}`)).status, 'active');
    if (source === 'fresh-certificate') assert.equal((await admin('GET', `/v1/certificates/${id}`)).status, 'active');
    if (source === 'fresh-iot-target') assert.equal((await admin('GET', `/v1/iot/targets/${id}`)).id, id);
    if (source === 'fresh-est-label') assert.ok(((await admin('GET', '/v1/est/labels')).items as { label: string }[]).some((l) => l.label === id));
    if (source === 'fresh-api-key') {
      const list = (await admin('GET', '/v1/api-keys')).items as { id: string; revokedAt: string | null }[];
      assert.equal(list.find((k) => k.id === id)?.revokedAt, null);
    }
  }

  /** Number of events in the chain (all of them, as the chain verifies). */
  async function chainLength(): Promise<number> {
    const res = await t.http().get('/v1/audit/verify').set(bearer(t.adminKey));
    assert.equal(res.status, 200);
    assert.equal(res.body.ok, true);
    return res.body.checked;
  }

  interface AuditEvent {
    requestId: string | null;
    actor: { type: string; id: string | null; role: string | null };
    details: Record<string, unknown>;
  }

  /** Every audit event matching the query, across pages. */
  async function auditEvents(query: Record<string, string>): Promise<AuditEvent[]> {
    const events: AuditEvent[] = [];
    let cursor: string | undefined;
    do {
      const res = await t.http().get('/v1/audit').query({ ...query, limit: 500, ...(cursor ? { cursor } : {}) }).set(bearer(t.adminKey));
      assert.equal(res.status, 200, res.text);
      events.push(...res.body.items);
      cursor = res.body.nextCursor ?? undefined;
    } while (cursor);
    return events;
  }
});

/** An RFC 9457 problem with the expected code. */
function assertProblem(res: { status: number; headers: Record<string, string>; body: { code?: string; status?: number } }, code: string | string[]): void {
  assert.match(res.headers['content-type'] ?? '', /^application\/problem\+json/);
  if (Array.isArray(code)) assert.ok(code.includes(String(res.body.code)), `code ${res.body.code} is one of ${code.join(', ')}`);
  else assert.equal(res.body.code, code);
  assert.equal(res.body.status, res.status);
}

/** An offline root made by openssl signs the CSR of an authority under an external root (docs/external-roots.md). */
function signedByOfflineRoot(ssl: OpenSslWorkspace, csrPem: string): { certificatePem: string; chainPem: string } {
  const ext = ssl.file('matrix-ext.cnf', 'basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n');
  const run = (args: string[]) => assert.equal(ssl.run(args).status, 0, args.join(' '));
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'matrix-root.key', '-out', 'matrix-root.pem', '-subj', '/CN=Matrix Offline Root', '-days', '30', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['x509', '-req', '-in', ssl.file('matrix-ext.csr', csrPem), '-CA', 'matrix-root.pem', '-CAkey', 'matrix-root.key', '-set_serial', '4242', '-days', '10', '-extfile', ext, '-out', 'matrix-ext.pem']);
  return { certificatePem: fs.readFileSync(ssl.file('matrix-ext.pem'), 'utf8'), chainPem: fs.readFileSync(ssl.file('matrix-root.pem'), 'utf8') };
}

/** A random 12-digit AWS account id: one target per account and region (409 IOT_TARGET_DUPLICATE_ACCOUNT otherwise). */
function freshAccountId(): string {
  return String(100_000_000_000 + Math.floor(Math.random() * 899_999_999_999));
}

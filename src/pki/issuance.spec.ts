import { generateKeyPairSync, KeyObject, sign } from 'node:crypto';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  CRLDistributionPoints,
  ExtendedKeyUsage,
  KeyUsage,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { DomainError } from '../common/errors';
import { signCertificate } from './certificate';
import { subjectFieldsOf } from './csr';
import { children, decodeOid, pemEncode, readTlv } from './der';
import { EXTENSION_OIDS, keyIdentifier } from './extensions';
import { caPathLength, describeCertificate, IssuanceRequest, IssuerFacts, PublicationUrls, validityDaysFor, validityPeriod } from './issuance';
import { buildName, formatName } from './names';
import { OCSP_OIDS } from './ocsp';
import { OID } from './oids';
import { EndEntityNames, findProfile } from './profiles';
import { randomSerial } from './serial';
import { digestOf, SigningAlgorithm, SigningKey } from './signing';

// ---- keys, issuer and clock --------------------------------------------------------------------------------

const SECOND = 1000;
const HOUR = 3600 * SECOND;
const DAY = 24 * HOUR;
const NOW = new Date('2031-05-01T12:00:00.000Z');
const BACKDATE_SECONDS = 300;
const at = (offsetMs: number, from: Date = NOW) => new Date(from.getTime() + offsetMs);

interface TestKey {
  spki: Buffer;
  signer: SigningKey;
}

function testKey(type: 'ec' | 'rsa'): TestKey {
  const pair = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const algorithm: SigningAlgorithm = type === 'ec' ? 'ECDSA_SHA_256' : 'RSASSA_PKCS1_V1_5_SHA_256';
  return { spki: pair.publicKey.export({ type: 'spki', format: 'der' }), signer: signingKey(pair.privateKey, algorithm) };
}

function signingKey(privateKey: KeyObject, algorithm: SigningAlgorithm): SigningKey {
  return { algorithm, sign: async (data: Buffer) => sign(digestOf(algorithm), data, privateKey) };
}

const ISSUER_KEY = testKey('ec');
const EC = testKey('ec');
const RSA = testKey('rsa');

/** An issuing CA valid from `notBefore` to `notAfter` (by default: a month ago to ten years ahead). */
function issuer(notBefore: Date = at(-30 * DAY), notAfter: Date = at(3650 * DAY)): IssuerFacts {
  return { name: buildName({ organization: 'Acme Fleet', commonName: 'Acme Issuing CA' }), keyId: keyIdentifier(ISSUER_KEY.spki), notBefore, notAfter };
}

const URLS: PublicationUrls = {
  crl: 'https://pki.example.com/v1/authorities/ca-1/crl',
  caCertificate: 'https://pki.example.com/v1/authorities/ca-1/certificate',
  ocsp: 'https://pki.example.com/ocsp',
};

const DEVICE_NAMES: EndEntityNames = { subject: { commonName: 'sensor-42' }, dnsNames: [], ipAddresses: [], thingName: 'sensor-42' };
const SERVER_NAMES: EndEntityNames = { subject: { commonName: 'api.example.com' }, dnsNames: ['api.example.com'], ipAddresses: ['192.0.2.7'] };
const CLAIM_NAMES: EndEntityNames = { subject: { organization: 'Factory 1', commonName: 'claim c-1' }, dnsNames: [], ipAddresses: [] };

/** What a test varies; everything else is the defaults below. */
interface Options {
  key?: TestKey;
  issuer?: IssuerFacts;
  now?: Date;
  backdateSeconds?: number;
  pathLength?: number | null;
  validityDays?: number;
  endsBy?: Date;
}

const facts = (o: Options) => ({ subjectPublicKeyInfo: (o.key ?? EC).spki, now: o.now ?? NOW, backdateSeconds: o.backdateSeconds ?? BACKDATE_SECONDS });

const endEntity = (profile: string, names: EndEntityNames, validityDays: number, o: Options): IssuanceRequest => ({
  kind: 'end-entity',
  issuer: o.issuer ?? issuer(),
  urls: URLS,
  profile: findProfile(profile, { internal: true }),
  names,
  validityDays: o.validityDays ?? validityDays,
  endsBy: o.endsBy,
  ...facts(o),
});

/** One request per kind of certificate, each a typical one unless the options say otherwise. */
const requests = {
  root: (o: Options = {}): IssuanceRequest => ({
    kind: 'root-ca',
    subject: { country: 'US', organization: 'Acme Fleet', commonName: 'Acme Root' },
    pathLength: o.pathLength === undefined ? 1 : o.pathLength,
    validityDays: o.validityDays,
    ...facts(o),
  }),
  intermediate: (o: Options = {}): IssuanceRequest => ({
    kind: 'intermediate-ca',
    issuer: o.issuer ?? issuer(),
    urls: URLS,
    subject: { organization: 'Acme Fleet', commonName: 'Acme Devices CA' },
    pathLength: o.pathLength === undefined ? 0 : o.pathLength,
    validityDays: o.validityDays,
    ...facts(o),
  }),
  device: (o: Options = {}) => endEntity('device', DEVICE_NAMES, 365, o),
  server: (o: Options = {}) => endEntity('server', SERVER_NAMES, 90, o),
  claim: (o: Options = {}) => endEntity('claim', CLAIM_NAMES, 30, o),
  ocspSigner: (o: Options = {}): IssuanceRequest => ({ kind: 'ocsp-signer', issuer: o.issuer ?? issuer(), authorityId: 'ca-1', validityHours: 48, ...facts(o) }),
  iotVerification: (o: Options = {}): IssuanceRequest => ({ kind: 'iot-verification', issuer: o.issuer ?? issuer(), registrationCode: 'f3c1a0e9d2b74c58a6e1', ...facts(o) }),
};

// ---- what a certificate says, read back from its bytes -----------------------------------------------------

const EXTENSION_NAMES = new Map<string, string>([...Object.entries(EXTENSION_OIDS).map(([name, oid]) => [oid, name] as [string, string]), [OCSP_OIDS.noCheck, 'ocspNoCheck']]);

/** KeyUsage bits in their order (RFC 5280 §4.2.1.3), to list them as the extension does. */
const KEY_USAGE_BITS = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'crlSign', 'encipherOnly', 'decipherOnly'];

const EKU_NAMES: Record<string, string> = { [OID.clientAuth]: 'clientAuth', [OID.serverAuth]: 'serverAuth', [OCSP_OIDS.ocspSigning]: 'OCSPSigning' };

/** Everything the rules decide, as one comparable object; absent extensions leave their key out. */
interface Summary {
  issuer: 'self' | 'issuing CA' | 'something else';
  subject: string;
  extensions: string[];
  basicConstraints?: { critical: boolean; cA: boolean; pathLength?: number };
  keyUsage?: string[];
  extendedKeyUsage?: string[];
  subjectAltName?: string[];
  certificatePolicies?: string[];
  subjectKeyIdentifier?: 'of the subject key' | 'something else';
  authorityKeyIdentifier?: 'of the issuer key' | 'something else';
  cRLDistributionPoints?: string[];
  authorityInfoAccess?: string[];
  ocspNoCheck?: 'NULL' | 'something else';
}

/** Signs the description (the issuer key signs, or the subject key for a self-signed root) and reads it back. */
async function signAndRead(request: IssuanceRequest, subjectKey: TestKey): Promise<{ der: Buffer; summary: Summary }> {
  const { tbs } = describeCertificate(request);
  const selfSigned = request.kind === 'root-ca';
  const der = await signCertificate({ serial: randomSerial(), ...tbs }, selfSigned ? subjectKey.signer : ISSUER_KEY.signer);
  const certificate = AsnConvert.parse(der, Certificate);
  const summary: Summary = {
    issuer: selfSigned ? (tbs.issuer.equals(tbs.subject) ? 'self' : 'something else') : tbs.issuer.equals(issuer().name) ? 'issuing CA' : 'something else',
    subject: formatName(subjectFieldsOf(Buffer.from(AsnConvert.serialize(certificate.tbsCertificate.subject)))),
    extensions: [],
  };
  for (const extension of certificate.tbsCertificate.extensions ?? []) {
    const name = EXTENSION_NAMES.get(extension.extnID) ?? extension.extnID;
    summary.extensions.push(name);
    const value = extension.extnValue.buffer;
    switch (name) {
      case 'basicConstraints': {
        const bc = AsnConvert.parse(value, BasicConstraints);
        summary.basicConstraints = { critical: extension.critical, cA: bc.cA, ...(bc.pathLenConstraint === undefined ? {} : { pathLength: bc.pathLenConstraint }) };
        break;
      }
      case 'keyUsage':
        assert.equal(extension.critical, true, 'keyUsage is critical');
        summary.keyUsage = AsnConvert.parse(value, KeyUsage).toJSON().sort((a, b) => KEY_USAGE_BITS.indexOf(a) - KEY_USAGE_BITS.indexOf(b));
        break;
      case 'extKeyUsage':
        summary.extendedKeyUsage = [...AsnConvert.parse(value, ExtendedKeyUsage)].map((oid) => EKU_NAMES[oid] ?? oid);
        break;
      case 'subjectAltName':
        summary.subjectAltName = [...AsnConvert.parse(value, SubjectAlternativeName)].map((n) => (n.dNSName !== undefined ? `DNS:${n.dNSName}` : `IP:${n.iPAddress}`));
        break;
      case 'certificatePolicies': {
        // Read with our own OID decoder: the schema library mangles arcs as long as the claim policy's UUID one.
        const der = Buffer.from(value);
        summary.certificatePolicies = children(der, readTlv(der, 0)).map((policy) => decodeOid(der, children(der, policy)[0]));
        break;
      }
      case 'subjectKeyIdentifier': {
        const id = Buffer.from(AsnConvert.parse(value, SubjectKeyIdentifier).buffer);
        summary.subjectKeyIdentifier = id.equals(keyIdentifier(subjectKey.spki)) ? 'of the subject key' : 'something else';
        break;
      }
      case 'authorityKeyIdentifier': {
        const id = AsnConvert.parse(value, AuthorityKeyIdentifier).keyIdentifier;
        summary.authorityKeyIdentifier = id && Buffer.from(id.buffer).equals(keyIdentifier(ISSUER_KEY.spki)) ? 'of the issuer key' : 'something else';
        break;
      }
      case 'cRLDistributionPoints':
        summary.cRLDistributionPoints = [...AsnConvert.parse(value, CRLDistributionPoints)].flatMap((p) => (p.distributionPoint?.fullName ?? []).map((n) => n.uniformResourceIdentifier ?? '?'));
        break;
      case 'authorityInfoAccess':
        summary.authorityInfoAccess = [...AsnConvert.parse(value, AuthorityInfoAccessSyntax)].map(
          (d) => `${d.accessMethod === OID.caIssuers ? 'caIssuers' : d.accessMethod === '1.3.6.1.5.5.7.48.1' ? 'ocsp' : d.accessMethod} ${d.accessLocation.uniformResourceIdentifier}`,
        );
        break;
      case 'ocspNoCheck':
        summary.ocspNoCheck = Buffer.from(value).equals(Buffer.from([0x05, 0x00])) ? 'NULL' : 'something else';
        break;
    }
  }
  return { der, summary };
}

// ---- every kind: its extensions -----------------------------------------------------------------------------

/** AKI, CRL DP and AIA: how a relying party finds the issuer of a certificate below a CA. */
const LEAF_POINTERS: Pick<Summary, 'authorityKeyIdentifier' | 'cRLDistributionPoints' | 'authorityInfoAccess'> = {
  authorityKeyIdentifier: 'of the issuer key',
  cRLDistributionPoints: [URLS.crl],
  authorityInfoAccess: [`ocsp ${URLS.ocsp}`, `caIssuers ${URLS.caCertificate}`],
};

const KINDS: { name: string; request: IssuanceRequest; key: TestKey; expected: Summary }[] = [
  {
    name: 'root CA (self-signed, pathLength 1)',
    request: requests.root({ pathLength: 1 }),
    key: EC,
    expected: {
      issuer: 'self',
      subject: 'C=US, O=Acme Fleet, CN=Acme Root',
      extensions: ['basicConstraints', 'keyUsage', 'subjectKeyIdentifier'],
      basicConstraints: { critical: true, cA: true, pathLength: 1 },
      keyUsage: ['keyCertSign', 'crlSign'],
      subjectKeyIdentifier: 'of the subject key',
    },
  },
  {
    name: 'root CA without a path length (unlimited)',
    request: requests.root({ key: RSA, pathLength: null }),
    key: RSA,
    expected: {
      issuer: 'self',
      subject: 'C=US, O=Acme Fleet, CN=Acme Root',
      extensions: ['basicConstraints', 'keyUsage', 'subjectKeyIdentifier'],
      basicConstraints: { critical: true, cA: true },
      keyUsage: ['keyCertSign', 'crlSign'],
      subjectKeyIdentifier: 'of the subject key',
    },
  },
  {
    name: 'intermediate CA (pathLength 0, RSA key: CA key usage is the same for every key type)',
    request: requests.intermediate({ key: RSA, pathLength: 0 }),
    key: RSA,
    expected: {
      issuer: 'issuing CA',
      subject: 'O=Acme Fleet, CN=Acme Devices CA',
      extensions: ['basicConstraints', 'keyUsage', 'subjectKeyIdentifier', 'authorityKeyIdentifier', 'cRLDistributionPoints', 'authorityInfoAccess'],
      basicConstraints: { critical: true, cA: true, pathLength: 0 },
      keyUsage: ['keyCertSign', 'crlSign'],
      subjectKeyIdentifier: 'of the subject key',
      ...LEAF_POINTERS,
    },
  },
  {
    name: 'device (EC key): CN = thing name, clientAuth, no SAN, no policies',
    request: requests.device(),
    key: EC,
    expected: {
      issuer: 'issuing CA',
      subject: 'CN=sensor-42',
      extensions: ['basicConstraints', 'keyUsage', 'extKeyUsage', 'subjectKeyIdentifier', 'authorityKeyIdentifier', 'cRLDistributionPoints', 'authorityInfoAccess'],
      basicConstraints: { critical: true, cA: false },
      keyUsage: ['digitalSignature'],
      extendedKeyUsage: ['clientAuth'],
      subjectKeyIdentifier: 'of the subject key',
      ...LEAF_POINTERS,
    },
  },
  {
    name: 'device (RSA key): no keyEncipherment (only the server profile adds it)',
    request: requests.device({ key: RSA }),
    key: RSA,
    expected: {
      issuer: 'issuing CA',
      subject: 'CN=sensor-42',
      extensions: ['basicConstraints', 'keyUsage', 'extKeyUsage', 'subjectKeyIdentifier', 'authorityKeyIdentifier', 'cRLDistributionPoints', 'authorityInfoAccess'],
      basicConstraints: { critical: true, cA: false },
      keyUsage: ['digitalSignature'],
      extendedKeyUsage: ['clientAuth'],
      subjectKeyIdentifier: 'of the subject key',
      ...LEAF_POINTERS,
    },
  },
  {
    name: 'server (EC key): SAN with its names, serverAuth, digitalSignature only',
    request: requests.server(),
    key: EC,
    expected: {
      issuer: 'issuing CA',
      subject: 'CN=api.example.com',
      extensions: ['basicConstraints', 'keyUsage', 'extKeyUsage', 'subjectKeyIdentifier', 'authorityKeyIdentifier', 'cRLDistributionPoints', 'authorityInfoAccess', 'subjectAltName'],
      basicConstraints: { critical: true, cA: false },
      keyUsage: ['digitalSignature'],
      extendedKeyUsage: ['serverAuth'],
      subjectKeyIdentifier: 'of the subject key',
      ...LEAF_POINTERS,
      subjectAltName: ['DNS:api.example.com', 'IP:192.0.2.7'],
    },
  },
  {
    name: 'server (RSA key): keyEncipherment added for RSA key transport',
    request: requests.server({ key: RSA }),
    key: RSA,
    expected: {
      issuer: 'issuing CA',
      subject: 'CN=api.example.com',
      extensions: ['basicConstraints', 'keyUsage', 'extKeyUsage', 'subjectKeyIdentifier', 'authorityKeyIdentifier', 'cRLDistributionPoints', 'authorityInfoAccess', 'subjectAltName'],
      basicConstraints: { critical: true, cA: false },
      keyUsage: ['digitalSignature', 'keyEncipherment'],
      extendedKeyUsage: ['serverAuth'],
      subjectKeyIdentifier: 'of the subject key',
      ...LEAF_POINTERS,
      subjectAltName: ['DNS:api.example.com', 'IP:192.0.2.7'],
    },
  },
  {
    name: 'claim (RSA key): the claim-only policy, clientAuth, the subject the service gave',
    request: requests.claim({ key: RSA }),
    key: RSA,
    expected: {
      issuer: 'issuing CA',
      subject: 'O=Factory 1, CN=claim c-1',
      extensions: ['basicConstraints', 'keyUsage', 'extKeyUsage', 'subjectKeyIdentifier', 'authorityKeyIdentifier', 'cRLDistributionPoints', 'authorityInfoAccess', 'certificatePolicies'],
      basicConstraints: { critical: true, cA: false },
      keyUsage: ['digitalSignature'],
      extendedKeyUsage: ['clientAuth'],
      subjectKeyIdentifier: 'of the subject key',
      ...LEAF_POINTERS,
      certificatePolicies: [OID.fleetPkiClaimPolicy],
    },
  },
  {
    name: 'delegated OCSP signer: OCSPSigning, ocsp-nocheck, no CRL DP or AIA',
    request: requests.ocspSigner(),
    key: EC,
    expected: {
      issuer: 'issuing CA',
      subject: 'CN=OCSP Responder ca-1',
      extensions: ['basicConstraints', 'keyUsage', 'extKeyUsage', 'ocspNoCheck', 'subjectKeyIdentifier', 'authorityKeyIdentifier'],
      basicConstraints: { critical: true, cA: false },
      keyUsage: ['digitalSignature'],
      extendedKeyUsage: ['OCSPSigning'],
      ocspNoCheck: 'NULL',
      subjectKeyIdentifier: 'of the subject key',
      authorityKeyIdentifier: 'of the issuer key',
    },
  },
  {
    name: 'AWS IoT verification certificate: CN = registration code, basicConstraints and AKI only',
    request: requests.iotVerification(),
    key: EC,
    expected: {
      issuer: 'issuing CA',
      subject: 'CN=f3c1a0e9d2b74c58a6e1',
      extensions: ['basicConstraints', 'authorityKeyIdentifier'],
      basicConstraints: { critical: true, cA: false },
      authorityKeyIdentifier: 'of the issuer key',
    },
  },
];

describe('describeCertificate: what each kind of certificate carries', () => {
  for (const { name, request, key, expected } of KINDS) {
    it(name, async () => {
      const { summary } = await signAndRead(request, key);
      assert.deepEqual(summary, expected);
    });
  }

  it('certifies exactly the key it was given', () => {
    for (const { request } of KINDS) assert.ok(describeCertificate(request).tbs.subjectPublicKeyInfo.equals(request.subjectPublicKeyInfo), request.kind);
  });
});

// ---- every kind: its validity -------------------------------------------------------------------------------

interface ValidityCase {
  name: string;
  request: IssuanceRequest;
  notBefore: Date;
  notAfter: Date;
  validityClamped: boolean;
}

/** An issuer that started a minute ago: a backdated notBefore would precede it. */
const YOUNG_ISSUER = issuer(at(-60 * SECOND));
/** An issuer that ends in ten days, before most lifetimes would. */
const ENDING_ISSUER = issuer(at(-30 * DAY), at(10 * DAY));
/** An issuer that ends in an hour, before even an OCSP signer's or verification certificate's lifetime. */
const LAST_HOUR_ISSUER = issuer(at(-30 * DAY), at(HOUR));
const BACKDATED = at(-BACKDATE_SECONDS * SECOND);

const VALIDITY: ValidityCase[] = [
  // Backdating, and each kind's lifetime.
  { name: 'root CA: backdated, default 3650 days, never clamped', request: requests.root(), notBefore: BACKDATED, notAfter: at(3650 * DAY), validityClamped: false },
  { name: 'root CA: the requested lifetime', request: requests.root({ validityDays: 7300 }), notBefore: BACKDATED, notAfter: at(7300 * DAY), validityClamped: false },
  { name: 'intermediate CA: backdated, default 1825 days', request: requests.intermediate(), notBefore: BACKDATED, notAfter: at(1825 * DAY), validityClamped: false },
  { name: 'intermediate CA: the requested lifetime', request: requests.intermediate({ validityDays: 400 }), notBefore: BACKDATED, notAfter: at(400 * DAY), validityClamped: false },
  { name: 'device: backdated, its validityDays', request: requests.device(), notBefore: BACKDATED, notAfter: at(365 * DAY), validityClamped: false },
  { name: 'server: backdated, its validityDays', request: requests.server(), notBefore: BACKDATED, notAfter: at(90 * DAY), validityClamped: false },
  { name: 'OCSP signer: backdated, validityHours', request: requests.ocspSigner(), notBefore: BACKDATED, notAfter: at(48 * HOUR), validityClamped: false },
  { name: 'IoT verification: backdated, one day', request: requests.iotVerification(), notBefore: BACKDATED, notAfter: at(DAY), validityClamped: false },
  { name: 'IoT verification: the configured backdate, not a fixed one', request: requests.iotVerification({ backdateSeconds: 3600 }), notBefore: at(-HOUR), notAfter: at(DAY), validityClamped: false },
  { name: 'device: no backdate configured', request: requests.device({ backdateSeconds: 0 }), notBefore: NOW, notAfter: at(365 * DAY), validityClamped: false },

  // The backdate never reaches before the issuer's own notBefore.
  { name: 'intermediate CA: notBefore floored at the issuer notBefore', request: requests.intermediate({ issuer: YOUNG_ISSUER }), notBefore: at(-60 * SECOND), notAfter: at(1825 * DAY), validityClamped: false },
  { name: 'device: notBefore floored at the issuer notBefore', request: requests.device({ issuer: YOUNG_ISSUER }), notBefore: at(-60 * SECOND), notAfter: at(365 * DAY), validityClamped: false },
  { name: 'claim: notBefore floored at the issuer notBefore', request: requests.claim({ issuer: YOUNG_ISSUER }), notBefore: at(-60 * SECOND), notAfter: at(30 * DAY), validityClamped: false },
  { name: 'OCSP signer: notBefore floored at the issuer notBefore', request: requests.ocspSigner({ issuer: YOUNG_ISSUER }), notBefore: at(-60 * SECOND), notAfter: at(48 * HOUR), validityClamped: false },
  { name: 'IoT verification: notBefore floored at the issuer notBefore', request: requests.iotVerification({ issuer: YOUNG_ISSUER }), notBefore: at(-60 * SECOND), notAfter: at(DAY), validityClamped: false },

  // notAfter never passes the issuer's, and says so.
  { name: 'intermediate CA: clamped to the issuer notAfter', request: requests.intermediate({ issuer: ENDING_ISSUER }), notBefore: BACKDATED, notAfter: at(10 * DAY), validityClamped: true },
  { name: 'device: clamped to the issuer notAfter', request: requests.device({ issuer: ENDING_ISSUER }), notBefore: BACKDATED, notAfter: at(10 * DAY), validityClamped: true },
  { name: 'server: clamped to the issuer notAfter', request: requests.server({ issuer: ENDING_ISSUER }), notBefore: BACKDATED, notAfter: at(10 * DAY), validityClamped: true },
  { name: 'server: within the issuer validity, not clamped', request: requests.server({ issuer: ENDING_ISSUER, validityDays: 9 }), notBefore: BACKDATED, notAfter: at(9 * DAY), validityClamped: false },
  { name: 'claim: ending exactly with the issuer is not clamped', request: requests.claim({ issuer: ENDING_ISSUER, validityDays: 10 }), notBefore: BACKDATED, notAfter: at(10 * DAY), validityClamped: false },
  { name: 'OCSP signer: cut to the issuer notAfter', request: requests.ocspSigner({ issuer: LAST_HOUR_ISSUER }), notBefore: BACKDATED, notAfter: at(HOUR), validityClamped: true },
  { name: 'IoT verification: cut to the issuer notAfter', request: requests.iotVerification({ issuer: LAST_HOUR_ISSUER }), notBefore: BACKDATED, notAfter: at(HOUR), validityClamped: true },

  // A requested end shorter than the profile's (a claim certificate ends with its claim).
  { name: 'claim: a requested end before the lifetime wins', request: requests.claim({ endsBy: at(7 * DAY) }), notBefore: BACKDATED, notAfter: at(7 * DAY), validityClamped: false },
  { name: 'claim: a requested end after the lifetime changes nothing', request: requests.claim({ endsBy: at(400 * DAY) }), notBefore: BACKDATED, notAfter: at(30 * DAY), validityClamped: false },
  { name: 'claim: a requested end after the issuer end is clamped', request: requests.claim({ issuer: ENDING_ISSUER, endsBy: at(20 * DAY) }), notBefore: BACKDATED, notAfter: at(10 * DAY), validityClamped: true },
];

describe('describeCertificate: validity', () => {
  for (const { name, request, notBefore, notAfter, validityClamped } of VALIDITY) {
    it(name, () => {
      const { tbs, validityClamped: clamped } = describeCertificate(request);
      assert.deepEqual(
        { notBefore: tbs.notBefore.toISOString(), notAfter: tbs.notAfter.toISOString(), validityClamped: clamped },
        { notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString(), validityClamped },
      );
    });
  }

  it('validityPeriod without an issuer (a root) neither floors nor clamps', () => {
    assert.deepEqual(validityPeriod({ now: NOW, backdateSeconds: 60, lifetimeMs: DAY }), { notBefore: at(-60 * SECOND), notAfter: at(DAY), validityClamped: false });
  });
});

// ---- the checks next to the rules -------------------------------------------------------------------------

function expectDomainError(fn: () => unknown, code: string, message: string): void {
  assert.throws(fn, (err: unknown) => err instanceof DomainError && err.code === code && err.message === message);
}

describe('validityDaysFor', () => {
  const server = findProfile('server');
  const cases: [string, number | undefined, number | string][] = [
    ['the profile default when none is asked', undefined, 90],
    ['what was asked', 30, 30],
    ['the profile maximum itself', 397, 397],
    ['more than the maximum is refused', 398, 'VALIDITY_EXCEEDS_PROFILE'],
  ];
  for (const [name, requested, expected] of cases) {
    it(name, () => {
      if (typeof expected === 'number') assert.equal(validityDaysFor(server, requested), expected);
      else expectDomainError(() => validityDaysFor(server, requested), expected, 'profile server allows at most 397 days');
    });
  }
});

describe('caPathLength', () => {
  const cases: [string, { id: string; pathLength: number | null } | undefined, number | undefined, number | null | [string, string]][] = [
    ['a root: what was asked', undefined, 2, 2],
    ['a root: none asked, none set', undefined, undefined, null],
    ['under an unlimited parent: what was asked', { id: 'p', pathLength: null }, 3, 3],
    ['under an unlimited parent: none', { id: 'p', pathLength: null }, undefined, null],
    ['under pathLength 2: the most it allows by default', { id: 'p', pathLength: 2 }, undefined, 1],
    ['under pathLength 2: less is fine', { id: 'p', pathLength: 2 }, 0, 0],
    ['under pathLength 2: as much as the parent is refused', { id: 'p', pathLength: 2 }, 2, ['PATH_LENGTH_EXCEEDED', 'pathLength must be at most 1 under authority p']],
    ['under pathLength 0: no intermediate at all', { id: 'p', pathLength: 0 }, undefined, ['PATH_LENGTH_EXCEEDED', 'authority p has pathLength 0 and cannot sign intermediates']],
  ];
  for (const [name, parent, requested, expected] of cases) {
    it(name, () => {
      if (Array.isArray(expected)) expectDomainError(() => caPathLength(parent, requested), expected[0], expected[1]);
      else assert.equal(caPathLength(parent, requested), expected);
    });
  }
});

// ---- a second opinion: openssl verifies a chain of every kind -----------------------------------------------

describe('describeCertificate: openssl accepts every kind with -x509_strict', () => {
  const ssl = new OpenSslWorkspace();
  after(() => ssl.cleanup());

  it('root → intermediate → device, server (RSA key), claim, OCSP signer and IoT verification certificate', async () => {
    const now = new Date();
    const rootKey = testKey('ec');
    const root = describeCertificate(requests.root({ key: rootKey, now })).tbs;
    const rootPem = pemEncode('CERTIFICATE', await signCertificate({ serial: randomSerial(), ...root }, rootKey.signer));
    const rootFacts: IssuerFacts = { name: root.subject, keyId: keyIdentifier(rootKey.spki), notBefore: root.notBefore, notAfter: root.notAfter };
    // The intermediate's key is ISSUER_KEY, so the leaf requests are signed as everywhere else in this file.
    const intermediate = describeCertificate(requests.intermediate({ key: ISSUER_KEY, issuer: rootFacts, now })).tbs;
    const intermediatePem = pemEncode('CERTIFICATE', await signCertificate({ serial: randomSerial(), ...intermediate }, rootKey.signer));
    const intermediateFacts: IssuerFacts = { name: intermediate.subject, keyId: keyIdentifier(ISSUER_KEY.spki), notBefore: intermediate.notBefore, notAfter: intermediate.notAfter };

    assert.ok(ssl.verify({ rootPem, leafPem: rootPem }).ok, 'root');
    const leaves: [string, IssuanceRequest, string][] = [
      ['device', requests.device({ issuer: intermediateFacts, now }), 'TLS Web Client Authentication'],
      ['server', requests.server({ key: RSA, issuer: intermediateFacts, now }), 'Digital Signature, Key Encipherment'],
      ['claim', requests.claim({ issuer: intermediateFacts, now }), 'X509v3 Certificate Policies'],
      ['OCSP signer', requests.ocspSigner({ issuer: intermediateFacts, now }), 'OCSP No Check'],
      ['IoT verification', requests.iotVerification({ issuer: intermediateFacts, now }), 'CN = f3c1a0e9d2b74c58a6e1'],
    ];
    for (const [name, request, marker] of leaves) {
      const leaf = describeCertificate(request).tbs;
      const leafPem = pemEncode('CERTIFICATE', await signCertificate({ serial: randomSerial(), ...leaf }, ISSUER_KEY.signer));
      const verified = ssl.verify({ rootPem, intermediatesPem: intermediatePem, leafPem });
      assert.ok(verified.ok, `${name}: ${verified.output}`);
      assert.ok(ssl.text(leafPem).includes(marker), `${name} shows ${marker}`);
    }
  });
});

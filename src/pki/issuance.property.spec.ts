import { createHash, generateKeyPair, KeyObject, sign } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { CertificateReading, differences, KEY_USAGE_NAMES, OIDS, READERS, canonicalIp, NameAttribute, TimeReading } from '../../test/support/certificate-readers';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { certificateParts, CertificateTemplate, signCertificate } from './certificate';
import { checkPublicKey } from './key-policy';
import { children, pemEncode, readTlv } from './der';
import { explicit, sequence, smallInteger, tlv, unsignedInteger } from './der-writer';
import { caPathLength, CertificateDescription, describeCertificate, IssuanceRequest, IssuerFacts, PublicationUrls, validityDaysFor } from './issuance';
import { extension, keyIdentifier, keyUsage } from './extensions';
import { SubjectFields } from './names';
import { listProfiles, namesFor, Profile } from './profiles';
import { randomSerial } from './serial';
import { digestOf, signatureAlgorithmIdentifier, SigningAlgorithm, SigningKey } from './signing';

/**
 * The equivalence property of issue 15: over random profiles, key specs, subjects, SANs and validity, the certificate
 * our lean encoder makes (describeCertificate + signCertificate, the path every service takes) reads back, with
 * @peculiar/x509 and with pkijs, as exactly what the profile decided — and `openssl verify -x509_strict` accepts it
 * against its issuer. The expectation below is written from the rules (docs/architecture.md, "Validity and clamping",
 * "Where each rule lives") and the profile's fields, never from describeCertificate's output.
 *
 * Each case is an issuing root (random CA key, subject, lifetime, path length and age) and one certificate under it:
 * an intermediate, an end-entity certificate of any profile in profiles.ts, a delegated OCSP signer or an AWS IoT
 * verification certificate. Both certificates are compared, so every case also checks a root.
 *
 * FLEET_PKI_PROPERTY_RUNS (default 150) and FLEET_PKI_PROPERTY_SEED replay or deepen a run.
 */

const RUNS = Number(process.env.FLEET_PKI_PROPERTY_RUNS ?? 150);
const SEED = process.env.FLEET_PKI_PROPERTY_SEED === undefined ? undefined : Number(process.env.FLEET_PKI_PROPERTY_SEED);

const SECOND = 1000;
const HOUR = 3600 * SECOND;
const DAY = 24 * HOUR;

// ---- keys: made once per spec and role ---------------------------------------------------------------------------

/** What a CA key can be (src/keys/key-spec.ts, less RSA_4096 to keep key generation short). */
const CA_KEY_SPECS = ['EC_P256', 'EC_P384', 'RSA_2048', 'RSA_3072'] as const;
/** What a certified key can be (src/pki/key-policy.ts): the CA specs and P-521. */
const SUBJECT_KEY_SPECS = ['EC_P256', 'EC_P384', 'EC_P521', 'RSA_2048', 'RSA_3072'] as const;
type CaKeySpec = (typeof CA_KEY_SPECS)[number];
type SubjectKeySpec = (typeof SUBJECT_KEY_SPECS)[number];

/** As src/keys/key-spec.ts signingAlgorithmFor (pki may not import keys/). */
const CA_ALGORITHM: Record<CaKeySpec, SigningAlgorithm> = {
  EC_P256: 'ECDSA_SHA_256',
  EC_P384: 'ECDSA_SHA_384',
  RSA_2048: 'RSASSA_PKCS1_V1_5_SHA_256',
  RSA_3072: 'RSASSA_PKCS1_V1_5_SHA_256',
};

/** The signature AlgorithmIdentifier each algorithm must produce (RFC 5758 §3.2: ECDSA without parameters; RFC 4055 §5: RSA with NULL). */
const EXPECTED_SIGNATURE_ALGORITHM: Record<SigningAlgorithm, { oid: string; parameters: string | null }> = {
  ECDSA_SHA_256: { oid: '1.2.840.10045.4.3.2', parameters: null },
  ECDSA_SHA_384: { oid: '1.2.840.10045.4.3.3', parameters: null },
  RSASSA_PKCS1_V1_5_SHA_256: { oid: '1.2.840.113549.1.1.11', parameters: '0500' },
};

interface TestKey {
  spki: Buffer;
  publicKey: KeyObject;
  privateKey: KeyObject;
}

const generate = promisify(generateKeyPair) as (type: string, options: object) => Promise<{ publicKey: KeyObject; privateKey: KeyObject }>;
const KEY_OPTIONS: Record<SubjectKeySpec, [string, object]> = {
  EC_P256: ['ec', { namedCurve: 'P-256' }],
  EC_P384: ['ec', { namedCurve: 'P-384' }],
  EC_P521: ['ec', { namedCurve: 'P-521' }],
  RSA_2048: ['rsa', { modulusLength: 2048 }],
  RSA_3072: ['rsa', { modulusLength: 3072 }],
};

const issuerKeys = new Map<CaKeySpec, TestKey>();
const subjectKeys = new Map<SubjectKeySpec, TestKey>();

async function makeKey(spec: SubjectKeySpec): Promise<TestKey> {
  const pair = await generate(...KEY_OPTIONS[spec]);
  return { ...pair, spki: pair.publicKey.export({ type: 'spki', format: 'der' }) };
}

/** The signer the service would use for a local key (src/keys/local/local-key-manager.ts): node:crypto, DER ECDSA. */
function signerOf(key: TestKey, algorithm: SigningAlgorithm): SigningKey {
  return { algorithm, sign: async (data) => sign(digestOf(algorithm), data, key.privateKey) };
}

// ---- the cases ---------------------------------------------------------------------------------------------------

interface IssuingRoot {
  key: CaKeySpec;
  subject: SubjectFields;
  validityDays: number;
  pathLength: number | null;
  /** How long before the case's `now` the root was made (negative: a little after, so notBefore gets clamped). */
  ageSeconds: number;
  serialHex: string;
}

/** What a certificate request under a profile carries, by the profile's subject rule. */
type ProfileRequest =
  | { rule: 'thing-name'; thingName?: string; csrSubject: SubjectFields; csrDnsNames: string[]; csrIpAddresses: string[] }
  | { rule: 'dns-ip-names'; csrSubject: SubjectFields; csrDnsNames: string[]; csrIpAddresses: string[] }
  | { rule: 'given'; subject: SubjectFields };

type Issued =
  | { kind: 'intermediate-ca'; subject: SubjectFields; validityDays?: number; pathLength?: number }
  | { kind: 'end-entity'; profile: string; request: ProfileRequest; validityDays?: number; endsAfterSeconds?: number }
  | { kind: 'ocsp-signer'; authorityId: string; validityHours: number }
  | { kind: 'iot-verification'; registrationCode: string };

interface Case {
  issued: Issued;
  subjectKey: SubjectKeySpec;
  root: IssuingRoot;
  now: Date;
  backdateSeconds: number;
  urls: PublicationUrls;
  serialHex: string;
}

const PROFILES = listProfiles({ internal: true });
const profileNamed = (name: string): Profile => PROFILES.find((profile) => profile.name === name)!;

/** Printable text with some non-ASCII letters (UTF8String), no control characters, trimmed, within `max`. */
const TEXT_CHARS = [...' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~', ...'éüßøñçÅΩ€漢字'];
const text = (max: number) => fc.string({ unit: fc.constantFrom(...TEXT_CHARS), minLength: 1, maxLength: max }).map((value) => value.trim() || 'x');

const subjectFields = (commonName: fc.Arbitrary<string> = text(64)): fc.Arbitrary<SubjectFields> =>
  fc.record(
    {
      country: fc.stringMatching(/^[A-Z]{2}$/),
      state: text(128),
      locality: text(128),
      organization: text(64),
      organizationalUnit: text(64),
      commonName,
    },
    { requiredKeys: ['commonName'] },
  );

const label = fc.oneof({ weight: 6, arbitrary: fc.stringMatching(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,12}[a-zA-Z0-9])?$/) }, { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9][a-z0-9-]{40,61}[a-z0-9]$/) });
const hostName = fc.array(label, { minLength: 2, maxLength: 4 }).map((labels) => labels.join('.')).filter((name) => name.length <= 253);
const ipAddress = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV6().map((ip) => ip.toUpperCase()));
const descriptiveName = fc.stringMatching(/^[A-Za-z]{1,10} [A-Za-z ]{0,20}[A-Za-z]$/);
const thingName = fc.stringMatching(/^[a-zA-Z0-9:_-]{1,64}$/);

function profileRequest(profile: Profile): fc.Arbitrary<ProfileRequest> {
  const rule = profile.subjectRule;
  switch (rule) {
    case 'thing-name':
      // The CSR's other attributes and SANs must be ignored: they are generated to prove it.
      return fc.oneof(
        fc.record({ rule: fc.constant(rule), thingName, csrSubject: subjectFields(fc.oneof(thingName, text(64))), csrDnsNames: fc.array(hostName, { maxLength: 2 }), csrIpAddresses: fc.array(ipAddress, { maxLength: 2 }) }),
        fc.record({ rule: fc.constant(rule), csrSubject: subjectFields(thingName), csrDnsNames: fc.array(hostName, { maxLength: 2 }), csrIpAddresses: fc.array(ipAddress, { maxLength: 2 }) }),
      );
    case 'dns-ip-names':
      return fc
        .record({
          rule: fc.constant(rule),
          csrSubject: fc.record({ commonName: fc.oneof(hostName, ipAddress, descriptiveName), organization: text(64) }, { requiredKeys: [] }),
          csrDnsNames: fc.array(hostName, { maxLength: 4 }),
          csrIpAddresses: fc.array(ipAddress, { maxLength: 3 }),
        })
        .filter((request) => expectedServerNames(request) !== undefined);
    case 'given':
      return fc.record({ rule: fc.constant(rule), subject: subjectFields() });
    default: {
      const unknown: never = rule;
      throw new Error(`a profile with subject rule ${String(unknown)}: teach this test how to request it`);
    }
  }
}

const instantIn = (from: string, to: string) => fc.date({ min: new Date(from), max: new Date(to), noInvalidDate: true });

const issuedArbitrary: fc.Arbitrary<Issued> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('intermediate-ca' as const), subject: subjectFields(), validityDays: fc.integer({ min: 1, max: 36500 }), pathLength: fc.integer({ min: 0, max: 3 }) }, { requiredKeys: ['kind', 'subject'] }) },
  ...PROFILES.map((profile) => ({
    weight: 2,
    arbitrary: fc.record(
      {
        kind: fc.constant('end-entity' as const),
        profile: fc.constant(profile.name),
        request: profileRequest(profile),
        validityDays: fc.integer({ min: 1, max: profile.maxValidityDays }),
        endsAfterSeconds: fc.integer({ min: 3600, max: 4000 * 86400 }),
      },
      { requiredKeys: ['kind', 'profile', 'request'] },
    ),
  })),
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ocsp-signer' as const), authorityId: fc.uuid(), validityHours: fc.integer({ min: 1, max: 8760 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('iot-verification' as const), registrationCode: fc.stringMatching(/^[0-9a-f]{20,64}$/) }) },
);

/** 20 random bytes as randomSerial draws them; the first byte is made acceptable so randomSerial keeps them. */
const serialHex = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((bytes) => {
  bytes[0] = bytes[0] & 0x7f || 1;
  return Buffer.from(bytes).toString('hex');
});

const caseArbitrary: fc.Arbitrary<Case> = fc
  .record({
    issued: issuedArbitrary,
    subjectKey: fc.constantFrom(...SUBJECT_KEY_SPECS),
    root: fc.record({
      key: fc.constantFrom(...CA_KEY_SPECS),
      subject: subjectFields(),
      validityDays: fc.integer({ min: 2, max: 36500 }),
      pathLength: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null }),
      ageSeconds: fc.oneof(fc.integer({ min: -600, max: 86400 }), fc.integer({ min: -600, max: 36499 * 86400 })),
      serialHex,
    }),
    // Around 2049/2050 half the time, so UTCTime and GeneralizedTime meet inside one certificate.
    now: fc.oneof(instantIn('2000-01-01T00:00:00Z', '2120-12-31T23:59:59Z'), instantIn('2049-06-01T00:00:00Z', '2050-01-01T00:00:10Z')),
    backdateSeconds: fc.oneof(fc.constant(300), fc.integer({ min: 0, max: 86400 })),
    urls: fc.record({ base: fc.constantFrom('https://pki.example.com', 'https://pki.acme-fleet.example:8443/base', 'http://10.0.0.7'), authorityId: fc.uuid() }).map(({ base, authorityId }) => ({
      crl: `${base}/v1/authorities/${authorityId}/crl`,
      caCertificate: `${base}/v1/authorities/${authorityId}/certificate`,
      ocsp: `${base}/ocsp`,
    })),
    serialHex,
  })
  // The root is still valid a day after `now` (an expired CA issues nothing), and an intermediate's path length is
  // one its parent allows (both refused by the services before anything is described).
  .map((c) => ({ ...c, root: { ...c.root, ageSeconds: Math.min(c.root.ageSeconds, (c.root.validityDays - 1) * 86400) } }))
  .filter((c) => c.issued.kind !== 'intermediate-ca' || pathLengthAllowed(c.root.pathLength, c.issued.pathLength));

function pathLengthAllowed(parent: number | null, requested: number | undefined): boolean {
  return parent === null || (parent > 0 && (requested === undefined || requested <= parent - 1));
}

// ---- building, as the services do ---------------------------------------------------------------------------------

interface Built {
  rootDer: Buffer;
  der: Buffer;
  root: CertificateDescription;
  certificate: CertificateDescription;
}

const rootNow = (c: Case) => new Date(c.now.getTime() - c.root.ageSeconds * SECOND);
const wholeSeconds = (date: Date) => new Date(Math.floor(date.getTime() / SECOND) * SECOND);
const serialOf = (hex: string) => randomSerial(() => Buffer.from(hex, 'hex'));

/** The request a service would hand to describeCertificate for this case (the profile rules applied first). */
function issuanceRequest(c: Case, issuer: IssuerFacts): IssuanceRequest {
  const facts = { subjectPublicKeyInfo: subjectKeys.get(c.subjectKey)!.spki, now: c.now, backdateSeconds: c.backdateSeconds };
  const issued = c.issued;
  switch (issued.kind) {
    case 'intermediate-ca': // AuthoritiesService.create
      return { kind: 'intermediate-ca', issuer, urls: c.urls, subject: issued.subject, validityDays: issued.validityDays, pathLength: caPathLength({ id: 'root', pathLength: c.root.pathLength }, issued.pathLength), ...facts };
    case 'end-entity': {
      // CertificatesService.issue: validity and names under the profile, from a parsed CSR.
      const profile = profileNamed(issued.profile);
      const request = issued.request;
      const csr = request.rule === 'given' ? undefined : { subject: request.csrSubject, dnsNames: request.csrDnsNames, ipAddresses: request.csrIpAddresses };
      const parsedCsr = { subject: csr?.subject ?? {}, dnsNames: csr?.dnsNames ?? [], ipAddresses: csr?.ipAddresses ?? [], otherNames: 0, publicKeySpki: facts.subjectPublicKeyInfo, publicKey: checkPublicKey(facts.subjectPublicKeyInfo) };
      const names = namesFor(profile, parsedCsr, request.rule === 'thing-name' ? request.thingName : undefined, request.rule === 'given' ? request.subject : undefined);
      return { kind: 'end-entity', issuer, urls: c.urls, profile, names, validityDays: validityDaysFor(profile, issued.validityDays), endsBy: endsByOf(c), ...facts };
    }
    case 'ocsp-signer':
      return { kind: 'ocsp-signer', issuer, authorityId: issued.authorityId, validityHours: issued.validityHours, ...facts };
    case 'iot-verification':
      return { kind: 'iot-verification', issuer, registrationCode: issued.registrationCode, ...facts };
  }
}

/** An earlier end asked for (a claim certificate ends with its claim): at least an hour after `now`, as a claim's is. */
function endsByOf(c: Case): Date | undefined {
  return c.issued.kind === 'end-entity' && c.issued.endsAfterSeconds !== undefined ? new Date(c.now.getTime() + c.issued.endsAfterSeconds * SECOND) : undefined;
}

async function build(c: Case, tamper: (template: CertificateTemplate) => CertificateTemplate = (t) => t): Promise<Built> {
  const caKey = issuerKeys.get(c.root.key)!;
  const signer = signerOf(caKey, CA_ALGORITHM[c.root.key]);
  const root = describeCertificate({ kind: 'root-ca', subject: c.root.subject, validityDays: c.root.validityDays, pathLength: c.root.pathLength, subjectPublicKeyInfo: caKey.spki, now: rootNow(c), backdateSeconds: c.backdateSeconds });
  const rootDer = await signCertificate({ serial: serialOf(c.root.serialHex), ...root.tbs }, signer);
  // As AuthoritiesService.signingView: the name and key from the CA's certificate, its validity as stored (whole seconds).
  const parts = certificateParts(rootDer);
  const issuer: IssuerFacts = { name: parts.subject, keyId: keyIdentifier(parts.subjectPublicKeyInfo), notBefore: wholeSeconds(root.tbs.notBefore), notAfter: wholeSeconds(root.tbs.notAfter) };
  const certificate = describeCertificate(issuanceRequest(c, issuer));
  const der = await signCertificate(tamper({ serial: serialOf(c.serialHex), ...certificate.tbs }), signer);
  return { rootDer, der, root, certificate };
}

// ---- what the rules say the certificate must contain ------------------------------------------------------------

/** The subjectPublicKey bits, from node's own export (not our DER reader): EC uncompressed point, RSA PKCS #1. */
function keyBits(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'rsa') return key.export({ type: 'pkcs1', format: 'der' });
  const jwk = key.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
}

/** RFC 5280 §4.2.1.2 (1): SHA-1 of the key bits. */
const keyIdOf = (key: TestKey) => createHash('sha1').update(keyBits(key.publicKey)).digest('hex');

/** Order and string types as names.ts promises: C (PrintableString), ST, L, O, OU, CN (UTF8String), one per RDN. */
function expectedName(fields: SubjectFields): NameAttribute[] {
  const order: [keyof SubjectFields, string][] = [['country', '2.5.4.6'], ['state', '2.5.4.8'], ['locality', '2.5.4.7'], ['organization', '2.5.4.10'], ['organizationalUnit', '2.5.4.11'], ['commonName', '2.5.4.3']];
  return order.filter(([field]) => fields[field] !== undefined).map(([field, oid]) => ({ oid, type: field === 'country' ? 'PrintableString' : 'UTF8String', value: fields[field]! }));
}

/** Whole seconds; UTCTime from 1950 through 2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). */
function expectedTime(instant: number): TimeReading {
  const at = wholeSeconds(new Date(instant));
  const year = at.getUTCFullYear();
  return { at: at.toISOString(), encoding: year >= 1950 && year < 2050 ? 'UTCTime' : 'GeneralizedTime' };
}

const keyUsageNames = (flags: KeyUsageFlags[]) => KEY_USAGE_NAMES.filter((_, bit) => flags.some((flag) => flag === 1 << bit));

/** The server profile's names (profiles.ts serverNames): undefined when such a request is refused. */
function expectedServerNames(request: { csrSubject: SubjectFields; csrDnsNames: string[]; csrIpAddresses: string[] }): { commonName: string; dns: string[]; ips: string[] } | undefined {
  const dns = new Set<string>();
  const ips = new Set<string>();
  const cn = request.csrSubject.commonName;
  if (cn !== undefined && isIP(cn)) ips.add(cn);
  else if (cn !== undefined && /^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(cn) && cn.length <= 253) dns.add(cn.toLowerCase());
  for (const name of request.csrDnsNames) dns.add(name.toLowerCase());
  for (const ip of request.csrIpAddresses) ips.add(ip);
  const commonName = [...dns, ...ips].find((name) => name.length <= 64);
  return commonName === undefined ? undefined : { commonName, dns: [...dns], ips: [...ips] };
}

interface Expectation {
  reading: CertificateReading;
  validityClamped: boolean;
}

function expectedRoot(c: Case): Expectation {
  const key = issuerKeys.get(c.root.key)!;
  const made = rootNow(c).getTime();
  const name = expectedName(c.root.subject);
  return {
    validityClamped: false,
    reading: {
      version: 3,
      serial: c.root.serialHex,
      tbsSignatureAlgorithm: EXPECTED_SIGNATURE_ALGORITHM[CA_ALGORITHM[c.root.key]],
      signatureAlgorithm: EXPECTED_SIGNATURE_ALGORITHM[CA_ALGORITHM[c.root.key]],
      issuer: name,
      subject: name,
      notBefore: expectedTime(made - c.backdateSeconds * SECOND),
      notAfter: expectedTime(made + c.root.validityDays * DAY),
      subjectPublicKeyInfo: key.spki.toString('hex'),
      ...extensionsOf({
        [OIDS.basicConstraints]: { critical: true, value: { ca: true, pathLength: c.root.pathLength } },
        [OIDS.keyUsage]: { critical: true, value: ['keyCertSign', 'cRLSign'] },
        [OIDS.subjectKeyIdentifier]: { critical: false, value: keyIdOf(key) },
      }),
      signatureVerifies: true,
    },
  };
}

function expectedCertificate(c: Case): Expectation {
  const key = subjectKeys.get(c.subjectKey)!;
  const rootKeyId = keyIdOf(issuerKeys.get(c.root.key)!);
  const made = rootNow(c).getTime();
  const issuerNotBefore = wholeSeconds(new Date(made - c.backdateSeconds * SECOND)).getTime();
  const issuerNotAfter = wholeSeconds(new Date(made + c.root.validityDays * DAY)).getTime();
  const ski = { [OIDS.subjectKeyIdentifier]: { critical: false, value: keyIdOf(key) } };
  const aki = { [OIDS.authorityKeyIdentifier]: { critical: false, value: { keyIdentifier: rootKeyId } } };
  const pointers = {
    ...aki,
    [OIDS.cRLDistributionPoints]: { critical: false, value: [c.urls.crl] },
    [OIDS.authorityInfoAccess]: { critical: false, value: [{ method: OIDS.adOcsp, uri: c.urls.ocsp }, { method: OIDS.adCaIssuers, uri: c.urls.caCertificate }] },
  };
  const leaf = { [OIDS.basicConstraints]: { critical: true, value: { ca: false, pathLength: null } } };

  let lifetime: number;
  let subject: SubjectFields;
  let extensions: Record<string, { critical: boolean; value: unknown }>;
  const issued = c.issued;
  switch (issued.kind) {
    case 'intermediate-ca': {
      lifetime = (issued.validityDays ?? 1825) * DAY;
      subject = issued.subject;
      const pathLength = c.root.pathLength === null ? (issued.pathLength ?? null) : (issued.pathLength ?? c.root.pathLength - 1);
      extensions = { [OIDS.basicConstraints]: { critical: true, value: { ca: true, pathLength } }, [OIDS.keyUsage]: { critical: true, value: ['keyCertSign', 'cRLSign'] }, ...ski, ...pointers };
      break;
    }
    case 'end-entity': {
      const profile = profileNamed(issued.profile);
      lifetime = (issued.validityDays ?? profile.defaultValidityDays) * DAY;
      const request = issued.request;
      let san: { type: string; value: string }[] = [];
      switch (request.rule) {
        case 'thing-name':
          subject = { commonName: request.thingName ?? request.csrSubject.commonName };
          break;
        case 'dns-ip-names': {
          const names = expectedServerNames(request)!;
          subject = { commonName: names.commonName };
          san = [...names.dns.map((value) => ({ type: 'dns', value })), ...names.ips.map((ip) => ({ type: 'ip', value: canonicalIp(ip) }))];
          break;
        }
        case 'given':
          subject = request.subject;
          break;
      }
      const rsa = key.publicKey.asymmetricKeyType === 'rsa';
      extensions = {
        ...leaf,
        [OIDS.keyUsage]: { critical: true, value: keyUsageNames([...profile.keyUsage, ...(rsa ? (profile.rsaKeyUsage ?? []) : [])]) },
        [OIDS.extKeyUsage]: { critical: false, value: profile.extendedKeyUsage },
        ...ski,
        ...pointers,
        ...(san.length ? { [OIDS.subjectAltName]: { critical: false, value: san } } : {}),
        ...(profile.policies ? { [OIDS.certificatePolicies]: { critical: false, value: profile.policies } } : {}),
      };
      break;
    }
    case 'ocsp-signer':
      lifetime = issued.validityHours * HOUR;
      subject = { commonName: `OCSP Responder ${issued.authorityId}` };
      extensions = {
        ...leaf,
        [OIDS.keyUsage]: { critical: true, value: ['digitalSignature'] },
        [OIDS.extKeyUsage]: { critical: false, value: ['1.3.6.1.5.5.7.3.9'] },
        [OIDS.ocspNoCheck]: { critical: false, value: '0500' },
        ...ski,
        ...aki,
      };
      break;
    case 'iot-verification':
      lifetime = DAY;
      subject = { commonName: issued.registrationCode };
      extensions = { ...leaf, ...aki };
      break;
  }

  // docs/architecture.md "Validity and clamping": backdated but not before the issuer; the earlier of the lifetime's
  // end and the end asked for, cut to the issuer's end (and said so).
  const now = c.now.getTime();
  const notBefore = Math.max(now - c.backdateSeconds * SECOND, issuerNotBefore);
  const endsBy = endsByOf(c)?.getTime();
  const requestedEnd = endsBy !== undefined ? Math.min(now + lifetime, endsBy) : now + lifetime;
  const validityClamped = requestedEnd > issuerNotAfter;
  return {
    validityClamped,
    reading: {
      version: 3,
      serial: c.serialHex,
      tbsSignatureAlgorithm: EXPECTED_SIGNATURE_ALGORITHM[CA_ALGORITHM[c.root.key]],
      signatureAlgorithm: EXPECTED_SIGNATURE_ALGORITHM[CA_ALGORITHM[c.root.key]],
      issuer: expectedName(c.root.subject),
      subject: expectedName(subject),
      notBefore: expectedTime(notBefore),
      notAfter: expectedTime(validityClamped ? issuerNotAfter : requestedEnd),
      subjectPublicKeyInfo: key.spki.toString('hex'),
      ...extensionsOf(extensions),
      signatureVerifies: true,
    },
  };
}

function extensionsOf(extensions: Record<string, { critical: boolean; value: unknown }>): Pick<CertificateReading, 'extensionOids' | 'extensions'> {
  return { extensionOids: Object.keys(extensions).sort(), extensions };
}

// ---- comparing, and openssl --------------------------------------------------------------------------------------

/** Every difference between what each reader reads and what was expected, one line each, naming reader and certificate. */
async function mismatches(label: string, der: Buffer, issuerDer: Buffer, expected: Expectation, description: CertificateDescription): Promise<string[]> {
  const found: string[] = [];
  if (description.validityClamped !== expected.validityClamped) found.push(`${label}: validityClamped: expected ${expected.validityClamped}, described ${description.validityClamped}`);
  for (const reader of READERS) {
    let reading: CertificateReading;
    try {
      reading = await reader.read(der, issuerDer);
    } catch (err) {
      found.push(`${label}, ${reader.name}: cannot read it: ${(err as Error).message}`);
      continue;
    }
    found.push(...differences(expected.reading, reading).map((line) => `${label}, ${reader.name}: ${line}`));
  }
  return found;
}

const ssl = new OpenSslWorkspace();
after(() => ssl.cleanup());
let verifications = 0;

/** `openssl verify -x509_strict -check_ss_sig` of the certificate against its root, at a time both are valid. */
function opensslVerifies(c: Case, built: Built): string | undefined {
  // `now`, or the certificate's notBefore when that is later (its issuer's was); the root is valid a day past `now`.
  const at = Math.max(c.now.getTime(), Date.parse(expectedCertificate(c).reading.notBefore.at));
  const id = verifications++;
  const rootFile = ssl.file(`root-${id}.pem`, pemEncode('CERTIFICATE', built.rootDer));
  const certificateFile = ssl.file(`cert-${id}.pem`, pemEncode('CERTIFICATE', built.der));
  const result = ssl.run(['verify', '-x509_strict', '-check_ss_sig', '-attime', String(Math.floor(at / SECOND)), '-CAfile', rootFile, certificateFile]);
  return result.status === 0 && /: OK\s*$/.test(result.output.trim()) ? undefined : `openssl verify -x509_strict refused it: ${result.output.trim()}`;
}

async function checkCase(c: Case): Promise<void> {
  const built = await build(c);
  const found = [
    ...(await mismatches('root', built.rootDer, built.rootDer, expectedRoot(c), built.root)),
    ...(await mismatches(c.issued.kind === 'end-entity' ? `${c.issued.profile} certificate` : c.issued.kind, built.der, built.rootDer, expectedCertificate(c), built.certificate)),
  ];
  const refused = opensslVerifies(c, built);
  if (refused) found.push(refused);
  assert.deepEqual(found, [], `the certificate is not what the profile decided:\n  ${found.join('\n  ')}`);
}

// ---- the tests ---------------------------------------------------------------------------------------------------

describe('issuance equivalence: our encoder, read back by @peculiar/x509 and pkijs, is what the profile decided; openssl verifies it', () => {
  before(async () => {
    await Promise.all([
      ...CA_KEY_SPECS.map(async (spec) => issuerKeys.set(spec, await makeKey(spec))),
      ...SUBJECT_KEY_SPECS.map(async (spec) => subjectKeys.set(spec, await makeKey(spec))),
    ]);
  });
  it(`holds for ${RUNS} random cases: every profile and kind, CA and subject key specs, subjects, SANs, validity`, async () => {
    const seen = { kinds: new Map<string, number>(), clamped: 0, generalizedTime: 0, keys: new Set<string>() };
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(caseArbitrary, async (c) => {
        await checkCase(c);
        const label = c.issued.kind === 'end-entity' ? c.issued.profile : c.issued.kind;
        seen.kinds.set(label, (seen.kinds.get(label) ?? 0) + 1);
        const expected = expectedCertificate(c);
        if (expected.validityClamped) seen.clamped++;
        if (expected.reading.notAfter.encoding === 'GeneralizedTime') seen.generalizedTime++;
        seen.keys.add(`${c.root.key}→${c.subjectKey}`);
      }),
      // The error (which field differs, per reader) goes into the report with the shrunk counterexample.
      { numRuns: RUNS, seed: SEED, includeErrorInReport: true },
    );
    // What the run covered, so a generator that stopped producing a kind is noticed.
    const kinds = [...seen.kinds].map(([kind, n]) => `${kind} ${n}`).join(', ');
    console.log(`  ${RUNS} cases in ${Date.now() - started} ms (${verifications} openssl verifications): ${kinds}; ${seen.clamped} clamped, ${seen.generalizedTime} with a GeneralizedTime notAfter, ${seen.keys.size} CA→subject key pairs`);
    for (const kind of ['intermediate-ca', 'ocsp-signer', 'iot-verification', ...PROFILES.map((p) => p.name)]) assert.ok((seen.kinds.get(kind) ?? 0) > 0, `no ${kind} case was generated`);
    assert.ok(seen.clamped > 0 && seen.generalizedTime > 0, 'clamping and GeneralizedTime are exercised');
  });
});

describe('issuance equivalence: the comparison catches an encoder that drops or changes a field', () => {
  /** A server certificate with an RSA key (so keyEncipherment too), DNS and IP SANs, a GeneralizedTime notAfter. */
  const SAMPLE: Case = {
    issued: { kind: 'end-entity', profile: 'server', request: { rule: 'dns-ip-names', csrSubject: { commonName: 'Api.Example.com' }, csrDnsNames: ['api.example.com', 'www.example.com'], csrIpAddresses: ['192.0.2.7', '2001:db8::7'] }, validityDays: 397 },
    subjectKey: 'RSA_2048',
    root: { key: 'EC_P384', subject: { country: 'US', organization: 'Acme Fleet', commonName: 'Acme Root' }, validityDays: 3650, pathLength: null, ageSeconds: 86400, serialHex: '1'.repeat(40) },
    now: new Date('2049-11-01T12:00:00.250Z'),
    backdateSeconds: 300,
    urls: { crl: 'https://pki.example.com/v1/authorities/ca/crl', caCertificate: 'https://pki.example.com/v1/authorities/ca/certificate', ocsp: 'https://pki.example.com/ocsp' },
    serialHex: '2'.repeat(40),
  };

  before(async () => {
    if (!issuerKeys.has('EC_P384')) issuerKeys.set('EC_P384', await makeKey('EC_P384'));
    if (!subjectKeys.has('RSA_2048')) subjectKeys.set('RSA_2048', await makeKey('RSA_2048'));
    if (!subjectKeys.has('EC_P256')) subjectKeys.set('EC_P256', await makeKey('EC_P256'));
  });

  /** The mismatches both readers report for SAMPLE's certificate built with `tamper` applied to its template. */
  async function reported(tamper: (template: CertificateTemplate) => CertificateTemplate, signWith?: SigningKey): Promise<string[]> {
    const built = await build(SAMPLE, tamper);
    const der = signWith ? await resign(built.der, signWith) : built.der;
    return mismatches('server certificate', der, built.rootDer, expectedCertificate(SAMPLE), built.certificate);
  }

  /** Asserts that each reader reports at least one mismatch, and that each of `mentions` appears for both. */
  function assertReported(found: string[], ...mentions: string[]): void {
    for (const reader of READERS) {
      const mine = found.filter((line) => line.includes(`, ${reader.name}: `));
      assert.ok(mine.length > 0, `${reader.name} noticed nothing`);
      for (const mention of mentions) assert.ok(mine.some((line) => line.includes(mention)), `${reader.name} does not mention ${mention}:\n${mine.join('\n')}`);
    }
  }

  it('reports nothing for the certificate as the encoder makes it, and openssl verifies it', async () => {
    await checkCase(SAMPLE);
  });

  it('notices each extension dropped, whichever it is', async () => {
    const { certificate } = await build(SAMPLE);
    assert.equal(certificate.tbs.extensions.length, 8);
    for (const dropped of certificate.tbs.extensions.map((extension) => extension.extnID)) {
      const found = await reported((t) => ({ ...t, extensions: t.extensions.filter((extension) => extension.extnID !== dropped) }));
      assertReported(found, 'extensionOids', `extensions.${dropped}: expected {"critical"`);
    }
  });

  it('notices a flipped criticality on each extension', async () => {
    const { certificate } = await build(SAMPLE);
    for (const flipped of certificate.tbs.extensions) {
      const found = await reported((t) => ({
        ...t,
        extensions: t.extensions.map((e) => (e.extnID === flipped.extnID ? extension(e.extnID, !e.critical, e.value) : e)),
      }));
      assertReported(found, `extensions.${flipped.extnID}.critical: expected ${flipped.critical}, read ${!flipped.critical}`);
    }
  });

  it('notices a changed key usage, an added extension, a wrong AKI, a changed SAN and a changed subject', async () => {
    const replace = (oid: string, value: Buffer) => (t: CertificateTemplate) => ({ ...t, extensions: t.extensions.map((e) => (e.extnID === oid ? extension(oid, e.critical, value) : e)) });
    assertReported(await reported((t) => ({ ...t, extensions: t.extensions.map((e) => (e.extnID === OIDS.keyUsage ? keyUsage([KeyUsageFlags.digitalSignature]) : e)) })), `extensions.${OIDS.keyUsage}.value`);
    assertReported(await reported((t) => ({ ...t, extensions: [...t.extensions, extension('2.5.29.9', false, keyUsage([KeyUsageFlags.digitalSignature]).value)] })), 'extensionOids', 'extensions.2.5.29.9: expected nothing');
    assertReported(await reported(replace(OIDS.authorityKeyIdentifier, sequence(tlv(0x80, Buffer.alloc(20, 1))))), `extensions.${OIDS.authorityKeyIdentifier}.value.keyIdentifier`);
    assertReported(await reported(replace(OIDS.subjectAltName, sequence(tlv(0x82, Buffer.from('api.example.com')), tlv(0x87, Buffer.from([192, 0, 2, 8]))))), `extensions.${OIDS.subjectAltName}.value`);
    assertReported(await reported((t) => ({ ...t, subject: sequence(tlv(0x31, sequence(tlv(0x06, Buffer.from([0x55, 4, 3])), tlv(0x13, Buffer.from('api.example.com'))))) })), 'subject[0].type: expected "UTF8String", read "PrintableString"');
  });

  it('notices a validity one second off, a GeneralizedTime before 2050, another serial, key or signer', async () => {
    assertReported(await reported((t) => ({ ...t, notAfter: new Date(t.notAfter.getTime() + SECOND) })), 'notAfter.at');
    assertReported(await reported((t) => ({ ...t, serial: Buffer.from('3'.repeat(40), 'hex') })), 'serial');
    assertReported(await reported((t) => ({ ...t, subjectPublicKeyInfo: subjectKeys.get('EC_P256')!.spki })), 'subjectPublicKeyInfo');
    const otherSigner = signerOf(subjectKeys.get('EC_P256')!, 'ECDSA_SHA_256');
    assertReported(await reported((t) => t, otherSigner), 'signatureVerifies: expected true, read false', 'signatureAlgorithm.oid');
    // notBefore (2049) written as GeneralizedTime: a TBS assembled by hand, as signCertificate would but for the time.
    assertReported(await generalizedNotBefore(), 'notBefore.encoding: expected "UTCTime", read "GeneralizedTime"');
  });

  /** SAMPLE's certificate with its 2049 notBefore encoded as GeneralizedTime (wrong before 2050), properly signed. */
  async function generalizedNotBefore(): Promise<string[]> {
    const built = await build(SAMPLE);
    const t: CertificateTemplate = { serial: serialOf(SAMPLE.serialHex), ...built.certificate.tbs };
    const algorithm = CA_ALGORITHM[SAMPLE.root.key];
    const general = (date: Date) => tlv(0x18, Buffer.from(wholeSeconds(date).toISOString().slice(0, 19).replace(/[-:T]/g, '') + 'Z', 'latin1'));
    const tbs = sequence(
      explicit(0, smallInteger(2)),
      unsignedInteger(t.serial),
      signatureAlgorithmIdentifier(algorithm),
      t.issuer,
      sequence(general(t.notBefore), general(t.notAfter)),
      t.subject,
      t.subjectPublicKeyInfo,
      explicit(3, sequence(...t.extensions.map((extension) => extension.der))),
    );
    const signature = await signerOf(issuerKeys.get(SAMPLE.root.key)!, algorithm).sign(tbs);
    const der = sequence(tbs, signatureAlgorithmIdentifier(algorithm), tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
    return mismatches('server certificate', der, built.rootDer, expectedCertificate(SAMPLE), built.certificate);
  }

  it('prints a readable counterexample when the property fails', async () => {
    // The comparison run as a property over SAMPLE-like cases whose certificate loses its EKU: fast-check must fail,
    // shrink, and report the case and the mismatch in words.
    const broken = fc.asyncProperty(fc.constantFrom(SAMPLE), async (c) => {
      const built = await build(c, (t) => ({ ...t, extensions: t.extensions.filter((e) => e.extnID !== OIDS.extKeyUsage) }));
      const found = await mismatches('server certificate', built.der, built.rootDer, expectedCertificate(c), built.certificate);
      assert.deepEqual(found, [], `the certificate is not what the profile decided:\n  ${found.join('\n  ')}`);
    });
    const result = await fc.check(broken, { numRuns: 1, includeErrorInReport: true });
    assert.equal(result.failed, true);
    const report = fc.defaultReportMessage(result) ?? '';
    assert.match(report, /Counterexample: \[\{"issued":\{"kind":"end-entity","profile":"server"/);
    assert.match(report, /server certificate, @peculiar\/x509: extensions\.2\.5\.29\.37: expected \{"critical":false,"value":\["1\.3\.6\.1\.5\.5\.7\.3\.1"\]\}, read nothing/);
    assert.match(report, /server certificate, pkijs: extensionOids: expected/);
  });
});

/** The certificate re-signed by another key (its TBS untouched): the signature no longer verifies with the issuer. */
async function resign(der: Buffer, signer: SigningKey): Promise<Buffer> {
  const [tbs] = children(der, readTlv(der, 0));
  const tbsDer = der.subarray(tbs.start, tbs.end);
  return sequence(tbsDer, signatureAlgorithmIdentifier(signer.algorithm), tlv(0x03, Buffer.concat([Buffer.from([0]), await signer.sign(tbsDer)])));
}

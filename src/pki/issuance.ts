import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { Errors } from '../common/errors';
import { CertificateTemplate } from './certificate';
import { decodeOid, readTlv } from './der';
import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  certificatePolicies,
  crlDistributionPoint,
  EncodedExtension,
  extendedKeyUsage,
  keyIdentifier,
  keyUsage,
  subjectAltName,
  subjectKeyIdentifier,
} from './extensions';
import { buildName, SubjectFields } from './names';
import { OCSP_OIDS, ocspNoCheck } from './ocsp';
import { OID } from './oids';
import { EndEntityNames, Profile } from './profiles';

/**
 * The one place that decides what goes into a certificate the service makes: its validity (backdating, the
 * issuer's window) and every extension, for each kind — CAs, end-entity certificates under a profile, delegated
 * OCSP signers and the AWS IoT verification certificate. Services gather the facts (issuer, key, profile, names,
 * URLs, the clock's value, the configured backdate), then sign and store what comes back.
 *
 * Pure: nothing is read or written here and the clock's value is passed in, so each rule is tested as a table
 * (issuance.spec.ts) without a database or a signer.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** A CA certificate's lifetime when the request names none. */
const CA_DEFAULT_VALIDITY_DAYS = { 'root-ca': 3650, 'intermediate-ca': 1825 } as const;

/** AWS IoT reads the verification certificate once, during RegisterCACertificate: a day is ample. */
const VERIFICATION_LIFETIME_MS = DAY_MS;

/** The issuing CA, as far as what it signs depends on it (the authorities service's Issuer is one). */
export interface IssuerFacts {
  /** DER of the issuer's subject: the issuer field of what it signs, byte for byte. */
  name: Buffer;
  /** The issuer's subject key identifier: the authority key identifier of what it signs. */
  keyId: Buffer;
  notBefore: Date;
  notAfter: Date;
}

/** Where relying parties fetch the issuer's CRL and certificate and ask about status (CRL DP and AIA). */
export interface PublicationUrls {
  crl: string;
  caCertificate: string;
  ocsp: string;
}

/** What is being made, with the facts particular to that kind. */
export type CertificateKind =
  | { kind: 'root-ca'; subject: SubjectFields; validityDays?: number; pathLength: number | null }
  | { kind: 'intermediate-ca'; issuer: IssuerFacts; urls: PublicationUrls; subject: SubjectFields; validityDays?: number; pathLength: number | null }
  | {
      kind: 'end-entity';
      issuer: IssuerFacts;
      urls: PublicationUrls;
      profile: Profile;
      /** The subject and SANs the profile's subject rule gave (profiles.ts namesFor). */
      names: EndEntityNames;
      /** Already checked against the profile (validityDaysFor). */
      validityDays: number;
      /** An end before the one validityDays gives (a claim certificate ends with its claim). */
      endsBy?: Date;
    }
  | { kind: 'ocsp-signer'; issuer: IssuerFacts; authorityId: string; validityHours: number }
  | { kind: 'iot-verification'; issuer: IssuerFacts; registrationCode: string };

/** The facts every kind needs. */
export interface IssuanceFacts {
  /** The certified key, DER SubjectPublicKeyInfo. */
  subjectPublicKeyInfo: Buffer;
  /** The clock's value for this issuance. */
  now: Date;
  /** How far notBefore goes back, for devices whose clocks lag (ISSUANCE_BACKDATE_SECONDS). */
  backdateSeconds: number;
}

export type IssuanceRequest = CertificateKind & IssuanceFacts;

export interface CertificateDescription {
  /** Everything signCertificate encodes except the serial, which the caller draws. */
  tbs: Omit<CertificateTemplate, 'serial'>;
  /** The end asked for was past the issuer's own and was cut to it. */
  validityClamped: boolean;
}

/** Decides every field of the certificate described by `request`. */
export function describeCertificate(request: IssuanceRequest): CertificateDescription {
  const { subjectPublicKeyInfo: spki, now, backdateSeconds } = request;
  switch (request.kind) {
    case 'root-ca': {
      const subject = buildName(request.subject);
      const window = validityPeriod({ now, backdateSeconds, lifetimeMs: (request.validityDays ?? CA_DEFAULT_VALIDITY_DAYS['root-ca']) * DAY_MS });
      // Self-signed: its own name as issuer, and no AKI, CRL DP or AIA (nothing above it to point to).
      return describe(window, subject, subject, spki, caExtensions(spki, request.pathLength));
    }
    case 'intermediate-ca': {
      const { issuer, urls } = request;
      const window = validityPeriod({ now, backdateSeconds, issuer, lifetimeMs: (request.validityDays ?? CA_DEFAULT_VALIDITY_DAYS['intermediate-ca']) * DAY_MS });
      const extensions = [...caExtensions(spki, request.pathLength), ...issuerPointers(issuer, urls)];
      return describe(window, issuer.name, buildName(request.subject), spki, extensions);
    }
    case 'end-entity': {
      const { issuer, urls, profile, names } = request;
      const window = validityPeriod({ now, backdateSeconds, issuer, lifetimeMs: request.validityDays * DAY_MS, endsBy: request.endsBy });
      const usages = [...profile.keyUsage, ...(isRsaKey(spki) ? (profile.rsaKeyUsage ?? []) : [])];
      const extensions = [
        basicConstraints(false),
        keyUsage(usages),
        extendedKeyUsage(profile.extendedKeyUsage),
        subjectKeyIdentifier(keyIdentifier(spki)),
        ...issuerPointers(issuer, urls),
      ];
      if (names.dnsNames.length || names.ipAddresses.length) extensions.push(subjectAltName(names.dnsNames, names.ipAddresses));
      if (profile.policies) extensions.push(certificatePolicies(profile.policies));
      return describe(window, issuer.name, buildName(names.subject), spki, extensions);
    }
    case 'ocsp-signer': {
      const { issuer } = request;
      const window = validityPeriod({ now, backdateSeconds, issuer, lifetimeMs: request.validityHours * HOUR_MS });
      // A delegated responder (RFC 6960 §4.2.2.2); short-lived, so clients need not ask about its own status (§4.2.2.2.1).
      const extensions = [
        basicConstraints(false),
        keyUsage([KeyUsageFlags.digitalSignature]),
        extendedKeyUsage([OCSP_OIDS.ocspSigning]),
        ocspNoCheck(),
        subjectKeyIdentifier(keyIdentifier(spki)),
        authorityKeyIdentifier(issuer.keyId),
      ];
      return describe(window, issuer.name, buildName({ commonName: `OCSP Responder ${request.authorityId}` }), spki, extensions);
    }
    case 'iot-verification': {
      const { issuer } = request;
      const window = validityPeriod({ now, backdateSeconds, issuer, lifetimeMs: VERIFICATION_LIFETIME_MS });
      // AWS IoT checks only that the CA signed it and that its CN is the account's registration code; these are
      // the extensions it has always accepted.
      const extensions = [basicConstraints(false), authorityKeyIdentifier(issuer.keyId)];
      return describe(window, issuer.name, buildName({ commonName: request.registrationCode }), spki, extensions);
    }
  }
}

export interface ValidityRule {
  now: Date;
  backdateSeconds: number;
  /** How long the certificate lasts from `now`. */
  lifetimeMs: number;
  /** An earlier end the request asks for. */
  endsBy?: Date;
  /** The issuer's validity; absent for a self-signed root. */
  issuer?: { notBefore: Date; notAfter: Date };
}

export interface ValidityPeriod {
  notBefore: Date;
  notAfter: Date;
  validityClamped: boolean;
}

/**
 * notBefore: `now` less the backdate (devices with lagging clocks), but never before the issuer's own notBefore.
 * notAfter: `now` plus the lifetime, or the earlier end asked for; never after the issuer's notAfter — cut to it and
 * reported as validityClamped, so the caller can tell the client.
 */
export function validityPeriod(rule: ValidityRule): ValidityPeriod {
  const { now, issuer } = rule;
  const backdated = new Date(now.getTime() - rule.backdateSeconds * 1000);
  const notBefore = issuer && issuer.notBefore > backdated ? issuer.notBefore : backdated;
  const lifetimeEnd = new Date(now.getTime() + rule.lifetimeMs);
  const requested = rule.endsBy && rule.endsBy < lifetimeEnd ? rule.endsBy : lifetimeEnd;
  const validityClamped = issuer !== undefined && requested > issuer.notAfter;
  return { notBefore, notAfter: validityClamped ? issuer.notAfter : requested, validityClamped };
}

/** The lifetime of an end-entity certificate: the request's, or the profile's default; never past its maximum. */
export function validityDaysFor(profile: Profile, requestedDays: number | undefined): number {
  const days = requestedDays ?? profile.defaultValidityDays;
  if (days > profile.maxValidityDays) {
    throw Errors.validityTooLong(`profile ${profile.name} allows at most ${profile.maxValidityDays} days`);
  }
  return days;
}

/**
 * RFC 5280 §4.2.1.9: a new intermediate must leave its parent's path length satisfied; without a request it takes
 * the most the parent allows. A root (no parent) has what was asked, or none (unlimited).
 */
export function caPathLength(parent: { id: string; pathLength: number | null } | undefined, requested: number | undefined): number | null {
  if (!parent || parent.pathLength === null) return requested ?? null;
  if (parent.pathLength === 0) {
    throw Errors.pathLengthExceeded(`authority ${parent.id} has pathLength 0 and cannot sign intermediates`);
  }
  const max = parent.pathLength - 1;
  if (requested !== undefined && requested > max) {
    throw Errors.pathLengthExceeded(`pathLength must be at most ${max} under authority ${parent.id}`);
  }
  return requested ?? max;
}

function describe(window: ValidityPeriod, issuer: Buffer, subject: Buffer, spki: Buffer, extensions: EncodedExtension[]): CertificateDescription {
  return {
    tbs: { issuer, subject, subjectPublicKeyInfo: spki, notBefore: window.notBefore, notAfter: window.notAfter, extensions },
    validityClamped: window.validityClamped,
  };
}

function caExtensions(spki: Buffer, pathLength: number | null): EncodedExtension[] {
  return [basicConstraints(true, pathLength ?? undefined), keyUsage([KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign]), subjectKeyIdentifier(keyIdentifier(spki))];
}

/** AKI, CRL distribution point and AIA (OCSP responder, issuer certificate): how a relying party finds the issuer. */
function issuerPointers(issuer: IssuerFacts, urls: PublicationUrls): EncodedExtension[] {
  return [authorityKeyIdentifier(issuer.keyId), crlDistributionPoint(urls.crl), authorityInfoAccess(urls.caCertificate, urls.ocsp)];
}

/** Whether the SubjectPublicKeyInfo's algorithm is rsaEncryption. */
function isRsaKey(spki: Buffer): boolean {
  const outer = readTlv(spki, 0);
  const algorithm = readTlv(spki, outer.contentStart);
  return decodeOid(spki, readTlv(spki, algorithm.contentStart)) === OID.rsaEncryption;
}

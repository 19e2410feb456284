import { isIP } from 'node:net';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { Errors } from '../common/errors';
import { ParsedCsr } from './csr';
import { SubjectFields } from './names';
import { OID } from './oids';

/**
 * A certificate profile decides every extension and the subject of an end-entity certificate.
 * Nothing from a CSR is copied unless the profile's rules below say so.
 */
export interface Profile {
  name: string;
  description: string;
  defaultValidityDays: number;
  maxValidityDays: number;
  keyUsage: KeyUsageFlags[];
  /** Added to keyUsage when the certified key is RSA (the key-usage rule per key type). */
  rsaKeyUsage?: KeyUsageFlags[];
  extendedKeyUsage: string[];
  /** Certificate policies asserted (the claim profile's marks a certificate claim-only). */
  policies?: string[];
  /** How the subject and SANs are derived: from the thing name, from the CSR's names, or given by the service. */
  subjectRule: 'thing-name' | 'dns-ip-names' | 'given';
  /** Which kind of authority issues it (AuthorityUsage). */
  issuedBy: 'devices' | 'claims';
  /** Used by the service itself (claims), never selectable through POST /v1/certificates. */
  internal?: boolean;
  /** How a certificate under this profile may renew itself (POST /v1/certificates/renew); absent = never. */
  renewal?: RenewalPolicy;
  /**
   * The managed AWS IoT policy template attached to its certificates when neither the claim nor the CA registration
   * names a policy (device certificates get the thing-scoped default).
   */
  iotPolicyTemplate?: string;
}

export interface RenewalPolicy {
  /** Renewal opens when this fraction of the lifetime is left (1/3: the last third), unless a campaign covers it. */
  windowFraction: number;
  /** Whether the new certificate may certify the same key (default: a new key is required; RENEWAL_SAME_KEY_PROFILES). */
  allowSameKey: boolean;
  /** How many days after expiry a certificate may still renew itself; 0 = not at all (RENEWAL_AFTER_EXPIRY_DAYS). */
  afterExpiryDays: number;
}

const DEFAULT_RENEWAL: RenewalPolicy = { windowFraction: 1 / 3, allowSameKey: false, afterExpiryDays: 0 };

/** AWS IoT thing name rule: 1–128 characters of [a-zA-Z0-9:_-]. */
export const THING_NAME_PATTERN = /^[a-zA-Z0-9:_-]{1,128}$/;

const PROFILES: Record<string, Profile> = {
  device: {
    name: 'device',
    description: 'AWS IoT device client certificate: CN = thing name, clientAuth, digitalSignature',
    defaultValidityDays: 365,
    maxValidityDays: 3650,
    keyUsage: [KeyUsageFlags.digitalSignature],
    extendedKeyUsage: [OID.clientAuth],
    subjectRule: 'thing-name',
    issuedBy: 'devices',
    renewal: DEFAULT_RENEWAL,
    iotPolicyTemplate: 'fleet-default',
  },
  server: {
    name: 'server',
    description: 'TLS server certificate: DNS/IP SANs from the CSR, serverAuth',
    defaultValidityDays: 90,
    maxValidityDays: 397,
    keyUsage: [KeyUsageFlags.digitalSignature],
    // TLS with RSA key transport encrypts the premaster secret to the server's key.
    rsaKeyUsage: [KeyUsageFlags.keyEncipherment],
    extendedKeyUsage: [OID.serverAuth],
    subjectRule: 'dns-ip-names',
    issuedBy: 'devices',
    renewal: DEFAULT_RENEWAL,
  },
  claim: {
    name: 'claim',
    description: 'Factory claim certificate: clientAuth plus the claim-only policy; accepted by /v1/provisioning/exchange alone',
    defaultValidityDays: 365,
    maxValidityDays: 3650,
    keyUsage: [KeyUsageFlags.digitalSignature],
    extendedKeyUsage: [OID.clientAuth],
    policies: [OID.fleetPkiClaimPolicy],
    subjectRule: 'given',
    issuedBy: 'claims',
    internal: true,
  },
};

/** A profile callers may ask for by name (internal ones are unknown to them). */
export function findProfile(name: string, options: { internal?: boolean } = {}): Profile {
  const profile = Object.prototype.hasOwnProperty.call(PROFILES, name) ? PROFILES[name] : undefined;
  if (!profile || (profile.internal && !options.internal)) {
    throw Errors.profileNotFound(`unknown profile "${name}"; known: ${listProfiles().map((p) => p.name).join(', ')}`);
  }
  return profile;
}

/** The profiles callers may ask for; with `internal: true`, every profile (the property test covers them all). */
export function listProfiles(options: { internal?: boolean } = {}): Profile[] {
  return Object.values(PROFILES).filter((profile) => options.internal || !profile.internal);
}

export interface EndEntityNames {
  subject: SubjectFields;
  dnsNames: string[];
  ipAddresses: string[];
  thingName?: string;
}

/** Applies the profile's subject rule to the request. */
export function namesFor(profile: Profile, csr: ParsedCsr, thingName: string | undefined, given?: SubjectFields): EndEntityNames {
  switch (profile.subjectRule) {
    case 'thing-name':
      return deviceNames(csr, thingName);
    case 'dns-ip-names':
      return serverNames(csr);
    case 'given':
      if (!given) throw new Error(`profile ${profile.name} needs a subject from the service`);
      return { subject: given, dnsNames: [], ipAddresses: [] };
  }
}

/** Devices: CN is the thing name (AWS JITP templates read CommonName); no SANs. */
function deviceNames(csr: ParsedCsr, thingName: string | undefined): EndEntityNames {
  const name = thingName ?? csr.subject.commonName;
  if (name === undefined) {
    throw Errors.invalidSubject('device certificates need a thingName or a CSR common name');
  }
  if (!THING_NAME_PATTERN.test(name) || name.length > 64) {
    throw Errors.invalidSubject('thing name must be 1-64 characters of letters, digits, ":", "_" or "-"');
  }
  return { subject: { commonName: name }, dnsNames: [], ipAddresses: [], thingName: name };
}

const MAX_SERVER_NAMES = 100;

/**
 * Servers: DNS names and IP addresses from the CSR's SANs, plus its CN when that is a host name or an
 * address (a descriptive CN such as "My Web Server" is ignored, never copied). Wildcards are refused.
 * The certificate's CN is the first name short enough for it (ub-common-name, 64); the SANs carry them all.
 */
function serverNames(csr: ParsedCsr): EndEntityNames {
  if (csr.otherNames > 0) throw Errors.sanNotAllowed('only DNS and IP subject alternative names can be requested');
  const dnsNames = new Set<string>();
  const ipAddresses = new Set<string>();
  const cn = csr.subject.commonName;
  if (cn !== undefined) {
    if (isIP(cn)) ipAddresses.add(cn);
    else if (cn.startsWith('*.')) checkHostName(cn);
    else if (isHostName(cn)) dnsNames.add(cn.toLowerCase());
  }
  for (const name of csr.dnsNames) dnsNames.add(checkHostName(name));
  for (const ip of csr.ipAddresses) {
    if (!isIP(ip)) throw Errors.sanNotAllowed('an IP address SAN is malformed');
    ipAddresses.add(ip);
  }
  if (dnsNames.size + ipAddresses.size === 0) {
    throw Errors.sanNotAllowed('server certificates need at least one DNS name or IP address');
  }
  if (dnsNames.size + ipAddresses.size > MAX_SERVER_NAMES) {
    throw Errors.sanNotAllowed(`server certificates carry at most ${MAX_SERVER_NAMES} names`);
  }
  const commonName = [...dnsNames, ...ipAddresses].find((name) => name.length <= 64);
  if (!commonName) throw Errors.sanNotAllowed('at least one name must be 64 characters or shorter, to serve as the CN');
  return { subject: { commonName }, dnsNames: [...dnsNames], ipAddresses: [...ipAddresses] };
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function isHostName(raw: string): boolean {
  const name = raw.toLowerCase();
  const labels = name.split('.');
  return name.length <= 253 && labels.length >= 2 && labels.every((label) => LABEL.test(label));
}

function checkHostName(raw: string): string {
  if (raw.startsWith('*.')) throw Errors.sanNotAllowed(`wildcard names are not allowed by the server profile: "${raw}"`);
  if (!isHostName(raw)) {
    throw Errors.sanNotAllowed('DNS names must be fully qualified host names of letters, digits and hyphens');
  }
  return raw.toLowerCase();
}

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
  extendedKeyUsage: string[];
  /** How the subject and SANs are derived from the request. */
  subjectRule: 'thing-name' | 'dns-ip-names';
}

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
  },
  server: {
    name: 'server',
    description: 'TLS server certificate: DNS/IP SANs from the CSR, serverAuth',
    defaultValidityDays: 90,
    maxValidityDays: 397,
    keyUsage: [KeyUsageFlags.digitalSignature],
    extendedKeyUsage: [OID.serverAuth],
    subjectRule: 'dns-ip-names',
  },
};

export function findProfile(name: string): Profile {
  const profile = Object.prototype.hasOwnProperty.call(PROFILES, name) ? PROFILES[name] : undefined;
  if (!profile) throw Errors.profileNotFound(`unknown profile "${name}"; known: ${Object.keys(PROFILES).join(', ')}`);
  return profile;
}

export function listProfiles(): Profile[] {
  return Object.values(PROFILES);
}

export interface EndEntityNames {
  subject: SubjectFields;
  dnsNames: string[];
  ipAddresses: string[];
  thingName?: string;
}

/** Applies the profile's subject rule to the request. */
export function namesFor(profile: Profile, csr: ParsedCsr, thingName: string | undefined): EndEntityNames {
  return profile.subjectRule === 'thing-name' ? deviceNames(csr, thingName) : serverNames(csr);
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

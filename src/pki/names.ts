import { CONTROL_CHARS } from '../common/text';
import { oid, printableString, sequence, set, utf8String } from './der-writer';
import { OID } from './oids';

/** The subject fields the API accepts, in the order they are encoded (most significant first). */
export interface SubjectFields {
  country?: string;
  state?: string;
  locality?: string;
  organization?: string;
  organizationalUnit?: string;
  commonName?: string;
}

const FIELD_OIDS: [keyof SubjectFields, string, string][] = [
  ['country', OID.country, 'C'],
  ['state', OID.state, 'ST'],
  ['locality', OID.locality, 'L'],
  ['organization', OID.organization, 'O'],
  ['organizationalUnit', OID.organizationalUnit, 'OU'],
  ['commonName', OID.commonName, 'CN'],
];

/** RFC 5280 upper bounds (ub-*) per attribute. */
const MAX_LENGTH: Record<keyof SubjectFields, number> = {
  country: 2,
  state: 128,
  locality: 128,
  organization: 64,
  organizationalUnit: 64,
  commonName: 64,
};


/** Returns a reason the value is unacceptable for that field, or undefined when it is fine. */
export function subjectFieldProblem(field: keyof SubjectFields, value: string): string | undefined {
  if (value.length === 0) return `${field} is empty`;
  if (CONTROL_CHARS.test(value)) return `${field} contains control characters`;
  if (value.trim() !== value) return `${field} has leading or trailing spaces`;
  if (value.length > MAX_LENGTH[field]) return `${field} is longer than ${MAX_LENGTH[field]} characters`;
  if (field === 'country' && !/^[A-Z]{2}$/.test(value)) return 'country must be two upper-case letters (ISO 3166)';
  return undefined;
}

/** The DER of a Name with one attribute per RDN; country is PrintableString (X520countryName), the rest UTF8String. */
export function buildName(fields: SubjectFields): Buffer {
  const rdns: Buffer[] = [];
  for (const [field, type] of FIELD_OIDS) {
    const value = fields[field];
    if (value === undefined) continue;
    rdns.push(set(sequence(oid(type), field === 'country' ? printableString(value) : utf8String(value))));
  }
  return sequence(...rdns);
}

/** OpenSSL-style one-line rendering, e.g. "C=US, O=Acme, CN=Acme Root", for display and search. */
export function formatName(fields: SubjectFields): string {
  return FIELD_OIDS.filter(([field]) => fields[field] !== undefined)
    .map(([field, , short]) => `${short}=${fields[field]}`)
    .join(', ');
}

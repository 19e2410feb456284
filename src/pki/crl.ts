import { bitString, explicit, sequence, smallInteger, time, tlv, unsignedInteger } from './der-writer';
import { authorityKeyIdentifier, extension, EXTENSION_OIDS } from './extensions';
import { signatureAlgorithmIdentifier, SigningKey } from './signing';

/** RFC 5280 §5.3.1 reason codes we accept. certificateHold and removeFromCRL are not offered: revocation is final. */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'privilegeWithdrawn',
  'aACompromise',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** CRLReason ENUMERATED values (RFC 5280 §5.3.1), in CRL entries and OCSP revokedInfo alike. */
export const REASON_CODES: Record<RevocationReason, number> = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
  aACompromise: 10,
};

export interface CrlEntry {
  serial: Buffer;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlTemplate {
  /** DER of the issuer Name (the CA's subject, byte for byte). */
  issuer: Buffer;
  issuerKeyId: Buffer;
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: CrlEntry[];
}

/** The reasonCode entry extension, one DER per reason (shared by every entry with that reason). */
const REASON_EXTENSIONS = new Map<RevocationReason, Buffer>(
  REVOCATION_REASONS.map((reason) => [reason, sequence(extension(EXTENSION_OIDS.cRLReason, false, tlv(0x0a, Buffer.from([REASON_CODES[reason]]))).der)]),
);

/**
 * Encodes and signs a v2 CRL with AKI and CRL number (RFC 5280 §5.1, §5.2.1, §5.2.3), in one pass over
 * the entries (linear in their number).
 */
export async function signCrl(template: CrlTemplate, issuerKey: SigningKey): Promise<Buffer> {
  const signatureAlgorithm = signatureAlgorithmIdentifier(issuerKey.algorithm);
  const entries = template.entries.map((entry) =>
    sequence(
      unsignedInteger(entry.serial),
      time(entry.revokedAt),
      // RFC 5280 §5.3.1: reasonCode unspecified SHOULD be absent.
      ...(entry.reason === 'unspecified' ? [] : [REASON_EXTENSIONS.get(entry.reason)!]),
    ),
  );
  const tbs = sequence(
    smallInteger(1), // v2
    signatureAlgorithm,
    template.issuer,
    time(template.thisUpdate),
    time(template.nextUpdate),
    ...(entries.length ? [sequence(...entries)] : []),
    explicit(
      0,
      sequence(
        authorityKeyIdentifier(template.issuerKeyId).der,
        extension(EXTENSION_OIDS.cRLNumber, false, smallInteger(template.crlNumber)).der,
      ),
    ),
  );
  const signature = await issuerKey.sign(tbs);
  return sequence(tbs, signatureAlgorithm, bitString(signature));
}

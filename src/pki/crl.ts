import { AsnConvert } from '@peculiar/asn1-schema';
import {
  CertificateList,
  CRLNumber,
  CRLReason,
  CRLReasons,
  Extension,
  Extensions,
  id_ce_cRLNumber,
  id_ce_cRLReasons,
  Name,
  RevokedCertificate,
  TBSCertList,
  Time,
  Version,
} from '@peculiar/asn1-x509';
import { OctetString } from '@peculiar/asn1-schema';
import { authorityKeyIdentifier } from './extensions';
import { toArrayBuffer } from './certificate';
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

export interface CrlEntry {
  serial: Buffer;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlTemplate {
  issuer: Name;
  issuerKeyId: Buffer;
  crlNumber: number;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: CrlEntry[];
}

/** Encodes and signs a v2 CRL with AKI and CRL number (RFC 5280 §5.2.1, §5.2.3). */
export async function signCrl(template: CrlTemplate, issuerKey: SigningKey): Promise<Buffer> {
  const signatureAlgorithm = signatureAlgorithmIdentifier(issuerKey.algorithm);
  const revoked = template.entries.map(
    (entry) =>
      new RevokedCertificate({
        userCertificate: toArrayBuffer(entry.serial),
        revocationDate: new Time(entry.revokedAt),
        // RFC 5280 §5.3.1: reasonCode unspecified SHOULD be absent.
        crlEntryExtensions:
          entry.reason === 'unspecified'
            ? undefined
            : new Extensions([
                new Extension({
                  extnID: id_ce_cRLReasons,
                  critical: false,
                  extnValue: new OctetString(AsnConvert.serialize(new CRLReason(CRLReasons[entry.reason]))),
                }),
              ]),
      }),
  );
  const tbs = new TBSCertList({
    version: Version.v2,
    signature: signatureAlgorithm,
    issuer: template.issuer,
    thisUpdate: new Time(template.thisUpdate),
    nextUpdate: new Time(template.nextUpdate),
    revokedCertificates: revoked.length ? revoked : undefined,
    crlExtensions: new Extensions([
      authorityKeyIdentifier(template.issuerKeyId),
      new Extension({
        extnID: id_ce_cRLNumber,
        critical: false,
        extnValue: new OctetString(AsnConvert.serialize(new CRLNumber(template.crlNumber))),
      }),
    ]),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = await issuerKey.sign(tbsDer);
  return Buffer.from(
    AsnConvert.serialize(new CertificateList({ tbsCertList: tbs, signatureAlgorithm, signature: toArrayBuffer(signature) })),
  );
}

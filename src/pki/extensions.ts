import { createHash } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AccessDescription,
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  CRLDistributionPoints,
  DistributionPoint,
  DistributionPointName,
  ExtendedKeyUsage,
  Extension,
  GeneralName,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_cRLDistributionPoints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_pe_authorityInfoAccess,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';
import { OID } from './oids';

/** Builders for the X.509 v3 extensions our profiles use (RFC 5280 §4.2). */

function extension(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

export function basicConstraints(ca: boolean, pathLength?: number): Extension {
  return extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: ca, pathLenConstraint: ca ? pathLength : undefined }));
}

export function keyUsage(flags: KeyUsageFlags[]): Extension {
  return extension(id_ce_keyUsage, true, new KeyUsage(flags.reduce((all, flag) => all | flag, 0)));
}

export function extendedKeyUsage(oids: string[]): Extension {
  return extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage(oids));
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(spki: Buffer): Buffer {
  const info = AsnConvert.parse(spki, SubjectPublicKeyInfo);
  return createHash('sha1').update(Buffer.from(info.subjectPublicKey)).digest();
}

export function subjectKeyIdentifier(keyId: Buffer): Extension {
  return extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyId));
}

export function authorityKeyIdentifier(issuerKeyId: Buffer): Extension {
  return extension(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(issuerKeyId) }));
}

export function crlDistributionPoint(url: string): Extension {
  const point = new DistributionPoint({
    distributionPoint: new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: url })] }),
  });
  return extension(id_ce_cRLDistributionPoints, false, new CRLDistributionPoints([point]));
}

export function authorityInfoAccess(caIssuersUrl: string): Extension {
  const access = new AccessDescription({
    accessMethod: OID.caIssuers,
    accessLocation: new GeneralName({ uniformResourceIdentifier: caIssuersUrl }),
  });
  return extension(id_pe_authorityInfoAccess, false, new AuthorityInfoAccessSyntax([access]));
}

/** SAN is critical when the subject is empty (RFC 5280 §4.2.1.6); our subjects always carry a CN. */
export function subjectAltName(dnsNames: string[], ipAddresses: string[]): Extension {
  const names = [
    ...dnsNames.map((dNSName) => new GeneralName({ dNSName })),
    ...ipAddresses.map((iPAddress) => new GeneralName({ iPAddress })),
  ];
  return extension(id_ce_subjectAltName, false, new SubjectAlternativeName(names));
}

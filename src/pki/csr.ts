import { verify as verifySignature } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { Extensions, GeneralName, id_ce_subjectAltName, SubjectAlternativeName } from '@peculiar/asn1-x509';
import { Errors } from '../common/errors';
import { firstInnerElement, pemDecode } from './der';
import { checkPublicKey, PublicKeyInfo } from './key-policy';
import { readName, SubjectFields, subjectFieldProblem } from './names';
import { OID } from './oids';

/** The parts of a CSR that issuance may use. Nothing else from the request reaches a certificate. */
export interface ParsedCsr {
  subject: SubjectFields;
  publicKeySpki: Buffer;
  publicKey: PublicKeyInfo;
  dnsNames: string[];
  ipAddresses: string[];
}

/** Signature algorithms accepted on a CSR (proof of possession): SHA-256 or stronger, RSA PKCS#1 v1.5 or ECDSA. */
const SIGNATURE_HASHES: Record<string, { hash: string; keyType: 'RSA' | 'EC' }> = {
  [OID.sha256WithRsa]: { hash: 'sha256', keyType: 'RSA' },
  [OID.sha384WithRsa]: { hash: 'sha384', keyType: 'RSA' },
  [OID.sha512WithRsa]: { hash: 'sha512', keyType: 'RSA' },
  [OID.ecdsaWithSha256]: { hash: 'sha256', keyType: 'EC' },
  [OID.ecdsaWithSha384]: { hash: 'sha384', keyType: 'EC' },
  [OID.ecdsaWithSha512]: { hash: 'sha512', keyType: 'EC' },
};

const WEAK_SIGNATURES: Record<string, string> = {
  [OID.sha1WithRsa]: 'sha1WithRSAEncryption',
  [OID.ecdsaWithSha1]: 'ecdsa-with-SHA1',
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
};

export const MAX_CSR_PEM_LENGTH = 16 * 1024;

/**
 * Parses a PEM CSR and checks it: well-formed DER, signature valid (proof of possession), signature
 * algorithm SHA-256+, key within policy, subject free of control characters. Throws typed errors.
 */
export function parseCsr(pem: string): ParsedCsr {
  if (pem.length > MAX_CSR_PEM_LENGTH) throw Errors.invalidCsr(`CSR is longer than ${MAX_CSR_PEM_LENGTH} characters`);
  const der = pemDecode(pem, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);
  if (!der) throw Errors.invalidCsr('csr must be a PEM block labelled CERTIFICATE REQUEST');

  let csr: CertificationRequest;
  let signedBytes: Buffer;
  try {
    signedBytes = firstInnerElement(der);
    csr = AsnConvert.parse(der, CertificationRequest);
  } catch {
    throw Errors.invalidCsr('csr is not a valid DER-encoded PKCS#10 request');
  }

  // The key first: an unacceptable key (RSA-1024, Ed25519, secp256k1) is named as such, whatever it signed with.
  const publicKeySpki = Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo.subjectPKInfo));
  const publicKey = checkPublicKey(publicKeySpki);

  const sigOid = csr.signatureAlgorithm.algorithm;
  if (WEAK_SIGNATURES[sigOid]) {
    throw Errors.weakSignatureAlgorithm(`CSR is signed with ${WEAK_SIGNATURES[sigOid]}; use SHA-256 or stronger`);
  }
  const sigAlg = SIGNATURE_HASHES[sigOid];
  if (!sigAlg) throw Errors.weakSignatureAlgorithm(`CSR signature algorithm ${sigOid} is not supported`);
  if (publicKey.type !== sigAlg.keyType) throw Errors.invalidCsr('CSR signature algorithm does not match its key');

  let valid = false;
  try {
    valid = verifySignature(sigAlg.hash, signedBytes, publicKey.keyObject, Buffer.from(csr.signature));
  } catch {
    valid = false;
  }
  if (!valid) throw Errors.csrSignatureInvalid('CSR signature does not verify with its own public key');

  const { fields, repeated } = readName(csr.certificationRequestInfo.subject);
  if (repeated.length) throw Errors.invalidSubject(`CSR subject repeats ${repeated.join(', ')}`);
  for (const [field, value] of Object.entries(fields) as [keyof SubjectFields, string][]) {
    const problem = subjectFieldProblem(field, value);
    if (problem) throw Errors.invalidSubject(`CSR subject ${problem}`);
  }

  const { dnsNames, ipAddresses } = requestedSans(csr);
  return { subject: fields, publicKeySpki, publicKey, dnsNames, ipAddresses };
}

/** SANs requested in the extensionRequest attribute. Only profiles that allow SANs ever use them. */
function requestedSans(csr: CertificationRequest): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const attribute of csr.certificationRequestInfo.attributes) {
    if (attribute.type !== OID.extensionRequest) continue;
    for (const value of attribute.values) {
      let extensions: Extensions;
      try {
        extensions = AsnConvert.parse(value, Extensions);
      } catch {
        throw Errors.invalidCsr('CSR extensionRequest attribute is malformed');
      }
      for (const extension of extensions) {
        if (extension.extnID !== id_ce_subjectAltName) continue;
        let names: GeneralName[];
        try {
          names = AsnConvert.parse(extension.extnValue.buffer, SubjectAlternativeName);
        } catch {
          throw Errors.invalidCsr('CSR subjectAltName extension is malformed');
        }
        for (const name of names) {
          if (name.dNSName !== undefined) dnsNames.push(name.dNSName);
          else if (name.iPAddress !== undefined) ipAddresses.push(name.iPAddress);
          else throw Errors.sanNotAllowed('only DNS and IP subject alternative names can be requested');
        }
      }
    }
  }
  return { dnsNames, ipAddresses };
}

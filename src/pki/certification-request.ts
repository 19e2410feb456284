import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { readTlv } from './der';
import { bitString, implicitConstructed, oid, sequence, set, smallInteger } from './der-writer';
import { basicConstraints, keyUsage } from './extensions';
import { OID } from './oids';
import { signatureAlgorithmIdentifier, SigningKey } from './signing';

/**
 * The PKCS#10 request (RFC 2986) for a CA whose certificate an external (offline) root signs
 * (docs/external-roots.md). The key signs it through its Signer, so it never leaves its backend (KMS, the local
 * store): the signature is the proof of possession the root's operator checks (`openssl req -verify`).
 *
 * It asks, in an extensionRequest attribute (RFC 2985 §5.4.2), for what the service needs of its own certificate:
 * basicConstraints CA:TRUE (with the path length when one is given) and keyUsage keyCertSign + cRLSign. The root's
 * operator decides: the uploaded certificate is checked for them, not this request.
 */
export async function caCertificationRequest(args: { subject: Buffer; subjectPublicKeyInfo: Buffer; pathLength: number | null; key: SigningKey }): Promise<Buffer> {
  const extensions = [basicConstraints(true, args.pathLength ?? undefined), keyUsage([KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign])];
  const extensionRequest = sequence(oid(OID.extensionRequest), set(sequence(...extensions.map((extension) => extension.der))));
  const info = sequence(
    smallInteger(0), // version 1
    args.subject,
    args.subjectPublicKeyInfo,
    implicitConstructed(0, extensionRequest), // attributes [0] IMPLICIT SET OF Attribute
  );
  const algorithm = signatureAlgorithmIdentifier(args.key.algorithm);
  return sequence(info, algorithm, bitString(await args.key.sign(info)));
}


/** The subject and key of a request we made (no re-encoding: the bytes as signed). */
export function certificationRequestParts(der: Buffer): { subject: Buffer; subjectPublicKeyInfo: Buffer } {
  const request = readTlv(der, 0);
  const info = readTlv(der, request.contentStart);
  const version = readTlv(der, info.contentStart);
  const subject = readTlv(der, version.end);
  const spki = readTlv(der, subject.end);
  return { subject: der.subarray(subject.start, subject.end), subjectPublicKeyInfo: der.subarray(spki.start, spki.end) };
}

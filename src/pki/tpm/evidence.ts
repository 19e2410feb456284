import { Errors } from '../../common/errors';
import { parseCertifyInfo, parseSignature, TpmCertifyInfo, verifyTpmSignature } from './attest';
import { attributeNames, hasAttribute, parseTpm2bPublic, TpmPublic } from './public';

/** What a device sends to prove its key is TPM-resident: the AK, the key, and the AK's TPM2_Certify of the key. */
export interface KeyAttestationEvidence {
  /** TPM2B_PUBLIC of the attestation key (tpm2_createak -u). */
  akPublic: Buffer;
  /** TPM2B_PUBLIC of the application key (tpm2_create -u / tpm2_readpublic -o). */
  keyPublic: Buffer;
  /** TPMS_ATTEST from TPM2_Certify(key, AK) (tpm2_certify -o). */
  certifyInfo: Buffer;
  /** TPMT_SIGNATURE over certifyInfo by the AK (tpm2_certify -s, default tss format). */
  certifySignature: Buffer;
}

export interface VerifiedKeyAttestation {
  ak: TpmPublic;
  key: TpmPublic;
  certify: TpmCertifyInfo;
}

const HARDWARE_BOUND = ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin'] as const;

/**
 * Checks that `evidence` shows a key generated inside a TPM and unable to leave it, certified by a restricted
 * signing key of the same TPM, and that the key is `csrSpki`:
 * - the AK is fixedTPM, fixedParent, sensitiveDataOrigin, restricted and sign (and not decrypt): a key the TPM
 *   itself made and that signs only what the TPM generated (TPM_GENERATED magic), so a certify by it is the TPM's word;
 * - the signature verifies over the exact TPMS_ATTEST bytes before any of its fields is used;
 * - the certified name equals the name computed from the key's public area, which binds the public area sent here;
 * - the key's attributes say hardware-bound (fixedTPM, fixedParent, sensitiveDataOrigin) and it can sign;
 * - its public key is the CSR's.
 * That the AK shares a TPM with the certified EK is proven after, by credential activation.
 */
export function verifyKeyAttestation(evidence: KeyAttestationEvidence, csrSpki: Buffer): VerifiedKeyAttestation {
  const ak = parseTpm2bPublic(evidence.akPublic, 'akPublic');
  const key = parseTpm2bPublic(evidence.keyPublic, 'keyPublic');
  const missing = [...HARDWARE_BOUND, 'restricted', 'sign'].filter((a) => !hasAttribute(ak, a as (typeof HARDWARE_BOUND)[number]));
  if (missing.length || hasAttribute(ak, 'decrypt')) {
    throw Errors.tpmAkNotRestrictedSigning(`the AK must be a restricted signing key made in the TPM; it has ${attributeNames(ak.attributes).join('|') || 'no attributes'}`);
  }
  const signature = parseSignature(evidence.certifySignature);
  if (!verifyTpmSignature(ak, evidence.certifyInfo, signature)) {
    throw Errors.tpmAttestationSignatureInvalid('the TPM2_Certify signature does not verify with the AK');
  }
  const certify = parseCertifyInfo(evidence.certifyInfo);
  if (!certify.name.equals(key.name)) throw Errors.tpmAttestedNameMismatch('the certified object is not the key whose public area was sent');
  const keyMissing = HARDWARE_BOUND.filter((a) => !hasAttribute(key, a));
  if (keyMissing.length) throw Errors.tpmKeyNotHardwareBound(`the certified key is not ${keyMissing.join(', ')}: it could exist outside this TPM`);
  if (!hasAttribute(key, 'sign') || hasAttribute(key, 'restricted')) throw Errors.tpmKeyNotHardwareBound('the certified key must be an unrestricted signing key');
  if (!key.spki.equals(csrSpki)) throw Errors.tpmCsrKeyMismatch('the CSR key is not the certified TPM key');
  return { ak, key, certify };
}

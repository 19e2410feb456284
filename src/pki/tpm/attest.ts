import { KeyObject, constants, verify } from 'node:crypto';
import { Errors } from '../../common/errors';
import { TPM_ALG, TPM_CURVES, TPM_GENERATED, TPM_HASHES, TPM_ST } from './constants';
import { malformed, TpmReader } from './marshal';
import { TpmPublic } from './public';

/** A TPMS_ATTEST of type TPM_ST_ATTEST_CERTIFY (Part 2, 10.12.8), as TPM2_Certify signs it. */
export interface TpmCertifyInfo {
  qualifiedSigner: Buffer;
  extraData: Buffer;
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: bigint;
  /** The name of the certified object. */
  name: Buffer;
  qualifiedName: Buffer;
}

/** A TPMT_SIGNATURE (Part 2, 11.3.4): RSASSA, RSAPSS or ECDSA. */
export interface TpmSignature {
  sigAlg: number;
  hashAlg: number;
  /** RSA: the signature; ECDSA: r and s. */
  rsa?: Buffer;
  ecdsa?: { r: Buffer; s: Buffer };
}

/** Parses a TPMS_ATTEST that must be a certify structure; anything else (or trailing bytes) is refused. */
export function parseCertifyInfo(data: Buffer): TpmCertifyInfo {
  const what = 'TPMS_ATTEST';
  const r = new TpmReader(data, what);
  const magic = r.u32();
  if (magic !== TPM_GENERATED) throw malformed(what, 'magic is not TPM_GENERATED_VALUE');
  const type = r.u16();
  if (type !== TPM_ST.ATTEST_CERTIFY) throw malformed(what, `type 0x${type.toString(16)} is not TPM_ST_ATTEST_CERTIFY`);
  const qualifiedSigner = r.tpm2b(68);
  const extraData = r.tpm2b(64);
  const clock = r.u64();
  const resetCount = r.u32();
  const restartCount = r.u32();
  const safe = r.u8() === 1;
  const firmwareVersion = r.u64();
  const name = r.tpm2b(68);
  const qualifiedName = r.tpm2b(68);
  r.end();
  return { qualifiedSigner, extraData, clock, resetCount, restartCount, safe, firmwareVersion, name, qualifiedName };
}

/** Parses a TPMT_SIGNATURE (what tpm2_certify -s writes by default, `-f tss`). */
export function parseSignature(data: Buffer): TpmSignature {
  const what = 'TPMT_SIGNATURE';
  const r = new TpmReader(data, what);
  const sigAlg = r.u16();
  let out: TpmSignature;
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    out = { sigAlg, hashAlg: r.u16(), rsa: r.tpm2b(512) };
  } else if (sigAlg === TPM_ALG.ECDSA) {
    out = { sigAlg, hashAlg: r.u16(), ecdsa: { r: r.tpm2b(66), s: r.tpm2b(66) } };
  } else {
    throw Errors.tpmAlgorithmUnsupported(`signature algorithm 0x${sigAlg.toString(16)} is not RSASSA, RSAPSS or ECDSA`);
  }
  r.end();
  return out;
}

/**
 * Verifies `signature` by `signer` over exactly `signed` (the TPMS_ATTEST bytes as the TPM produced them: nothing
 * parsed from them is trusted before this passes). The signature's scheme must be the one the signer's public
 * area fixes, when it fixes one.
 */
export function verifyTpmSignature(signer: TpmPublic, signed: Buffer, signature: TpmSignature): boolean {
  const hash = TPM_HASHES[signature.hashAlg];
  if (!hash || signature.hashAlg === TPM_ALG.SHA1) throw Errors.tpmAlgorithmUnsupported(`signature hash 0x${signature.hashAlg.toString(16)} is not SHA-256 or stronger`);
  if (signer.scheme.scheme !== TPM_ALG.NULL && (signer.scheme.scheme !== signature.sigAlg || signer.scheme.hashAlg !== signature.hashAlg)) return false;
  const key: KeyObject = signer.publicKey;
  if (signature.ecdsa) {
    if (!signer.ecc) return false;
    const size = TPM_CURVES[signer.ecc.curveId].size;
    const { r, s } = signature.ecdsa;
    if (r.length > size || s.length > size) return false;
    const pad = (b: Buffer): Buffer => Buffer.concat([Buffer.alloc(size - b.length), b]);
    return verify(hash.name, signed, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad(r), pad(s)]));
  }
  if (!signer.rsa || !signature.rsa) return false;
  if (signature.sigAlg === TPM_ALG.RSAPSS) {
    return verify(hash.name, signed, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature.rsa);
  }
  return verify(hash.name, signed, { key, padding: constants.RSA_PKCS1_PADDING }, signature.rsa);
}

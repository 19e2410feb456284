import { createHash, createPublicKey, KeyObject } from 'node:crypto';
import { ObjectAttribute, TPM_ALG, TPM_CURVES, TPM_HASHES, TPMA_OBJECT } from './constants';
import { malformed, TpmReader, u16 } from './marshal';
import { Errors } from '../../common/errors';

/** A symmetric definition (TPMT_SYM_DEF_OBJECT); algorithm NULL for signing keys. */
export interface TpmSymmetric {
  algorithm: number;
  keyBits: number;
  mode: number;
}

/** A signing or key-exchange scheme with its hash; scheme NULL lets the caller choose. */
export interface TpmScheme {
  scheme: number;
  hashAlg: number;
}

export interface TpmPublic {
  /** TPM_ALG_RSA or TPM_ALG_ECC (the only key types read here). */
  type: number;
  nameAlg: number;
  attributes: number;
  authPolicy: Buffer;
  symmetric: TpmSymmetric;
  scheme: TpmScheme;
  rsa?: { keyBits: number; exponent: number; modulus: Buffer };
  ecc?: { curveId: number; x: Buffer; y: Buffer };
  /** The TPMT_PUBLIC exactly as marshalled: what the name is computed over. */
  area: Buffer;
  /** nameAlg || H_nameAlg(area) (Part 1, 16): what TPM2_Certify and MakeCredential refer to. */
  name: Buffer;
  publicKey: KeyObject;
  /** The key as SubjectPublicKeyInfo DER, comparable with a CSR's. */
  spki: Buffer;
}

const MAX_RSA_BYTES = 512;

/** The TPMA_OBJECT bits by name. */
export function hasAttribute(pub: Pick<TpmPublic, 'attributes'>, attribute: ObjectAttribute): boolean {
  return (pub.attributes & TPMA_OBJECT[attribute]) !== 0;
}

export function attributeNames(attributes: number): ObjectAttribute[] {
  return (Object.keys(TPMA_OBJECT) as ObjectAttribute[]).filter((name) => (attributes & TPMA_OBJECT[name]) !== 0);
}

function readSymmetric(r: TpmReader): TpmSymmetric {
  const algorithm = r.u16();
  if (algorithm === TPM_ALG.NULL) return { algorithm, keyBits: 0, mode: TPM_ALG.NULL };
  return { algorithm, keyBits: r.u16(), mode: r.u16() };
}

function readScheme(r: TpmReader, what: string): TpmScheme {
  const scheme = r.u16();
  if (scheme === TPM_ALG.NULL) return { scheme, hashAlg: TPM_ALG.NULL };
  const hashAlg = r.u16();
  // ECDAA carries a counter too; it is refused below (not a scheme a CA can verify).
  if (scheme === TPM_ALG.ECDAA) throw Errors.tpmAlgorithmUnsupported(`${what}: ECDAA keys are not supported`);
  return { scheme, hashAlg };
}

/** The name of a public area: nameAlg || H(TPMT_PUBLIC). */
export function objectName(nameAlg: number, area: Buffer): Buffer {
  const hash = TPM_HASHES[nameAlg];
  if (!hash) throw Errors.tpmAlgorithmUnsupported(`name algorithm 0x${nameAlg.toString(16)} is not supported`);
  return Buffer.concat([u16(nameAlg), createHash(hash.name).update(area).digest()]);
}

/** Parses a TPMT_PUBLIC (RSA or ECC keys; Part 2, 12.2.4) from `r`. */
function readPublicArea(r: TpmReader, what: string): TpmPublic {
  const start = r.position;
  const type = r.u16();
  const nameAlg = r.u16();
  const attributes = r.u32();
  const authPolicy = r.tpm2b(64);
  if (type === TPM_ALG.RSA) {
    const symmetric = readSymmetric(r);
    const scheme = readScheme(r, what);
    const keyBits = r.u16();
    const exponent = r.u32() || 65537;
    const modulus = r.tpm2b(MAX_RSA_BYTES);
    if (modulus.length * 8 !== keyBits) throw malformed(what, `RSA modulus of ${modulus.length} bytes for keyBits ${keyBits}`);
    const area = r.slice(start);
    const publicKey = rsaKey(modulus, exponent, what);
    return finish({ type, nameAlg, attributes, authPolicy, symmetric, scheme, rsa: { keyBits, exponent, modulus }, area, publicKey });
  }
  if (type === TPM_ALG.ECC) {
    const symmetric = readSymmetric(r);
    const scheme = readScheme(r, what);
    const curveId = r.u16();
    const kdf = r.u16();
    if (kdf !== TPM_ALG.NULL) r.u16();
    const x = r.tpm2b(66);
    const y = r.tpm2b(66);
    const area = r.slice(start);
    const curve = TPM_CURVES[curveId];
    if (!curve) throw Errors.tpmAlgorithmUnsupported(`${what}: ECC curve 0x${curveId.toString(16)} is not supported`);
    const publicKey = eccKey(curve.jwk, curve.size, x, y, what);
    return finish({ type, nameAlg, attributes, authPolicy, symmetric, scheme, ecc: { curveId, x, y }, area, publicKey });
  }
  throw Errors.tpmAlgorithmUnsupported(`${what}: object type 0x${type.toString(16)} is not an RSA or ECC key`);
}

function finish(p: Omit<TpmPublic, 'name' | 'spki'>): TpmPublic {
  return { ...p, name: objectName(p.nameAlg, p.area), spki: p.publicKey.export({ type: 'spki', format: 'der' }) };
}

function rsaKey(modulus: Buffer, exponent: number, what: string): KeyObject {
  const hex = exponent.toString(16);
  const e = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  try {
    return createPublicKey({ key: { kty: 'RSA', n: modulus.toString('base64url'), e: e.toString('base64url') }, format: 'jwk' });
  } catch {
    throw malformed(what, 'the RSA public key is not valid');
  }
}

function eccKey(crv: string, size: number, x: Buffer, y: Buffer, what: string): KeyObject {
  if (x.length > size || y.length > size) throw malformed(what, 'ECC point coordinates are too long for the curve');
  const pad = (b: Buffer): string => Buffer.concat([Buffer.alloc(size - b.length), b]).toString('base64url');
  try {
    return createPublicKey({ key: { kty: 'EC', crv, x: pad(x), y: pad(y) }, format: 'jwk' });
  } catch {
    throw malformed(what, 'the ECC point is not on the curve');
  }
}

/** Parses a TPM2B_PUBLIC (what tpm2_create -u, tpm2_createak -u and tpm2_readpublic -o write). */
export function parseTpm2bPublic(data: Buffer, what = 'TPM2B_PUBLIC'): TpmPublic {
  const r = new TpmReader(data, what);
  const size = r.u16();
  if (size !== data.length - 2) throw malformed(what, `size field ${size} but ${data.length - 2} bytes follow`);
  const pub = readPublicArea(r, what);
  r.end();
  return pub;
}

/** Parses a bare TPMT_PUBLIC. */
export function parsePublicArea(data: Buffer, what = 'TPMT_PUBLIC'): TpmPublic {
  const r = new TpmReader(data, what);
  const pub = readPublicArea(r, what);
  r.end();
  return pub;
}

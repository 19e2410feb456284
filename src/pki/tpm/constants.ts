/**
 * TPM 2.0 constants (TCG "TPM 2.0 Library, Part 2: Structures"), only those the attestation path reads or writes.
 * See docs/hardware-identity.md.
 */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  ECSCHNORR: 0x001c,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

/** Hash algorithms: their node name and digest size. */
export const TPM_HASHES: Record<number, { name: string; size: number }> = {
  [TPM_ALG.SHA1]: { name: 'sha1', size: 20 },
  [TPM_ALG.SHA256]: { name: 'sha256', size: 32 },
  [TPM_ALG.SHA384]: { name: 'sha384', size: 48 },
  [TPM_ALG.SHA512]: { name: 'sha512', size: 64 },
};

/** TPM_ECC_CURVE values with their JWK name, node name and coordinate size. */
export const TPM_CURVES: Record<number, { jwk: string; node: string; size: number }> = {
  0x0003: { jwk: 'P-256', node: 'prime256v1', size: 32 },
  0x0004: { jwk: 'P-384', node: 'secp384r1', size: 48 },
  0x0005: { jwk: 'P-521', node: 'secp521r1', size: 66 },
};

/** TPMA_OBJECT bits (Part 2, 8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

export type ObjectAttribute = keyof typeof TPMA_OBJECT;

/** TPM_GENERATED_VALUE: only the TPM puts this magic at the start of what it signs (Part 2, 6.2). */
export const TPM_GENERATED = 0xff544347;

/** TPM_ST values of TPMS_ATTEST.type. */
export const TPM_ST = {
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
} as const;

/** Magic and version of the credential file tpm2_makecredential writes and tpm2_activatecredential reads. */
export const TPM2_TOOLS_CREDENTIAL_MAGIC = 0xbadcc0de;
export const TPM2_TOOLS_CREDENTIAL_VERSION = 1;

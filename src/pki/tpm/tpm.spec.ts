import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DomainError } from '../../common/errors';
import { parseCertifyInfo, parseSignature } from './attest';
import { activateCredentialInSoftware, ekParameters, makeCredential, readTpm2ToolsCredentialFile, tpm2ToolsCredentialFile } from './credential';
import { verifyKeyAttestation } from './evidence';
import { attributeNames, parseTpm2bPublic } from './public';

// Structures made by tpm2-tools on swtpm: test/fixtures/tpm/make.sh (regenerate and commit them together).
const FIXTURES = join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'tpm');
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const spkiOf = (pem: string): Buffer => createPublicKey(fixture(pem)).export({ type: 'spki', format: 'der' });

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof DomainError) return err.code;
    throw err;
  }
  return 'OK';
}

describe('TPM2B_PUBLIC as tpm2-tools writes it', () => {
  const table = [
    { file: 'ak-ecc', attrs: ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'userWithAuth', 'restricted', 'sign'], type: 'ec' },
    { file: 'ak-rsa', attrs: ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'userWithAuth', 'restricted', 'sign'], type: 'rsa' },
    { file: 'app-ecc', attrs: ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'userWithAuth', 'sign'], type: 'ec' },
    { file: 'app-rsa', attrs: ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'userWithAuth', 'sign'], type: 'rsa' },
    { file: 'app-movable', attrs: ['sensitiveDataOrigin', 'userWithAuth', 'sign'], type: 'ec' },
    { file: 'plain-signer', attrs: ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'userWithAuth', 'sign'], type: 'ec' },
  ];
  for (const row of table) {
    it(`${row.file}: name = the TPM's, key = tpm2_readpublic's PEM, attributes ${row.attrs.join('|')}`, () => {
      const pub = parseTpm2bPublic(fixture(`${row.file}.pub`));
      assert.deepEqual(pub.name, fixture(`${row.file}.name`));
      assert.deepEqual(pub.spki, spkiOf(`${row.file}.pem`));
      assert.equal(pub.publicKey.asymmetricKeyType, row.type);
      assert.deepEqual(attributeNames(pub.attributes).filter((a) => a !== 'noDA' && a !== 'adminWithPolicy'), row.attrs);
    });
  }

  it('reads the RSA EK (TCG template: adminWithPolicy, restricted decrypt, AES-128-CFB)', () => {
    const ek = parseTpm2bPublic(fixture('ek-rsa.pub'));
    assert.deepEqual(ek.spki, spkiOf('ek-rsa.pem'));
    assert.deepEqual(attributeNames(ek.attributes), ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'adminWithPolicy', 'restricted', 'decrypt']);
    assert.deepEqual(ek.symmetric, { algorithm: 0x0006, keyBits: 128, mode: 0x0043 });
    assert.equal(ekParameters(createPublicKey(fixture('ek-rsa.pem')), ek).aesBits, 128);
  });

  const broken: [string, (b: Buffer) => Buffer][] = [
    ['empty', () => Buffer.alloc(0)],
    ['truncated', (b) => b.subarray(0, b.length - 5)],
    ['trailing byte', (b) => Buffer.concat([b, Buffer.alloc(1)])],
    ['size field lies', (b) => Buffer.concat([Buffer.from([0xff, 0xff]), b.subarray(2)])],
    ['unknown object type', (b) => Buffer.concat([b.subarray(0, 2), Buffer.from([0x00, 0x08]), b.subarray(4)])],
  ];
  for (const [what, mutate] of broken) {
    it(`refuses a TPM2B_PUBLIC that is ${what}`, () => {
      assert.match(code(() => parseTpm2bPublic(mutate(fixture('app-ecc.pub')))), /^TPM_(EVIDENCE_MALFORMED|ALGORITHM_UNSUPPORTED)$/);
    });
  }
});

describe('TPM2_Certify evidence (TPMS_ATTEST + TPMT_SIGNATURE from tpm2_certify)', () => {
  const flip = (b: Buffer, at: number): Buffer => {
    const c = Buffer.from(b);
    c[at] ^= 1;
    return c;
  };
  const table: { name: string; ak: string; key: string; attest: string; csr?: string; mutate?: (b: Buffer) => Buffer; expect: string }[] = [
    { name: 'ECC key certified by an ECDSA AK', ak: 'ak-ecc', key: 'app-ecc', attest: 'certify-ecc-by-ecc', expect: 'OK' },
    { name: 'ECC key certified by an RSASSA AK', ak: 'ak-rsa', key: 'app-ecc', attest: 'certify-ecc-by-rsa', expect: 'OK' },
    { name: 'RSA key certified by an ECDSA AK', ak: 'ak-ecc', key: 'app-rsa', attest: 'certify-rsa-by-ecc', expect: 'OK' },
    { name: 'a key that is not fixedTPM', ak: 'ak-ecc', key: 'app-movable', attest: 'certify-movable-by-ecc', expect: 'TPM_KEY_NOT_HARDWARE_BOUND' },
    { name: 'an AK that is not a restricted signing key', ak: 'plain-signer', key: 'app-ecc2', attest: 'certify-ecc2-by-plain', expect: 'TPM_AK_NOT_RESTRICTED_SIGNING' },
    { name: 'a signature by another AK', ak: 'ak-rsa', key: 'app-ecc', attest: 'certify-ecc-by-ecc', expect: 'TPM_ATTESTATION_SIGNATURE_INVALID' },
    { name: 'one changed byte in the attestation', ak: 'ak-ecc', key: 'app-ecc', attest: 'certify-ecc-by-ecc', mutate: (b) => flip(b, b.length - 40), expect: 'TPM_ATTESTATION_SIGNATURE_INVALID' },
    { name: 'another key than the certified one', ak: 'ak-ecc', key: 'app-rsa', attest: 'certify-ecc-by-ecc', expect: 'TPM_ATTESTED_NAME_MISMATCH' },
    { name: 'a CSR for another key', ak: 'ak-ecc', key: 'app-ecc', attest: 'certify-ecc-by-ecc', csr: 'app-rsa', expect: 'TPM_CSR_KEY_MISMATCH' },
    { name: 'a truncated attestation', ak: 'ak-ecc', key: 'app-ecc', attest: 'certify-ecc-by-ecc', mutate: (b) => b.subarray(0, 20), expect: 'TPM_ATTESTATION_SIGNATURE_INVALID' },
  ];
  for (const row of table) {
    it(`${row.expect === 'OK' ? 'accepts' : `refuses (${row.expect})`} ${row.name}`, () => {
      const certifyInfo = (row.mutate ?? ((b: Buffer) => b))(fixture(`${row.attest}.bin`));
      const evidence = { akPublic: fixture(`${row.ak}.pub`), keyPublic: fixture(`${row.key}.pub`), certifyInfo, certifySignature: fixture(`${row.attest}.sig`) };
      assert.equal(code(() => verifyKeyAttestation(evidence, spkiOf(`${row.csr ?? row.key}.pem`))), row.expect);
    });
  }

  it('parses the certify structure: TPM_GENERATED, the key name, tpm2_certify’s fixed extraData', () => {
    const info = parseCertifyInfo(fixture('certify-ecc-by-ecc.bin'));
    assert.deepEqual(info.name, fixture('app-ecc.name'));
    assert.equal(info.extraData.toString('hex'), '00ff55aa');
    assert.equal(parseSignature(fixture('certify-ecc-by-ecc.sig')).sigAlg, 0x0018);
    assert.equal(parseSignature(fixture('certify-ecc-by-rsa.sig')).sigAlg, 0x0014);
  });

  it('refuses a structure that is not a certify (wrong magic, wrong type, trailing bytes)', () => {
    const bin = fixture('certify-ecc-by-ecc.bin');
    for (const bad of [flip(bin, 0), flip(bin, 5), Buffer.concat([bin, Buffer.alloc(1)])]) assert.equal(code(() => parseCertifyInfo(bad)), 'TPM_EVIDENCE_MALFORMED');
  });
});

describe('MakeCredential (KDFa, KDFe, AES-CFB, HMAC) against tpm2_makecredential', () => {
  const akName = fixture('ak-ecc.name');
  for (const kind of ['rsa', 'ecc'] as const) {
    const ek = ekParameters(createPublicKey(fixture(`sw-ek-${kind}.pem`)));
    const ekPrivate = createPrivateKey(fixture(`sw-ek-${kind}.key`));

    it(`${kind.toUpperCase()} EK: opens the credential tpm2-tools made (our KDFs and cipher are the TPM's)`, () => {
      const credential = readTpm2ToolsCredentialFile(fixture(`credential-${kind}.blob`));
      assert.deepEqual(activateCredentialInSoftware(ek, ekPrivate, akName, credential), fixture('credential.secret'));
    });

    it(`${kind.toUpperCase()} EK: our credential opens for the AK's name only, and its file is tpm2-tools' format`, () => {
      const secret = randomBytes(32);
      const credential = makeCredential(ek, akName, secret);
      assert.deepEqual(activateCredentialInSoftware(ek, ekPrivate, akName, credential), secret);
      assert.throws(() => activateCredentialInSoftware(ek, ekPrivate, fixture('app-ecc.name'), credential), /integrity/);
      const file = tpm2ToolsCredentialFile(credential);
      assert.equal(file.length, fixture(`credential-${kind}.blob`).length);
      assert.deepEqual(readTpm2ToolsCredentialFile(file), credential);
    });
  }
});

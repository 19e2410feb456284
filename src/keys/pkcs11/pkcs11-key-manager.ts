import { createPublicKey, randomBytes } from 'node:crypto';
import { DomainError, Errors } from '../../common/errors';
import { digestOf } from '../../pki/signing';
import { oid, sequence, tlv, unsignedInteger } from '../../pki/der-writer';
import { CreatedKey, KeyManager, NewKeyRequest, Signer } from '../key-manager';
import { KeySpec, signingAlgorithmFor } from '../key-spec';
import { digestInSlices } from '../large-input';
import { SignerCache } from '../signer-cache';
import { KeyFacts, P256_PARAMS, P384_PARAMS, Pkcs11CallError } from './pkcs11-binding';
import { isLost, PIN_ERRORS, Pkcs11Token } from './pkcs11-token';

/** What a token answers when it will not make a key of that kind (a 422 for the caller, not an outage). */
const SPEC_REFUSED = new Set([
  'CKR_MECHANISM_INVALID',
  'CKR_MECHANISM_PARAM_INVALID',
  'CKR_TEMPLATE_INCONSISTENT',
  'CKR_TEMPLATE_INCOMPLETE',
  'CKR_ATTRIBUTE_VALUE_INVALID',
  'CKR_ATTRIBUTE_TYPE_INVALID',
  'CKR_KEY_SIZE_RANGE',
  'CKR_DOMAIN_PARAMS_INVALID',
  'CKR_CURVE_NOT_SUPPORTED',
]);

/** DigestInfo prefix of SHA-256 (RFC 8017 §9.2 note 1): CKM_RSA_PKCS signs DigestInfo, we hash outside the token. */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const CURVE_OIDS: Record<string, { spec: KeySpec; oid: string }> = {
  [P256_PARAMS.toString('hex')]: { spec: 'EC_P256', oid: '1.2.840.10045.3.1.7' },
  [P384_PARAMS.toString('hex')]: { spec: 'EC_P384', oid: '1.3.132.0.34' },
};

/** The reference stored with an authority: the token's label and the key's CKA_ID (the RFC 7512 URI attributes). */
export interface Pkcs11KeyRef {
  token: string;
  id: Buffer;
}

export function formatKeyRef(ref: Pkcs11KeyRef): string {
  return `pkcs11:token=${encodeURIComponent(ref.token)};id=${ref.id.toString('hex')}`;
}

export function parseKeyRef(keyRef: string): Pkcs11KeyRef {
  const match = /^pkcs11:token=([^;]*);id=([0-9a-f]+)$/.exec(keyRef);
  if (!match) throw Errors.authorityKeyUnusable('the authority key reference is not a PKCS #11 key reference');
  return { token: decodeURIComponent(match[1]), id: Buffer.from(match[2], 'hex') };
}

/**
 * The pkcs11 key backend (docs/pkcs11.md): CA keys made on an HSM token through its PKCS #11 module, private,
 * sensitive and not extractable; we keep the token label and the key's CKA_ID, and send the token digests to sign.
 * A lost session or login is recovered by Pkcs11Token (one retry); what still fails is KEY_BACKEND_UNAVAILABLE (503).
 */
export class Pkcs11KeyManager extends KeyManager {
  readonly backend = 'pkcs11' as const;
  private readonly signers = new SignerCache();

  constructor(
    private readonly token: Pkcs11Token,
    private readonly log: (line: string) => void,
  ) {
    super();
  }

  async createKey({ spec, authorityId }: NewKeyRequest): Promise<CreatedKey> {
    const problem = await this.call('C_GetMechanismInfo', () => this.token.lib.keySpecProblem(this.token.slotHandle, spec));
    if (problem) throw Errors.keySpecNotSupported(`token "${this.token.label}" cannot make ${spec} keys: ${problem}`);
    const id = randomBytes(16);
    const label = `fleet-pki:${authorityId}`;
    try {
      await this.token.withSession((session) => this.token.lib.generateKeyPair(session, spec, label, id));
    } catch (err) {
      if (err instanceof Pkcs11CallError && SPEC_REFUSED.has(err.ckr)) {
        throw Errors.keySpecNotSupported(`token "${this.token.label}" refused to make a ${spec} key (${err.ckr})`);
      }
      throw this.mapped('C_GenerateKeyPair', err);
    }
    const keyRef = formatKeyRef({ token: this.token.label, id });
    const facts = await this.facts(id);
    if (!facts) throw Errors.keyBackendUnavailable(`token "${this.token.label}" does not show the key it has just made`);
    if (facts.extractable || !facts.sensitive) {
      await this.discardKey(keyRef).catch(() => undefined);
      throw Errors.keySpecNotSupported(`token "${this.token.label}" made the ${spec} key extractable or not sensitive; a CA key must be neither`);
    }
    const publicKeySpki = spkiOf(facts, spec);
    this.signers.set(keyRef, this.makeSigner(keyRef, spec, publicKeySpki));
    return { keyRef, spec, publicKeySpki };
  }

  /**
   * Adopts a key already on the token: `id:<hex CKA_ID>` or `label:<CKA_LABEL>`. It must be one private key, able to
   * sign, sensitive and not extractable, with its public key object (same CKA_ID) beside it.
   */
  async adoptKey(externalId: string): Promise<CreatedKey> {
    const by: { id?: Buffer; label?: string } = externalId.startsWith('id:') ? { id: Buffer.from(externalId.slice(3), 'hex') } : { label: externalId.slice('label:'.length) };
    const what = by.id ? `CKA_ID ${by.id.toString('hex')}` : `label "${by.label}"`;
    const found = await this.call('C_FindObjects', () => this.token.withSession((session) => this.token.lib.find(session, 'private', by)));
    if (found.length === 0) throw Errors.pkcs11KeyNotSuitable(`token "${this.token.label}" has no private key with ${what}`);
    if (found.length > 1) throw Errors.pkcs11KeyNotSuitable(`token "${this.token.label}" has ${found.length} private keys with ${what}; adopt one by its CKA_ID`);
    const facts = await this.call('C_GetAttributeValue', () =>
      this.token.withSession((session) => {
        const privateKey = this.token.lib.find(session, 'private', by)[0];
        const head = this.token.lib.keyFacts(session, privateKey, undefined);
        const publicKey = head.id.length ? this.token.lib.find(session, 'public', { id: head.id })[0] : undefined;
        return { ...this.token.lib.keyFacts(session, privateKey, publicKey), hasPublic: publicKey !== undefined };
      }),
    );
    if (!facts.id.length) throw Errors.pkcs11KeyNotSuitable(`the key with ${what} has no CKA_ID; give it one (pkcs11-tool --set-id) so the authority can name it`);
    if (!facts.hasPublic) throw Errors.pkcs11KeyNotSuitable(`the key with ${what} has no public key object with the same CKA_ID on the token`);
    if (!facts.sign) throw Errors.pkcs11KeyNotSuitable(`the key with ${what} cannot sign (CKA_SIGN false)`);
    if (facts.extractable || !facts.sensitive) throw Errors.pkcs11KeyNotSuitable(`the key with ${what} is extractable or not sensitive; a CA key must be neither`);
    const spec = specOf(facts);
    if (!spec) throw Errors.pkcs11KeyNotSuitable(`the key with ${what} is not one of EC_P256, EC_P384, RSA_2048, RSA_3072, RSA_4096`);
    const keyRef = formatKeyRef({ token: this.token.label, id: facts.id });
    const publicKeySpki = spkiOf(facts, spec);
    this.signers.set(keyRef, this.makeSigner(keyRef, spec, publicKeySpki));
    return { keyRef, spec, publicKeySpki };
  }

  /** Destroys a key made here for an authority that was then not stored (both objects). */
  async discardKey(keyRef: string): Promise<string> {
    this.signers.delete(keyRef);
    const { id } = parseKeyRef(keyRef);
    this.token.forgetHandle(id);
    await this.call('C_DestroyObject', () =>
      this.token.withSession((session) => {
        for (const kind of ['private', 'public'] as const) for (const handle of this.token.lib.find(session, kind, { id })) this.token.lib.destroy(session, handle);
      }),
    );
    return `the new key was destroyed on token "${this.token.label}"`;
  }

  signer(keyRef: string, spec: KeySpec): Promise<Signer> {
    return this.signers.get(keyRef, () => this.loadSigner(keyRef, spec));
  }

  /** The key is on the token and the token answers (a find in a pooled session: cheap, no signature). */
  async checkKey(keyRef: string): Promise<void> {
    const { token, id } = this.refOnThisToken(keyRef);
    const handle = await this.call('C_FindObjects', () => this.token.withSession((session) => this.token.lib.find(session, 'private', { id })[0]));
    if (!handle) throw Errors.authorityKeyUnusable(`the authority key (CKA_ID ${id.toString('hex')}) is not on token "${token}"`);
  }

  private async loadSigner(keyRef: string, spec: KeySpec): Promise<Signer> {
    const { id } = this.refOnThisToken(keyRef);
    const facts = await this.facts(id);
    if (!facts) throw Errors.authorityKeyUnusable(`the authority key (CKA_ID ${id.toString('hex')}) is not on token "${this.token.label}"`);
    if (specOf(facts) !== spec) throw Errors.authorityKeyUnusable(`the token key is ${specOf(facts) ?? 'of another kind'}, but the authority records ${spec}`);
    return this.makeSigner(keyRef, spec, spkiOf(facts, spec));
  }

  private makeSigner(keyRef: string, spec: KeySpec, spki: Buffer): Signer {
    const { id } = parseKeyRef(keyRef);
    const algorithm = signingAlgorithmFor(spec);
    const digest = digestOf(algorithm);
    const ec = spec.startsWith('EC_');
    return {
      algorithm,
      publicKeySpki: () => spki,
      sign: async (data: Buffer) => {
        const hash = await digestInSlices(digest, data);
        const input = ec ? hash : Buffer.concat([SHA256_DIGEST_INFO, hash]);
        const signature = await this.call('C_Sign', () =>
          this.token.withSession(async (session) => {
            const handle = this.token.privateKeyHandle(session, id);
            if (!handle) throw Errors.authorityKeyUnusable(`the authority key (CKA_ID ${id.toString('hex')}) is not on token "${this.token.label}"`);
            return this.token.lib.sign(session, ec ? 'ecdsa' : 'rsa-pkcs', handle, input);
          }),
        );
        // CKM_ECDSA gives r‖s, each the size of the curve order; X.509 wants Ecdsa-Sig-Value (RFC 3279 §2.2.3).
        if (!ec) return signature;
        const half = signature.length / 2;
        return sequence(unsignedInteger(signature.subarray(0, half)), unsignedInteger(signature.subarray(half)));
      },
    };
  }

  private async facts(id: Buffer): Promise<KeyFacts | undefined> {
    return this.call('C_GetAttributeValue', () =>
      this.token.withSession((session) => {
        const privateKey = this.token.lib.find(session, 'private', { id })[0];
        if (!privateKey) return undefined;
        return this.token.lib.keyFacts(session, privateKey, this.token.lib.find(session, 'public', { id })[0]);
      }),
    );
  }

  private refOnThisToken(keyRef: string): Pkcs11KeyRef {
    const ref = parseKeyRef(keyRef);
    if (ref.token !== this.token.label) {
      throw Errors.authorityKeyUnusable(`the authority key is on token "${ref.token}", but this service uses token "${this.token.label}" (PKCS11_TOKEN_LABEL / PKCS11_SLOT)`);
    }
    return ref;
  }

  private async call<T>(operation: string, work: () => Promise<T> | T): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw this.mapped(operation, err);
    }
  }

  /** A Cryptoki failure as a problem: never the PIN, never key bytes; the CKR_ name is safe to show. */
  private mapped(operation: string, err: unknown): unknown {
    if (err instanceof DomainError || !(err instanceof Error)) return err;
    if (!(err instanceof Pkcs11CallError)) {
      this.log(`PKCS #11 ${operation} on token "${this.token.label}" failed: ${err.message}`);
      return Errors.keyBackendUnavailable(`the PKCS #11 token "${this.token.label}" failed (${operation}); retry shortly`);
    }
    this.log(`PKCS #11 ${operation} on token "${this.token.label}" failed: ${err.message}`);
    if (PIN_ERRORS.has(err.ckr)) return Errors.keyBackendUnavailable(`token "${this.token.label}" refused the PIN (${err.ckr}): check PKCS11_PIN / PKCS11_PIN_FILE`);
    const lost = isLost(err) ? ' (the session was lost and could not be recovered yet)' : '';
    return Errors.keyBackendUnavailable(`the PKCS #11 token "${this.token.label}" failed: ${err.ckr} in ${err.operation}${lost}; retry shortly`);
  }
}

/** The spec of a token key from its type and size, or undefined when it is none of ours. */
function specOf(facts: KeyFacts): KeySpec | undefined {
  if (facts.keyType === 'ec' && facts.ecParams) return CURVE_OIDS[facts.ecParams.toString('hex')]?.spec;
  if (facts.keyType === 'rsa' && facts.modulus) {
    let start = 0;
    while (start < facts.modulus.length && facts.modulus[start] === 0) start++;
    const bits = (facts.modulus.length - start) * 8;
    return ({ 2048: 'RSA_2048', 3072: 'RSA_3072', 4096: 'RSA_4096' } as Record<number, KeySpec>)[bits];
  }
  return undefined;
}

/** SubjectPublicKeyInfo DER from the public key object's attributes. */
function spkiOf(facts: KeyFacts, spec: KeySpec): Buffer {
  if (spec.startsWith('EC_')) {
    // CKA_EC_POINT is the DER OCTET STRING of the uncompressed point (PKCS #11 2.40 §2.3.3); some modules give it bare.
    let point = facts.ecPoint as Buffer;
    const bare = spec === 'EC_P256' ? 65 : 97;
    if (point.length === bare + 2 && point[0] === 0x04 && point[1] === bare) point = point.subarray(2);
    const curve = CURVE_OIDS[(facts.ecParams as Buffer).toString('hex')].oid;
    return sequence(sequence(oid(EC_PUBLIC_KEY), oid(curve)), tlv(0x03, Buffer.concat([Buffer.from([0]), point])));
  }
  const jwk = { kty: 'RSA', n: (facts.modulus as Buffer).toString('base64url'), e: (facts.publicExponent as Buffer).toString('base64url') };
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

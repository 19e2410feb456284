import type * as Pkcs11Js from 'pkcs11js';
import { KeySpec } from '../key-spec';

/**
 * The one module that knows the PKCS #11 binding (pkcs11js, an N-API addon built at install; docs/pkcs11.md). It
 * speaks in our terms (key specs, "private"/"public", raw signatures) so nothing else imports the binding or its
 * constants. Every failing Cryptoki call becomes a Pkcs11CallError carrying the CKR_ name.
 */

/** A Cryptoki call that returned something other than CKR_OK (or a binding that cannot be loaded). */
export class Pkcs11CallError extends Error {
  constructor(
    /** CKR_… name, or BINDING_MISSING / MODULE_LOAD_FAILED for problems before any Cryptoki call. */
    readonly ckr: string,
    readonly operation: string,
    detail?: string,
  ) {
    super(`${operation}: ${ckr}${detail ? ` (${detail})` : ''}`);
    this.name = 'Pkcs11CallError';
  }
}

export interface TokenDescription {
  slot: Buffer;
  slotId: string;
  label: string;
  serial: string;
  model: string;
}

/** What we read about a key on the token: enough to adopt it and to rebuild its public key. */
export interface KeyFacts {
  keyType: 'ec' | 'rsa' | 'other';
  id: Buffer;
  label: string;
  sign: boolean;
  sensitive: boolean;
  extractable: boolean;
  /** EC: the curve's OID (DER, from CKA_EC_PARAMS) and the point (CKA_EC_POINT) from the public key object. */
  ecParams?: Buffer;
  ecPoint?: Buffer;
  /** RSA: from the public key object. */
  modulus?: Buffer;
  publicExponent?: Buffer;
}

export type ObjectKind = 'private' | 'public';
export type SignMechanism = 'ecdsa' | 'rsa-pkcs';

// DER OIDs of the curves (CKA_EC_PARAMS namedCurve).
export const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
export const P384_PARAMS = Buffer.from('06052b81040022', 'hex');

// Session states (PKCS #11 2.40 §5.7; the binding exports no CKS_ constants).
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

type Binding = typeof Pkcs11Js;
let binding: Binding | undefined;

function loadBinding(): Binding {
  if (!binding) {
    try {
      // Loaded on first use: a service without PKCS11_MODULE never loads the addon.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      binding = require('pkcs11js') as Binding;
    } catch (err) {
      throw new Pkcs11CallError('BINDING_MISSING', 'load pkcs11js', `the PKCS #11 binding (npm package pkcs11js) is not installed or not built: ${(err as Error).message}`);
    }
  }
  return binding;
}

/** Runs a Cryptoki call and turns its error into a Pkcs11CallError. */
function ck<T>(operation: string, call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw asCallError(operation, err);
  }
}

async function ckAsync<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw asCallError(operation, err);
  }
}

function asCallError(operation: string, err: unknown): Pkcs11CallError {
  if (err instanceof Pkcs11CallError) return err;
  const message = String((err as Error)?.message ?? err);
  const match = /(CKR_[A-Z0-9_]+)/.exec(message);
  return new Pkcs11CallError(match ? match[1] : 'CKR_GENERAL_ERROR', operation, match ? undefined : message.slice(0, 200));
}

const text = (value: string): string => value.replace(/\0/g, '').trim();

/**
 * A loaded PKCS #11 module. Cryptoki is initialised once per process and module (C_Initialize a second time answers
 * CKR_CRYPTOKI_ALREADY_INITIALIZED): several services in one process (tests) share it, and it is never finalised
 * while any holds it.
 */
export class Pkcs11Library {
  private static readonly loaded = new Map<string, { library: Pkcs11Library; holders: number }>();
  private readonly ckc: Binding;

  private constructor(
    readonly modulePath: string,
    private readonly p11: Pkcs11Js.PKCS11,
  ) {
    this.ckc = loadBinding();
  }

  static open(modulePath: string): Pkcs11Library {
    const existing = this.loaded.get(modulePath);
    if (existing) {
      existing.holders++;
      return existing.library;
    }
    const ckc = loadBinding();
    const p11 = new ckc.PKCS11();
    try {
      p11.load(modulePath);
    } catch (err) {
      throw new Pkcs11CallError('MODULE_LOAD_FAILED', 'load', (err as Error).message.slice(0, 300));
    }
    const library = new Pkcs11Library(modulePath, p11);
    library.initialize();
    this.loaded.set(modulePath, { library, holders: 1 });
    return library;
  }

  /** C_Initialize with OS locking (the binding calls Cryptoki from libuv's threads); already initialised is fine. */
  initialize(): void {
    try {
      this.p11.C_Initialize({ flags: this.ckc.CKF_OS_LOCKING_OK });
    } catch (err) {
      const mapped = asCallError('C_Initialize', err);
      if (mapped.ckr !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw mapped;
    }
  }

  release(): void {
    const entry = Pkcs11Library.loaded.get(this.modulePath);
    if (!entry || --entry.holders > 0) return;
    Pkcs11Library.loaded.delete(this.modulePath);
    try {
      this.p11.C_Finalize();
    } catch {
      // Finalising is best effort at shutdown.
    }
  }

  tokens(): TokenDescription[] {
    const slots = ck('C_GetSlotList', () => this.p11.C_GetSlotList(true));
    return slots.map((slot) => {
      const info = ck('C_GetTokenInfo', () => this.p11.C_GetTokenInfo(slot));
      return { slot, slotId: slotIdOf(slot), label: text(info.label), serial: text(info.serialNumber), model: text(info.model) };
    });
  }

  /** Why the token cannot make keys of this spec (null when it can), from C_GetMechanismInfo. */
  keySpecProblem(slot: Buffer, spec: KeySpec): string | null {
    const rsa = spec.startsWith('RSA_');
    const mechanism = rsa ? this.ckc.CKM_RSA_PKCS_KEY_PAIR_GEN : this.ckc.CKM_EC_KEY_PAIR_GEN;
    const signMechanism = rsa ? this.ckc.CKM_RSA_PKCS : this.ckc.CKM_ECDSA;
    let info: Pkcs11Js.MechanismInfo;
    try {
      info = this.p11.C_GetMechanismInfo(slot, mechanism);
      this.p11.C_GetMechanismInfo(slot, signMechanism);
    } catch (err) {
      const mapped = asCallError('C_GetMechanismInfo', err);
      if (mapped.ckr === 'CKR_MECHANISM_INVALID') return `the token has no ${rsa ? 'RSA (CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_PKCS)' : 'EC (CKM_EC_KEY_PAIR_GEN, CKM_ECDSA)'} mechanism`;
      throw mapped;
    }
    const bits = rsa ? Number(spec.slice(4)) : spec === 'EC_P256' ? 256 : 384;
    // Both units occur for EC (bits, or bytes in old modules); a range that excludes both is a refusal.
    const fits = (size: number) => (info.minKeySize === 0 && info.maxKeySize === 0) || (size >= info.minKeySize && size <= info.maxKeySize);
    if (!fits(bits) && !(!rsa && fits(bits / 8))) return `the token makes ${rsa ? 'RSA' : 'EC'} keys of ${info.minKeySize}–${info.maxKeySize} bits only`;
    return null;
  }

  openSession(slot: Buffer): Buffer {
    return ck('C_OpenSession', () => this.p11.C_OpenSession(slot, this.ckc.CKF_SERIAL_SESSION | this.ckc.CKF_RW_SESSION));
  }

  closeSession(session: Buffer): void {
    try {
      this.p11.C_CloseSession(session);
    } catch {
      // Already gone (closed by the token, or by C_CloseAllSessions): nothing to close.
    }
  }

  /** Whether the session is in a user (logged-in) state. */
  loggedIn(session: Buffer): boolean {
    const info = ck('C_GetSessionInfo', () => this.p11.C_GetSessionInfo(session));
    return info.state === CKS_RO_USER_FUNCTIONS || info.state === CKS_RW_USER_FUNCTIONS;
  }

  /** C_Login as the normal user; the token being logged in already (by another session of this process) is fine. */
  login(session: Buffer, pin: string): void {
    try {
      this.p11.C_Login(session, this.ckc.CKU_USER, pin);
    } catch (err) {
      const mapped = asCallError('C_Login', err);
      if (mapped.ckr !== 'CKR_USER_ALREADY_LOGGED_IN') throw mapped;
    }
  }

  /**
   * Generates a key pair on the token: the private key a token object, private, sensitive, never extractable, for
   * signing only; the public key a token object for verifying. Both carry the label and CKA_ID.
   */
  async generateKeyPair(session: Buffer, spec: KeySpec, label: string, id: Buffer): Promise<void> {
    const c = this.ckc;
    const common = [
      { type: c.CKA_TOKEN, value: true },
      { type: c.CKA_LABEL, value: label },
      { type: c.CKA_ID, value: id },
    ];
    const rsa = spec.startsWith('RSA_');
    const publicTemplate = [
      ...common,
      { type: c.CKA_CLASS, value: c.CKO_PUBLIC_KEY },
      { type: c.CKA_VERIFY, value: true },
      { type: c.CKA_ENCRYPT, value: false },
      { type: c.CKA_WRAP, value: false },
      ...(rsa
        ? [
            { type: c.CKA_MODULUS_BITS, value: Number(spec.slice(4)) },
            { type: c.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          ]
        : [{ type: c.CKA_EC_PARAMS, value: spec === 'EC_P256' ? P256_PARAMS : P384_PARAMS }]),
    ];
    const privateTemplate = [
      ...common,
      { type: c.CKA_CLASS, value: c.CKO_PRIVATE_KEY },
      { type: c.CKA_PRIVATE, value: true },
      { type: c.CKA_SENSITIVE, value: true },
      { type: c.CKA_EXTRACTABLE, value: false },
      { type: c.CKA_SIGN, value: true },
      { type: c.CKA_DECRYPT, value: false },
      { type: c.CKA_UNWRAP, value: false },
      { type: c.CKA_DERIVE, value: false },
    ];
    const mechanism = { mechanism: rsa ? c.CKM_RSA_PKCS_KEY_PAIR_GEN : c.CKM_EC_KEY_PAIR_GEN };
    await ckAsync('C_GenerateKeyPair', () => this.p11.C_GenerateKeyPairAsync(session, mechanism, publicTemplate, privateTemplate));
  }

  /** Handles of the key objects of one class with this CKA_ID and/or label. */
  find(session: Buffer, kind: ObjectKind, by: { id?: Buffer; label?: string }): Buffer[] {
    const c = this.ckc;
    const template: Pkcs11Js.Template = [{ type: c.CKA_CLASS, value: kind === 'private' ? c.CKO_PRIVATE_KEY : c.CKO_PUBLIC_KEY }];
    if (by.id) template.push({ type: c.CKA_ID, value: by.id });
    if (by.label !== undefined) template.push({ type: c.CKA_LABEL, value: by.label });
    ck('C_FindObjectsInit', () => this.p11.C_FindObjectsInit(session, template));
    try {
      return ck('C_FindObjects', () => this.p11.C_FindObjects(session, 16));
    } finally {
      try {
        this.p11.C_FindObjectsFinal(session);
      } catch {
        // The search ends with the session anyway.
      }
    }
  }

  /** The facts of a private key and its public key object (same CKA_ID). */
  keyFacts(session: Buffer, privateKey: Buffer, publicKey: Buffer | undefined): KeyFacts {
    const c = this.ckc;
    const attrs = ck('C_GetAttributeValue', () =>
      this.p11.C_GetAttributeValue(session, privateKey, [
        { type: c.CKA_KEY_TYPE },
        { type: c.CKA_ID },
        { type: c.CKA_LABEL },
        { type: c.CKA_SIGN },
        { type: c.CKA_SENSITIVE },
        { type: c.CKA_EXTRACTABLE },
      ]),
    );
    const value = (i: number) => attrs[i].value as Buffer;
    const keyType = value(0).readUIntLE(0, Math.min(6, value(0).length));
    const facts: KeyFacts = {
      keyType: keyType === c.CKK_EC ? 'ec' : keyType === c.CKK_RSA ? 'rsa' : 'other',
      id: Buffer.from(value(1)),
      label: value(2).toString('utf8'),
      sign: value(3)[0] === 1,
      sensitive: value(4)[0] === 1,
      extractable: value(5)[0] === 1,
    };
    if (publicKey && facts.keyType === 'ec') {
      const pub = ck('C_GetAttributeValue', () => this.p11.C_GetAttributeValue(session, publicKey, [{ type: c.CKA_EC_PARAMS }, { type: c.CKA_EC_POINT }]));
      facts.ecParams = Buffer.from(pub[0].value as Buffer);
      facts.ecPoint = Buffer.from(pub[1].value as Buffer);
    } else if (publicKey && facts.keyType === 'rsa') {
      const pub = ck('C_GetAttributeValue', () => this.p11.C_GetAttributeValue(session, publicKey, [{ type: c.CKA_MODULUS }, { type: c.CKA_PUBLIC_EXPONENT }]));
      facts.modulus = Buffer.from(pub[0].value as Buffer);
      facts.publicExponent = Buffer.from(pub[1].value as Buffer);
    }
    return facts;
  }

  /**
   * One signature in a session the caller holds exclusively: CKM_ECDSA over a digest (raw r‖s comes back) or
   * CKM_RSA_PKCS over a DigestInfo (PKCS #1 v1.5). The token never sees more than the digest.
   */
  async sign(session: Buffer, mechanism: SignMechanism, key: Buffer, input: Buffer): Promise<Buffer> {
    const c = this.ckc;
    ck('C_SignInit', () => this.p11.C_SignInit(session, { mechanism: mechanism === 'ecdsa' ? c.CKM_ECDSA : c.CKM_RSA_PKCS }, key));
    const signature = await ckAsync('C_Sign', () => this.p11.C_SignAsync(session, input, Buffer.alloc(1024)));
    return Buffer.from(signature);
  }

  destroy(session: Buffer, handle: Buffer): void {
    ck('C_DestroyObject', () => this.p11.C_DestroyObject(session, handle));
  }
}

/** A slot handle (the binding gives CK_SLOT_ID as bytes, little-endian on the platforms we run on) as a decimal id. */
function slotIdOf(slot: Buffer): string {
  let id = 0n;
  for (let i = slot.length - 1; i >= 0; i--) id = (id << 8n) | BigInt(slot[i]);
  return id.toString();
}

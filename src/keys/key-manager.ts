import { SigningKey } from '../pki/signing';
import { KeyBackend, KeySpec } from './key-spec';

/** A CA's private key as the CA code sees it: an algorithm, its public key, and signatures. Never key bytes. */
export interface Signer extends SigningKey {
  publicKeySpki(): Buffer;
}

export interface CreatedKey {
  /** Opaque reference stored on the CA row; only the backend that made it can interpret it. */
  keyRef: string;
  publicKeySpki: Buffer;
}

/**
 * Port: makes keys in one backend and hands out signers for key references. Implementations keep key
 * material inside the backend (encrypted store, KMS); nothing outside `keys/` ever holds it.
 */
export abstract class KeyManager {
  abstract readonly backend: KeyBackend;
  abstract createKey(spec: KeySpec, label: string): Promise<CreatedKey>;
  abstract signer(keyRef: string, spec: KeySpec): Promise<Signer>;
  /** Throws when the backend cannot sign right now (used by /readyz). */
  abstract checkReady(): Promise<void>;
}

/** Port: the configured key backends, by name. */
export abstract class KeyManagers {
  /** Throws KEY_BACKEND_NOT_CONFIGURED when the backend is not available in this deployment. */
  abstract get(backend: KeyBackend): KeyManager;
  abstract all(): KeyManager[];
}

import { SigningKey } from '../pki/signing';
import { KeyBackend, KeySpec } from './key-spec';

/** A CA's private key as the CA code sees it: an algorithm, its public key, and signatures. Never key bytes. */
export interface Signer extends SigningKey {
  publicKeySpki(): Buffer;
}

export interface CreatedKey {
  /** Opaque reference stored on the CA row; only the backend that made it can interpret it. */
  keyRef: string;
  spec: KeySpec;
  publicKeySpki: Buffer;
}

export interface NewKeyRequest {
  spec: KeySpec;
  /** The authority the key is made for (KMS tags and aliases carry it). */
  authorityId: string;
  label: string;
}

/**
 * Port: makes (or adopts) keys in one backend and hands out signers for key references. Implementations
 * keep key material inside the backend (encrypted store, KMS); nothing outside `keys/` ever holds it.
 */
export abstract class KeyManager {
  abstract readonly backend: KeyBackend;
  abstract createKey(request: NewKeyRequest): Promise<CreatedKey>;
  /** Takes an existing key (KMS: id, ARN or alias) after checking it can sign as a CA. */
  abstract adoptKey(externalId: string): Promise<CreatedKey>;
  /** Best-effort clean-up of a key made for an authority that was then not stored. */
  abstract discardKey(keyRef: string): Promise<void>;
  abstract signer(keyRef: string, spec: KeySpec): Promise<Signer>;
  /** Throws a DomainError when this key cannot sign now (disabled, deleted, backend unreachable). */
  abstract checkKey(keyRef: string, spec: KeySpec): Promise<void>;
}

/** Port: the configured key backends, by name. */
export abstract class KeyManagers {
  /** Throws KEY_BACKEND_NOT_CONFIGURED when the backend is not available in this deployment. */
  abstract get(backend: KeyBackend): KeyManager;
  abstract all(): KeyManager[];
}

import { DomainError } from '../common/errors';
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
  /**
   * Clean-up of a key made for an authority that was then not stored. Returns, when the backend has something to say,
   * what became of the key (for the caller's error message), e.g. that a KMS key was scheduled for deletion.
   */
  abstract discardKey(keyRef: string): Promise<string | void>;
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

/**
 * After a failure following key creation: gives the new key back (discardKey) and returns the error to throw, its
 * message extended with what became of the key when the backend says so (`newKeyCleanup` "done" or "failed" in the
 * problem). A key that cannot be discarded is logged with its reference for an operator to delete.
 */
export async function abandonNewKey(manager: KeyManager, keyRef: string, err: unknown, log: (line: string) => void): Promise<unknown> {
  let note: string | void = undefined;
  let cleanup: 'done' | 'failed' = 'done';
  try {
    note = await manager.discardKey(keyRef);
  } catch (cleanupError) {
    cleanup = 'failed';
    log(`could not discard new key ${keyRef.slice(0, 300)} after a failed creation; delete it by hand: ${(cleanupError as Error).message}`);
    if (manager.backend === 'aws-kms') note = 'the new KMS key could not be scheduled for deletion: the service log names it, delete it by hand';
  }
  if (!note || !(err instanceof DomainError)) return err;
  const annotated = new DomainError(err.code, err.status, `${err.message}; ${note}`, { ...err.extra, newKeyCleanup: cleanup });
  annotated.final = err.final;
  return annotated;
}

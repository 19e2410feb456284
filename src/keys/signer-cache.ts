import { Signer } from './key-manager';

/**
 * Signers by key reference, loaded once. A failed load is forgotten, so the next call tries again
 * (a KMS outage or a missing row must not be cached).
 */
export class SignerCache {
  private readonly signers = new Map<string, Promise<Signer>>();

  get(keyRef: string, load: () => Promise<Signer>): Promise<Signer> {
    let signer = this.signers.get(keyRef);
    if (!signer) {
      signer = load();
      this.signers.set(keyRef, signer);
      signer.catch(() => this.signers.delete(keyRef));
    }
    return signer;
  }

  set(keyRef: string, signer: Signer): void {
    this.signers.set(keyRef, Promise.resolve(signer));
  }

  delete(keyRef: string): void {
    this.signers.delete(keyRef);
  }
}

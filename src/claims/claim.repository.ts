import { Claim, ProvisionedDevice } from './claim';

/** Port: claims, their allow-lists, what they provisioned, idempotency keys and used token ids. */
export abstract class ClaimRepository {
  abstract insert(claim: Claim): Promise<void>;
  abstract findById(id: string): Promise<Claim | null>;
  abstract findByClaimCertificate(certificateId: string): Promise<Claim | null>;
  abstract list(after: { createdAt: string; id: string } | undefined, limit: number): Promise<Claim[]>;
  /**
   * Takes one device slot: raises `used` only while the claim is active and under its quota, in one
   * conditional UPDATE, so concurrent exchanges (on any replica) can never pass maxDevices. False when full.
   */
  abstract takeSlot(id: string, at: string): Promise<boolean>;
  abstract touch(id: string, at: string): Promise<void>;
  /** Sets revoked unless already; false when it was. */
  abstract markRevoked(id: string, at: string): Promise<boolean>;

  /** Replaces the allow-list with the given batches (call inside a transaction); returns its size. */
  abstract replaceAllowlist(id: string, batches: AsyncIterable<string[]> | Iterable<string[]>): Promise<number>;
  abstract isAllowed(id: string, deviceSerial: string): Promise<boolean>;

  abstract findProvisioned(claimId: string, deviceSerial: string): Promise<ProvisionedDevice | null>;
  /** Fails with a unique violation when the serial was provisioned meanwhile. */
  abstract insertProvisioned(device: ProvisionedDevice): Promise<void>;
  abstract replaceProvisioned(device: ProvisionedDevice): Promise<void>;

  abstract findIdempotencyKey(claimId: string, key: string): Promise<{ requestSha256: string; certificateId: string } | null>;
  abstract insertIdempotencyKey(claimId: string, key: string, requestSha256: string, certificateId: string, at: string): Promise<void>;

  /** Ids of the unrevoked certificates a claim provisioned. */
  abstract unrevokedCertificateIds(claimId: string): Promise<string[]>;
}

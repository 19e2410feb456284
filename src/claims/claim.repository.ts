import { Claim, ExchangeIdempotencyKey, ProvisionedDevice } from './claim';

export interface EarlierExchange {
  earlier: { requestSha256: string; certificateId: string } | null;
  existing: ProvisionedDevice | null;
}

/** Port: claims, their allow-lists, what they provisioned, idempotency keys and used token ids. */
export abstract class ClaimRepository {
  abstract insert(claim: Claim): Promise<void>;
  abstract findById(id: string): Promise<Claim | null>;
  abstract findByClaimCertificate(certificateId: string): Promise<Claim | null>;
  /** The same, by the claim certificate's SHA-256 fingerprint (no need to read the certificate first). */
  abstract findByClaimCertificateFingerprint(fingerprint: string): Promise<Claim | null>;
  abstract list(after: { createdAt: string; id: string } | undefined, limit: number): Promise<Claim[]>;
  /**
   * Takes `count` device slots at once, or none: raises `used` only while the claim is active and has `count` slots
   * left, in one conditional UPDATE, so concurrent exchanges (on any replica) can never pass maxDevices. False when
   * fewer are left.
   */
  abstract takeSlots(id: string, count: number, at: string): Promise<boolean>;
  abstract touch(id: string, at: string): Promise<void>;
  /** Sets revoked unless already; false when it was. */
  abstract markRevoked(id: string, at: string): Promise<boolean>;

  // Allow-lists are versioned: an upload writes a new list while it is `staging` (the exchange never reads it), then
  // activateAllowlist points the claim at it in one short transaction. The replaced list is retired and its serials
  // are deleted in chunks later (purgeAllowlist), so no single statement ever touches a whole large list.

  /** Opens a new, empty list for the claim, in state staging; answers its id. */
  abstract openAllowlist(claimId: string, at: string): Promise<number>;
  /**
   * Adds serials to a staging list and answers how many were new (a serial listed twice counts once). Fails, so
   * that the caller's transaction rolls back, when the list is no longer staging (reclaimed as abandoned).
   */
  abstract addToAllowlist(allowlistId: number, serials: string[], at: string): Promise<number>;
  /**
   * Makes a staging list the claim's allow-list and retires the one it replaces (call inside a transaction).
   * Answers the list's size, or null when it is no longer staging.
   */
  abstract activateAllowlist(claimId: string, allowlistId: number, at: string): Promise<number | null>;
  /** Retires a staging list (its upload failed). */
  abstract retireAllowlist(allowlistId: number, at: string): Promise<void>;
  /**
   * Retires staging lists untouched since `staleBefore` (their upload died with its process) and answers the ids
   * of up to `limit` retired lists whose serials are still to be deleted, oldest first.
   */
  abstract reclaimableAllowlists(staleBefore: string, at: string, limit: number): Promise<number[]>;
  /**
   * Deletes up to `limit` serials of a retired list, or the list itself once it has none; answers how many
   * serials went (0: the list is gone). Never touches a staging or active list.
   */
  abstract purgeAllowlist(allowlistId: number, limit: number): Promise<number>;
  /** Whether the serial is on the claim's allow-list in force. */
  abstract isAllowed(id: string, deviceSerial: string): Promise<boolean>;

  abstract findProvisioned(claimId: string, deviceSerial: string): Promise<ProvisionedDevice | null>;
  /** One multi-row INSERT: a serial provisioned meanwhile (or twice in the batch) fails it with a unique violation. */
  abstract insertProvisionedMany(devices: ProvisionedDevice[]): Promise<void>;
  abstract replaceProvisioned(device: ProvisionedDevice): Promise<void>;

  abstract insertIdempotencyKeys(keys: ExchangeIdempotencyKey[]): Promise<void>;
  /**
   * The writes of a group's exchanges (call inside its transaction): the provisioned devices (insertProvisionedMany),
   * the slots taken per claim (takeSlots), the Idempotency-Keys (insertIdempotencyKeys), in one round trip where
   * the database allows. Answers the claims that had fewer slots left than asked (none taken from them; the caller
   * rolls back). A serial provisioned meanwhile, or a key used meanwhile, fails it with a unique violation.
   */
  abstract recordExchanges(devices: ProvisionedDevice[], slots: { claimId: string; count: number; at: string }[], keys: ExchangeIdempotencyKey[]): Promise<string[]>;
  /**
   * What an exchange must know before it issues, in one round trip: the certificate an Idempotency-Key already named
   * (when a key is given), and the device row of the serial.
   */
  abstract findEarlierExchange(claimId: string, deviceSerial: string, key: string | undefined): Promise<EarlierExchange>;

  /** Ids of the unrevoked certificates a claim provisioned. */
  abstract unrevokedCertificateIds(claimId: string): Promise<string[]>;
}

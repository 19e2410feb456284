import { HardwareAttestation } from '../certificates/certificate';

/** An allow-listed TPM manufacturer root (EK-issuing CA). */
export interface TpmManufacturerRoot {
  id: string;
  name: string;
  fingerprint: string;
  subject: string;
  notAfter: string;
  certificateDer: Buffer;
  createdAt: string;
}

/** A MakeCredential challenge waiting for its answer (docs/hardware-identity.md). */
export interface TpmChallenge {
  id: string;
  claimId: string;
  deviceSerial: string;
  request: { csr: string; attributes?: Record<string, string> };
  secretSha256: string;
  /** What the evidence proved; attestedAt is set when the challenge is answered. */
  attestation: Omit<HardwareAttestation, 'attestedAt'>;
  createdAt: string;
  expiresAt: string;
  consumedAt: string | null;
}

/** Port: TPM manufacturer roots. */
export abstract class TpmRootRepository {
  abstract list(): Promise<TpmManufacturerRoot[]>;
  abstract find(id: string): Promise<TpmManufacturerRoot | null>;
  /** Fails with a unique violation when the certificate is on the list already. */
  abstract insert(root: TpmManufacturerRoot): Promise<void>;
  abstract delete(id: string): Promise<boolean>;
}

/** Port: attested-enrollment challenges. */
export abstract class TpmChallengeRepository {
  abstract insert(challenge: TpmChallenge): Promise<void>;
  abstract find(id: string): Promise<TpmChallenge | null>;
  /** Marks it consumed in one conditional UPDATE; false when another request consumed it first (on any replica). */
  abstract consume(id: string, at: string): Promise<boolean>;
  /** Deletes up to `limit` challenges that expired before `now` (answered or not); answers how many. */
  abstract prune(now: string, limit: number): Promise<number>;
}

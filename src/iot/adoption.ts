import { X509Certificate } from 'node:crypto';

/**
 * Audit action for a registration AWS IoT already held when we asked for it (ResourceAlreadyExistsException), found
 * to be ours and taken over: typically a retry after AWS accepted a request whose answer was lost.
 */
export const REGISTRATION_ADOPTED = 'iot.registration-adopted';

/** Whether the PEM AWS IoT describes is exactly our certificate (byte for byte, DER). */
export function isSameCertificate(describedPem: string, ours: Buffer): boolean {
  try {
    return new X509Certificate(describedPem).raw.equals(ours);
  } catch {
    return false;
  }
}

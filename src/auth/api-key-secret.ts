import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** API keys look like `fpk_<12 hex>.<43 base64url>`; the part before the dot is public. */
export const API_KEY_PATTERN = /^fpk_([0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;

/** A new API key: `fpk_<12 hex public prefix>.<256-bit secret, base64url>`. */
export function generateApiKey(): { key: string; prefix: string } {
  const prefix = randomBytes(6).toString('hex');
  return { key: `fpk_${prefix}.${randomBytes(32).toString('base64url')}`, prefix };
}

/** The prefix of a well-formed key, or undefined. */
export function apiKeyPrefix(key: string): string | undefined {
  return API_KEY_PATTERN.exec(key)?.[1];
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Constant-time comparison of the presented key's hash with the stored one. */
export function apiKeyMatches(presented: string, storedHash: string): boolean {
  const a = Buffer.from(hashApiKey(presented), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

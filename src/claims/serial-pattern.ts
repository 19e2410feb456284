import { Errors } from '../common/errors';
import { compileLinearPattern, LinearPattern, PatternSyntaxError } from '../common/linear-pattern';

export const MAX_SERIAL_PATTERN_LENGTH = 256;

/**
 * A claim's serial pattern: an RE2 regular expression the whole serial must match. Stations choose the serials they
 * send, so the pattern is matched by RE2 in time linear in the serial (see common/linear-pattern.ts): no pattern an
 * operator can write lets a station's serial stall the event loop. RE2 refuses backreferences and lookaround, which
 * the claim API never accepted.
 */
export function compileSerialPattern(pattern: string): LinearPattern {
  // Compiled once per pattern (the exchange asks on every request); bounded like the number of claims in use.
  let compiled = COMPILED_PATTERNS.get(pattern);
  if (!compiled) {
    compiled = checkAndCompile(pattern);
    if (COMPILED_PATTERNS.size >= 1000) COMPILED_PATTERNS.clear();
    COMPILED_PATTERNS.set(pattern, compiled);
  }
  return compiled;
}

const COMPILED_PATTERNS = new Map<string, LinearPattern>();

function checkAndCompile(pattern: string): LinearPattern {
  if (pattern.length === 0) throw Errors.invalidClaim('serialPattern must not be empty');
  if (pattern.length > MAX_SERIAL_PATTERN_LENGTH) throw Errors.invalidClaim(`serialPattern may be at most ${MAX_SERIAL_PATTERN_LENGTH} characters`);
  try {
    return compileLinearPattern(pattern);
  } catch (err) {
    if (!(err instanceof PatternSyntaxError)) throw err;
    throw Errors.invalidClaim(`serialPattern is not a valid RE2 regular expression (no backreferences or lookaround): ${err.message}`);
  }
}

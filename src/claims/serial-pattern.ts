import { Errors } from '../common/errors';
import { compileLinearPattern, LinearPattern, PatternSyntaxError, PatternTooComplexError } from '../common/linear-pattern';

export const MAX_SERIAL_PATTERN_LENGTH = 256;
/**
 * RE2's cost measure, which bounds what each serial character may cost. Matching a 64-character serial takes up to
 * ~5 ms at 500 instructions (`(\w?){124}`) and grows with the size (`\p{L}{1000}` twenty times over: 20,002
 * instructions, ~230 ms). Serials have at most 64 characters, so useful patterns stay far below: `SN[0-9]{8}` is 12
 * instructions, `[A-Z0-9]{64}` 66, `\w{1,64}` 129.
 */
export const MAX_SERIAL_PATTERN_PROGRAM_SIZE = 500;

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
    return compileLinearPattern(pattern, { maxProgramSize: MAX_SERIAL_PATTERN_PROGRAM_SIZE });
  } catch (err) {
    if (err instanceof PatternTooComplexError) {
      throw Errors.invalidClaim(`serialPattern is ${err.message} (serials have at most 64 characters: repeat counts above 64 are never needed)`);
    }
    if (err instanceof PatternSyntaxError) {
      throw Errors.invalidClaim(`serialPattern is not a valid RE2 regular expression (no backreferences or lookaround): ${err.message}`);
    }
    throw err;
  }
}

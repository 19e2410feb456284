import { Logger } from '@nestjs/common';
import { DomainError, Errors } from '../common/errors';
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
  const entry = compiled(pattern);
  if ('refusal' in entry) throw entry.refusal;
  return entry.pattern;
}

/** What the station is told when its claim's stored pattern cannot be used: nothing of the parser's internals. */
export const UNUSABLE_SERIAL_PATTERN = "the claim's serial pattern is unusable; an administrator must fix it";

/**
 * The stored serial pattern of a claim, for the exchange. A pattern stored before RE2 checked it (or edited in the
 * database) may be refused: the station then gets 422 INVALID_CLAIM with a generic message, and the refusal's
 * detail is logged once per pattern (refusals are cached like compiled patterns, so nothing is recompiled per request).
 */
export function storedSerialPattern(pattern: string, claimId: string, warn: (message: string) => void = (message) => logger.warn(message)): LinearPattern {
  const entry = compiled(pattern);
  if ('pattern' in entry) return entry.pattern;
  if (!entry.logged) {
    entry.logged = true;
    warn(`claim ${claimId}: its serial pattern is unusable, every exchange is refused until an administrator fixes it: ${entry.refusal.message}`);
  }
  throw Errors.invalidClaim(UNUSABLE_SERIAL_PATTERN);
}

type CompiledEntry = { pattern: LinearPattern } | { refusal: DomainError; logged: boolean };

const logger = new Logger('SerialPattern');
/** Compiled patterns and refusals alike: the exchange asks on every request. Bounded like the number of claims in use. */
const COMPILED_PATTERNS = new Map<string, CompiledEntry>();

function compiled(pattern: string): CompiledEntry {
  let entry = COMPILED_PATTERNS.get(pattern);
  if (!entry) {
    try {
      entry = { pattern: checkAndCompile(pattern) };
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      entry = { refusal: err, logged: false };
    }
    if (COMPILED_PATTERNS.size >= 1000) COMPILED_PATTERNS.clear();
    COMPILED_PATTERNS.set(pattern, entry);
  }
  return entry;
}

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

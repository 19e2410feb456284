import { RE2JS } from 're2js';

/**
 * Matching for patterns that operators (or any caller) supply: claim serial patterns, IAM-style action globs.
 *
 * JavaScript's RegExp backtracks, so a pattern such as `(\d|[0-9A-F])+` or `(a|aa)+` takes time exponential in the
 * length of a string it does not match, and one request blocks the event loop (OCSP included) for seconds. No check
 * on the pattern's shape catches every such pattern, so these are never given to RegExp: regular expressions go to
 * RE2 (the `re2js` port), whose automaton answers in time linear in the input whatever the pattern, and globs to
 * the iterative matcher below. RE2 has no backreferences or lookaround (they cannot be matched in linear time);
 * a pattern using them does not compile.
 */

/** A pattern RE2 refuses; the message says why (e.g. "invalid or unsupported Perl syntax: `(?=`"). */
export class PatternSyntaxError extends Error {}

/** A valid pattern whose program is larger than the caller allows. */
export class PatternTooComplexError extends Error {}

export interface LinearPattern {
  readonly source: string;
  /** True when the whole input matches: anchored at both ends by the engine, whatever the pattern holds. */
  matchesWhole(input: string): boolean;
}

/**
 * Compiles a regular expression in RE2 syntax (Perl-like; no backreferences, lookaround or possessive quantifiers).
 * Matching is linear in the input, but each input character may cost up to the program's size (counted repetitions
 * unroll: `\p{L}{1000}` is 1000 instructions); `maxProgramSize` bounds that factor.
 */
export function compileLinearPattern(source: string, options: { maxProgramSize?: number } = {}): LinearPattern {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(source);
  } catch (err) {
    throw new PatternSyntaxError((err as Error).message.replace(/^error parsing regexp: /, ''));
  }
  const size = compiled.programSize();
  if (options.maxProgramSize !== undefined && size > options.maxProgramSize) {
    throw new PatternTooComplexError(`too complex: its RE2 program has ${size} instructions, at most ${options.maxProgramSize} are allowed`);
  }
  // testExact anchors both ends itself, so `a)|(b`-style tricks against a wrapping `^(?:…)$` do not apply.
  return { source, matchesWhole: (input) => compiled.testExact(input) };
}

/**
 * Glob matching (`*` any run of characters, `?` one character, everything else literal). On a mismatch only the
 * most recent `*` takes one more character, so the work is at most |glob| × |value| steps — never exponential,
 * however many stars (a RegExp of `.*.*.*…x` takes minutes on a 17-character action name).
 */
export function globMatches(glob: string, value: string): boolean {
  let g = 0;
  let v = 0;
  let star = -1;
  let starValue = 0;
  while (v < value.length) {
    if (g < glob.length && (glob[g] === '?' || (glob[g] !== '*' && glob[g] === value[v]))) {
      g++;
      v++;
    } else if (g < glob.length && glob[g] === '*') {
      star = g++;
      starValue = v;
    } else if (star >= 0) {
      g = star + 1;
      v = ++starValue;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === '*') g++;
  return g === glob.length;
}

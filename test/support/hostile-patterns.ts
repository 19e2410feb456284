/**
 * Serial patterns that make a backtracking RegExp take exponential (or high-polynomial) time on a serial they do
 * not match, each with a 64-character serial it matches and one it does not (both well-formed device serials).
 * Shared by the matcher's unit test and the exchange's end-to-end test.
 */
export interface HostilePattern {
  pattern: string;
  matching: string;
  nonMatching: string;
}

const SERIAL_LENGTH = 64;

function serial(body: string, last = ''): string {
  const text = body.repeat(Math.ceil(SERIAL_LENGTH / body.length)).slice(0, SERIAL_LENGTH - last.length) + last;
  if (text.length !== SERIAL_LENGTH) throw new Error(`fixture serial has ${text.length} characters`);
  return text;
}

export const HOSTILE_SERIAL_PATTERNS: readonly HostilePattern[] = [
  { pattern: '(\\d|[0-9A-F])+', matching: serial('0123456789ABCDEF'), nonMatching: serial('1', 'Z') },
  { pattern: '([A-Z]|[A-Z0-9])+', matching: serial('A'), nonMatching: serial('A', '-') },
  { pattern: '(a+)+', matching: serial('a'), nonMatching: serial('a', 'b') },
  { pattern: '(a|a)*', matching: serial('a'), nonMatching: serial('a', 'b') },
  { pattern: '(a|aa)+', matching: serial('a'), nonMatching: serial('a', 'b') },
  { pattern: '(.*a){20}', matching: serial('a'), nonMatching: serial('a', 'b') },
  { pattern: '([0-9]+)*X', matching: serial('1', 'X'), nonMatching: serial('1') },
  { pattern: '(\\w+\\s?)+', matching: serial('a'), nonMatching: serial('a', '-') },
  // Quantified groups with quantifiers inside, which the old shape check refused outright; now simply linear.
  { pattern: '([A-Z0-9]+-?)+', matching: serial('AB12-'), nonMatching: serial('A', '.') },
  // The largest program a serial pattern may compile to (498 of 500 RE2 instructions): the slowest allowed to match.
  { pattern: '(\\w?){124}', matching: serial('a'), nonMatching: serial('a', '-') },
  { pattern: '(SN|S|N|[A-Z0-9])*-', matching: serial('SN', '-'), nonMatching: serial('SN', ':') },
];

/**
 * What never reaches a log line (docs/operations.md, "Logs"). Two layers: pino's `redact` paths censor the fields
 * that carry secrets by name (headers, bodies, keys, passwords), and `scrubSecrets` — run on every finished line,
 * whatever logged it — replaces anything shaped like a secret that slipped into a message or an error: PEM private
 * keys, JWTs, API keys.
 */
export const CENSOR = '[REDACTED]';

const SECRET_FIELDS = ['authorization', 'cookie', 'password', 'passphrase', 'privateKey', 'token', 'apiKey', 'secret', 'body'];
const SECRET_HEADERS = ['authorization', 'cookie', '"set-cookie"', '"x-pkcs12-password"', '"x-api-key"'];

/** Where a logged object may carry headers or a body: a request, a response, an HTTP client's error. */
const CARRIERS = ['', 'req.', 'request.', 'res.', 'response.', 'err.', 'err.request.', 'err.response.', 'err.config.'];

/**
 * pino redact paths: each secret-bearing field at the top level and in the objects above, and the secret headers of
 * their `headers`. Explicit paths, no leading wildcard: `*.field` costs about 50 µs on every line (measured), which
 * the request line cannot afford; the line guard below catches secrets by shape wherever they are.
 */
export const REDACT_PATHS: string[] = CARRIERS.flatMap((carrier) => [
  ...SECRET_FIELDS.map((field) => `${carrier}${field}`),
  ...SECRET_HEADERS.map((header) => `${carrier}headers${header.startsWith('"') ? `[${header}]` : `.${header}`}`),
]);

const SECRET_SHAPES: RegExp[] = [
  // A PEM private key, as written raw or JSON-escaped (its line breaks as \n): the whole block, or to the end of the
  // string. Never beyond the JSON string it is in: an escape (\" included) is taken whole and an unescaped quote ends
  // the match, so the line stays valid JSON.
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:(?:[^"\\]|\\.)*?-----END [A-Z0-9 ]*PRIVATE KEY-----|(?:[^"\\]|\\.)*)/g,
  // A JWT (three base64url parts, the first two JSON objects).
  /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/g,
  // An API key (src/auth/api-key-secret.ts): the secret part; `fpk_<id>` alone is the key id and stays.
  /(fpk_[0-9a-f]{12})\.[A-Za-z0-9_-]{20,}/g,
];

/** The line with every secret-shaped substring replaced (an API key keeps its id, which is not secret). */
export function scrubSecrets(line: string): string {
  if (!line.includes('-----BEGIN') && !line.includes('eyJ') && !line.includes('fpk_')) return line;
  return line
    .replace(SECRET_SHAPES[0], CENSOR)
    .replace(SECRET_SHAPES[1], CENSOR)
    .replace(SECRET_SHAPES[2], `$1.${CENSOR}`);
}

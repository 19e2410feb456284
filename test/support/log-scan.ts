import * as fs from 'node:fs';
import * as path from 'node:path';
import { CANARY_KIND } from './log-capture';

/**
 * The secret scan of a test run's captured logs (test/support/log-capture.ts writes them; scripts/run-tests.js runs
 * this after every test file). It looks in every `*.log` line for each recorded secret and for secret shapes no test
 * recorded: PEM private keys, three-part JWTs, API keys (`fpk_<12 hex>.<43 base64url>`, src/auth/api-key-secret.ts).
 * Findings name the file, the line and the kind, never the secret.
 */
export interface Finding {
  file: string;
  line: number;
  kind: string;
}

export interface ScanReport {
  files: number;
  bytes: number;
  lines: number;
  secrets: number;
  findings: Finding[];
  /** Canaries planted (one per process that started an application) and the lines the scan found one on. */
  canariesPlanted: number;
  canaries: number;
  /** Documented exceptions: the first start's one-time print of the initial admin key (src/main.ts). */
  allowed: number;
}

const SHAPES: { kind: string; pattern: RegExp }[] = [
  { kind: 'PEM private key', pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/ },
  { kind: 'JWT', pattern: /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/ },
  { kind: 'API key', pattern: /fpk_[0-9a-f]{12}\.[A-Za-z0-9_-]{43}/ },
];

/** src/main.ts prints a generated first admin key once, on purpose ("shown once, store it now"), on the line after this. */
const INITIAL_KEY_BANNER = 'Initial admin API key (shown once, store it now):';

/** Secrets are looked up by their first PREFIX characters at every position of a line (one Map lookup each). */
const PREFIX = 8;

function readSecrets(dir: string): Map<string, { value: string; kind: string }[]> {
  const byPrefix = new Map<string, { value: string; kind: string }[]>();
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.jsonl'))) {
    for (const line of fs.readFileSync(path.join(dir, name), 'utf8').split('\n')) {
      if (!line) continue;
      const { kind, value } = JSON.parse(line) as { kind: string; value: string };
      if (typeof value !== 'string' || value.length < 8) continue;
      const key = value.slice(0, PREFIX);
      const list = byPrefix.get(key) ?? [];
      if (!list.some((s) => s.value === value)) list.push({ value, kind });
      byPrefix.set(key, list);
    }
  }
  return byPrefix;
}

/** The recorded secrets on one line (kinds), by prefix lookup at each position, then a full comparison. */
function recordedOn(line: string, secrets: Map<string, { value: string; kind: string }[]>): string[] {
  const kinds: string[] = [];
  for (let i = 0; i + PREFIX <= line.length; i++) {
    const candidates = secrets.get(line.slice(i, i + PREFIX));
    if (!candidates) continue;
    for (const secret of candidates) if (line.startsWith(secret.value, i)) kinds.push(secret.kind);
  }
  return kinds;
}

export function scanLogDirectory(dir: string): ScanReport {
  const secrets = readSecrets(dir);
  const all = [...secrets.values()].flat();
  const report: ScanReport = { files: 0, bytes: 0, lines: 0, secrets: all.length, findings: [], canariesPlanted: all.filter((s) => s.kind === CANARY_KIND).length, canaries: 0, allowed: 0 };
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.log')).sort()) {
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    report.files++;
    report.bytes += Buffer.byteLength(text);
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      if (!line) continue;
      report.lines++;
      if (i > 0 && lines[i - 1].trim() === INITIAL_KEY_BANNER) {
        report.allowed++;
        continue;
      }
      const kinds = new Set(recordedOn(line, secrets));
      if (kinds.delete(CANARY_KIND)) report.canaries++;
      for (const shape of SHAPES) if (shape.pattern.test(line)) kinds.add(shape.kind);
      for (const kind of kinds) report.findings.push({ file: name, line: i + 1, kind });
    }
  }
  return report;
}

/** What the run prints: the counts, each finding (file:line: kind), and the verdict's reasons. */
export function verdict(report: ScanReport): { ok: boolean; lines: string[] } {
  const out = [
    `log scan: ${report.files} file(s), ${report.lines} line(s), ${report.bytes} bytes, ${report.secrets} recorded secret(s), ` +
      `canaries ${report.canaries}/${report.canariesPlanted} found, ${report.allowed} documented one-time key print(s)`,
  ];
  let ok = true;
  for (const f of report.findings) out.push(`  SECRET IN LOG ${f.file}:${f.line}: ${f.kind}`);
  if (report.findings.length) ok = false;
  if (report.canariesPlanted > 0 && (report.bytes === 0 || report.canaries < report.canariesPlanted)) {
    out.push('  the scan saw no captured log or no planted canary: it would miss a leak (is the log capture wired?)');
    ok = false;
  }
  return { ok, lines: out };
}

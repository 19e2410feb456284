import * as fs from 'node:fs';
import * as path from 'node:path';

/** The IAM service prefix of each AWS SDK client package the code may import. A new client needs a line here. */
export const CLIENT_SERVICE_PREFIX: Record<string, string> = {
  '@aws-sdk/client-iot': 'iot',
  '@aws-sdk/client-kms': 'kms',
};

export interface SdkCall {
  /** e.g. DetachThingPrincipalCommand, or paginateListThings */
  name: string;
  client: string;
  /** The IAM action it needs: service prefix + operation name (iot:DetachThingPrincipal). */
  action: string;
  file: string;
  line: number;
}

export interface SdkScan {
  calls: SdkCall[];
  /** `new XxxCommand(` or `paginateXxx(` whose name is not imported from an @aws-sdk/client-* package. */
  unresolved: { name: string; file: string; line: number }[];
  /** @aws-sdk/client-* packages imported but missing from CLIENT_SERVICE_PREFIX. */
  unknownClients: { client: string; file: string }[];
}

function* sourceFiles(dir: string): Generator<string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(full);
    else if (/\.ts$/.test(entry.name) && !/\.(spec|d)\.ts$/.test(entry.name)) yield full;
  }
}

/** Names imported from each module in a file: `import { A, B as C } from 'm'` gives C → { imported: B, module: m }. */
function imports(source: string): Map<string, { imported: string; module: string }> {
  const names = new Map<string, { imported: string; module: string }>();
  for (const match of source.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['"]([^'"]+)['"]/g)) {
    for (const part of match[1].split(',')) {
      const [imported, local] = part.trim().replace(/^type\s+/, '').split(/\s+as\s+/);
      if (imported) names.set((local ?? imported).trim(), { imported: imported.trim(), module: match[2] });
    }
  }
  return names;
}

/**
 * Every AWS SDK command the code under `root` sends: `new XxxCommand(` and `paginateXxx(` whose identifier is
 * imported from an @aws-sdk/client-* package, mapped to the IAM action of the operation.
 */
export function scanSdkCalls(root: string): SdkScan {
  const scan: SdkScan = { calls: [], unresolved: [], unknownClients: [] };
  for (const file of sourceFiles(root)) {
    const source = fs.readFileSync(file, 'utf8');
    const imported = imports(source);
    for (const { module } of imported.values()) {
      if (module.startsWith('@aws-sdk/client-') && !(module in CLIENT_SERVICE_PREFIX) && !scan.unknownClients.some((u) => u.client === module && u.file === file)) {
        scan.unknownClients.push({ client: module, file });
      }
    }
    const lineOf = (index: number) => source.slice(0, index).split('\n').length;
    // Any `new X(` or `X(` whose X is imported from a client as a Command or a paginator (aliases included); a
    // local `...Command`/`paginate...` not imported from a client is reported rather than ignored.
    for (const m of source.matchAll(/\b(new\s+)?([A-Za-z_$][\w$]*)\s*\(/g)) {
      const local = m[2];
      const found = imported.get(local);
      const origin = found?.module.startsWith('@aws-sdk/client-') ? found : undefined;
      const name = origin?.imported ?? local;
      const command = m[1] !== undefined && name.endsWith('Command');
      const paginator = m[1] === undefined && /^paginate[A-Z]/.test(name);
      if (!command && !paginator) continue;
      if (!origin) {
        scan.unresolved.push({ name: local, file, line: lineOf(m.index) });
        continue;
      }
      const prefix = CLIENT_SERVICE_PREFIX[origin.module];
      if (!prefix) continue; // reported in unknownClients
      const operation = command ? origin.imported.replace(/Command$/, '') : origin.imported.replace(/^paginate/, '');
      scan.calls.push({ name: origin.imported, client: origin.module, action: `${prefix}:${operation}`, file, line: lineOf(m.index) });
    }
  }
  return scan;
}

/**
 * Writes a new migration per driver from the difference between the committed migrations and the
 * entities. Usage: npm run migration:generate -- <Name>   (PostgreSQL needs FLEET_PKI_TEST_PG_URL).
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { schemaDiffAfterMigrations } from './lib/schema-diff';
import { PG_ENV, temporaryDatabase } from './lib/temporary-database';

const root = path.resolve(__dirname, '../..');

async function main(): Promise<void> {
  const name = process.argv[2];
  if (!name || !/^[A-Z][A-Za-z0-9]+$/.test(name)) throw new Error('usage: migration:generate <PascalCaseName>');
  if (!process.env[PG_ENV]) throw new Error(`${PG_ENV} must point at a PostgreSQL server to generate its migration`);
  const timestamp = Date.now();
  for (const driver of ['sqlite', 'postgres'] as const) {
    const db = await temporaryDatabase(driver);
    try {
      const diff = await schemaDiffAfterMigrations(db.config);
      if (diff.up.length === 0) {
        console.log(`${driver}: no changes`);
        continue;
      }
      const className = `${name}${timestamp}`;
      const file = path.join(root, 'migrations', driver, `${timestamp}-${name}.ts`);
      fs.writeFileSync(file, render(className, diff.up, diff.down));
      const index = path.join(root, 'migrations', driver, 'index.ts');
      const constName = driver === 'sqlite' ? 'SQLITE_MIGRATIONS' : 'POSTGRES_MIGRATIONS';
      let source = fs.readFileSync(index, 'utf8');
      source = source.replace(/^(import .*\n)(?!import)/m, `$1import { ${className} } from './${timestamp}-${name}';\n`);
      source = source.replace(new RegExp(`(${constName}[^\\n]*= \\[)([^\\]]*)\\]`), (_m, head: string, list: string) => {
        const items = list.split(',').map((s) => s.trim()).filter(Boolean);
        return `${head}${[...items, className].join(', ')}]`;
      });
      fs.writeFileSync(index, source);
      console.log(`${driver}: wrote ${path.relative(root, file)}`);
    } finally {
      await db.drop();
    }
  }
}

function render(className: string, up: string[], down: string[]): string {
  const lines = (queries: string[]) => queries.map((q) => `    await queryRunner.query(${JSON.stringify(q)});`).join('\n');
  return `import { MigrationInterface, QueryRunner } from 'typeorm';

export class ${className} implements MigrationInterface {
  name = '${className}';

  public async up(queryRunner: QueryRunner): Promise<void> {
${lines(up)}
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
${lines(down)}
  }
}
`;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

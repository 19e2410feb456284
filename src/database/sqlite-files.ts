import * as fs from 'node:fs';

/** Files SQLite keeps beside a database, holding its data too. */
const COMPANION_SUFFIXES = ['-wal', '-shm', '-journal'];

/**
 * Makes an SQLite database and its companion files readable and writable by the service's user only (0600): they
 * hold sealed CA keys, API key hashes and the audit log. SQLite creates a database 0644 (less the umask), which a
 * data directory that already exists with a permissive mode does not hide; it creates -wal, -shm and -journal files
 * with the database file's own mode, so they follow once the database is 0600. Called right after the database is
 * opened, before anything is written to it (a new database is still empty then); existing files are tightened too.
 */
export function restrictSqliteFiles(file: string): void {
  for (const path of [file, ...COMPANION_SUFFIXES.map((suffix) => `${file}${suffix}`)]) {
    let mode: number;
    try {
      mode = fs.statSync(path).mode & 0o777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if ((mode & 0o077) === 0) continue; // private already
    try {
      fs.chmodSync(path, 0o600);
    } catch (err) {
      throw new Error(`${path} has mode ${mode.toString(8)} and could not be made 0600 (${(err as Error).message}); run: chmod 600 ${path}`);
    }
  }
}

import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { AppConfig } from '../../config/config';

/**
 * The local key store's master key: FLEET_PKI_MASTER_KEY when set, otherwise a file in DATA_DIR created
 * on first start with mode 0600. Replicas sharing one PostgreSQL must share one FLEET_PKI_MASTER_KEY.
 */
export function loadMasterKey(config: AppConfig, log: (line: string) => void = () => undefined): Buffer {
  if (config.keys.masterKey) return config.keys.masterKey;
  const file = config.keys.masterKeyFile;
  try {
    const fd = fs.openSync(file, 'wx', 0o600);
    fs.writeSync(fd, randomBytes(32).toString('hex') + '\n');
    fs.closeSync(fd);
    log(`Created a new master key for the local key store in ${file} (mode 0600). Back it up: CA keys are unreadable without it.`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new Error(`${file} is readable by other users (mode ${mode.toString(8)}); run: chmod 600 ${file}`);
  }
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'hex');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte hex master key`);
  return key;
}

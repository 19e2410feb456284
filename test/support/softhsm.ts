import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { recordSecret } from './log-capture';

/** Where Debian's softhsm2 package puts the module (SOFTHSM2_MODULE overrides it). */
const MODULE_CANDIDATES = ['/usr/lib/softhsm/libsofthsm2.so', '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so', '/usr/local/lib/softhsm/libsofthsm2.so'];

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** The SoftHSM2 module path, or the reason the PKCS #11 suites are skipped (for `describe(…, { skip })`). */
export function softHsmModule(): { module: string; skip: false } | { module: null; skip: string } {
  const module = [process.env.SOFTHSM2_MODULE, ...MODULE_CANDIDATES].find((candidate) => candidate && fs.existsSync(candidate));
  if (!module) return { module: null, skip: 'PKCS #11 suite SKIPPED: SoftHSM2 is not installed (apt-get install softhsm2 opensc; or set SOFTHSM2_MODULE)' };
  if (!onPath('softhsm2-util')) return { module: null, skip: 'PKCS #11 suite SKIPPED: softhsm2-util is not on PATH (apt-get install softhsm2)' };
  return { module, skip: false };
}

export interface SoftHsmToken {
  label: string;
  pin: string;
  soPin: string;
}

/**
 * A SoftHSM2 of the test's own: a temporary token directory and config file. SOFTHSM2_CONF is set for this process,
 * before anything loads the module (SoftHSM reads it at C_Initialize, once per process), and for child tools.
 */
export class SoftHsm {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-softhsm-'));
  readonly conf = path.join(this.dir, 'softhsm2.conf');

  constructor(readonly module: string) {
    fs.mkdirSync(path.join(this.dir, 'tokens'));
    fs.writeFileSync(this.conf, `directories.tokendir = ${path.join(this.dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    process.env.SOFTHSM2_CONF = this.conf;
  }

  /** Initialises a token in the next free slot, with random PINs (recorded as secrets for the log scan). */
  initToken(label: string): SoftHsmToken {
    const token = { label, pin: randomBytes(8).toString('hex'), soPin: randomBytes(8).toString('hex') };
    recordSecret('PKCS #11 user PIN', token.pin);
    recordSecret('PKCS #11 SO PIN', token.soPin);
    execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', token.pin, '--so-pin', token.soPin], {
      env: { ...process.env, SOFTHSM2_CONF: this.conf },
      stdio: 'pipe',
    });
    return token;
  }

  /** A file holding the PIN (PKCS11_PIN_FILE), mode 0600. */
  pinFile(token: SoftHsmToken): string {
    const file = path.join(this.dir, `${token.label}.pin`);
    fs.writeFileSync(file, `${token.pin}\n`, { mode: 0o600 });
    return file;
  }

  /** Runs pkcs11-tool (opensc) on this SoftHSM; returns its output. */
  pkcs11Tool(args: string[]): { status: number; output: string } {
    const result = spawnSync('pkcs11-tool', ['--module', this.module, ...args], { env: { ...process.env, SOFTHSM2_CONF: this.conf }, encoding: 'utf8' });
    return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export function hasPkcs11Tool(): boolean {
  return onPath('pkcs11-tool');
}

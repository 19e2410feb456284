import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CrlWatermark, CrlWatermarks } from './crl-watermarks';

type State = Record<string, CrlWatermark>;

/**
 * CRL watermarks in a small JSON file (CRL_STATE_FILE, default DATA_DIR/crl-state.json, 0600), written to a temporary
 * file, flushed and renamed over the old one, so a crash leaves the old or the new file, never half of one. Processes
 * sharing the file (workers) merge by taking the maximum; a lost race can only leave a lower watermark (a weaker
 * check), never a higher one. A missing or unreadable file is an empty state: the check then only trusts the database.
 * Read once at start (it is checked on every CRL request) and kept up to date by this process's own writes.
 */
export class FileCrlWatermarks extends CrlWatermarks {
  private held: State;

  constructor(private readonly file: string) {
    super();
    this.held = this.read();
  }

  get(authorityId: string): CrlWatermark | undefined {
    return this.held[authorityId];
  }

  record(authorityId: string, mark: CrlWatermark, replace = false): void {
    const state = this.read();
    const held = state[authorityId];
    state[authorityId] =
      held && !replace
        ? { crlNumber: Math.max(held.crlNumber, mark.crlNumber), revocationsCovered: Math.max(held.revocationsCovered, mark.revocationsCovered) }
        : { crlNumber: Math.max(held?.crlNumber ?? 0, mark.crlNumber), revocationsCovered: mark.revocationsCovered };
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fd = fs.openSync(temporary, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(state));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temporary, this.file);
    this.held = state;
  }

  private read(): State {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch {
      return {};
    }
    try {
      const parsed: unknown = JSON.parse(text);
      return parsed && typeof parsed === 'object' ? (parsed as State) : {};
    } catch {
      return {};
    }
  }
}

import { ConfigError, Pkcs11Config } from '../../config/config';
import { Pkcs11CallError, Pkcs11Library, TokenDescription } from './pkcs11-binding';

/**
 * Answers meaning the session or the login is gone, not that the request is wrong: the token was re-inserted or
 * reset, another part of the process closed all sessions (C_CloseAllSessions), the module was finalised, or a handle
 * died with its session. The pool opens new sessions, logs in again, finds the keys again and retries once.
 */
const LOST = new Set([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_USER_NOT_LOGGED_IN',
  'CKR_DEVICE_REMOVED',
  'CKR_DEVICE_ERROR',
  'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED',
  'CKR_SLOT_ID_INVALID',
  'CKR_CRYPTOKI_NOT_INITIALIZED',
  'CKR_OBJECT_HANDLE_INVALID',
  'CKR_KEY_HANDLE_INVALID',
]);

/** PIN answers: never retried (a wrong PIN retried may lock the token). */
export const PIN_ERRORS = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_LOCKED', 'CKR_PIN_EXPIRED', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE']);

export function isLost(err: unknown): boolean {
  return err instanceof Pkcs11CallError && LOST.has(err.ckr);
}

interface PooledSession {
  handle: Buffer;
  generation: number;
}

/**
 * One token of one PKCS #11 module, as this process uses it: the slot (found by PKCS11_TOKEN_LABEL or PKCS11_SLOT),
 * a pool of up to PKCS11_SESSIONS read-write sessions (a session runs one signing operation at a time: C_SignInit and
 * C_Sign must not interleave), the user login, and recovery. Login state belongs to the application, not the session:
 * the first session logs in, later ones find themselves logged in. After a LOST answer the pool moves to a new
 * generation: older sessions and cached key handles are dropped, the slot is looked up again, and the next session
 * logs in again. The PIN is read when logging in and never kept in a field, logged or put in an error.
 */
export class Pkcs11Token {
  private generation = 0;
  private slot: Buffer;
  private description: TokenDescription;
  private readonly idle: PooledSession[] = [];
  private open = 0;
  private readonly waiting: { resolve: (session: PooledSession) => void; reject: (err: unknown) => void }[] = [];
  private readonly handles = new Map<string, { generation: number; handle: Buffer }>();
  private closed = false;
  /** Recoveries since start (for logs and tests). */
  recoveries = 0;

  private constructor(
    private readonly library: Pkcs11Library,
    private readonly config: Pkcs11Config,
    private readonly log: (line: string) => void,
  ) {
    this.description = this.findToken();
    this.slot = this.description.slot;
  }

  /**
   * Loads the module, finds the token and logs in once, at boot. Each failure names the setting to fix (ConfigError):
   * PKCS11_MODULE (cannot be loaded, or the binding is missing), PKCS11_TOKEN_LABEL / PKCS11_SLOT (no such token),
   * PKCS11_PIN / PKCS11_PIN_FILE (refused).
   */
  static open(config: Pkcs11Config, log: (line: string) => void): Pkcs11Token {
    let library: Pkcs11Library;
    try {
      library = Pkcs11Library.open(config.modulePath);
    } catch (err) {
      const e = err as Pkcs11CallError;
      if (e.ckr === 'BINDING_MISSING') throw new ConfigError('PKCS11_MODULE', `is set, but ${e.message.replace(/^[^(]*\(/, '').replace(/\)$/, '')}; reinstall with npm ci (docs/pkcs11.md)`);
      throw new ConfigError('PKCS11_MODULE', `cannot be loaded as a PKCS #11 module: "${config.modulePath}" (${e.message})`);
    }
    try {
      const token = new Pkcs11Token(library, config, log);
      const session = token.openSession();
      token.release(session, false);
      return token;
    } catch (err) {
      library.release();
      if (err instanceof Pkcs11CallError && PIN_ERRORS.has(err.ckr)) {
        throw new ConfigError(config.pinVariable, `was refused by token "${config.tokenLabel ?? `slot ${config.slotId}`}" (${err.ckr})`);
      }
      if (err instanceof Pkcs11CallError) throw new ConfigError('PKCS11_MODULE', `failed while opening the token: ${err.message}`);
      throw err;
    }
  }

  get label(): string {
    return this.description.label;
  }

  get serial(): string {
    return this.description.serial;
  }

  get slotHandle(): Buffer {
    return this.slot;
  }

  get lib(): Pkcs11Library {
    return this.library;
  }

  /**
   * Runs `work` with a session of the pool to itself. A LOST answer moves the pool to a new generation and runs
   * `work` once more on a fresh, logged-in session; a second failure is the caller's to map.
   */
  async withSession<T>(work: (session: Buffer) => Promise<T> | T): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.acquire();
      let broken = false;
      try {
        return await work(session.handle);
      } catch (err) {
        broken = isLost(err);
        if (broken && attempt === 0) {
          this.recover(session.generation, (err as Pkcs11CallError).ckr);
          continue;
        }
        throw err;
      } finally {
        this.release(session, broken);
      }
    }
  }

  /** The handle of the private key with this CKA_ID, cached until the next recovery. Undefined when absent. */
  privateKeyHandle(session: Buffer, id: Buffer): Buffer | undefined {
    const key = id.toString('hex');
    const cached = this.handles.get(key);
    if (cached && cached.generation === this.generation) return cached.handle;
    const found = this.library.find(session, 'private', { id });
    if (found.length === 0) return undefined;
    this.handles.set(key, { generation: this.generation, handle: found[0] });
    return found[0];
  }

  forgetHandle(id: Buffer): void {
    this.handles.delete(id.toString('hex'));
  }

  close(): void {
    this.closed = true;
    for (const session of this.idle.splice(0)) this.library.closeSession(session.handle);
    this.library.release();
  }

  private async acquire(): Promise<PooledSession> {
    if (this.closed) throw new Pkcs11CallError('CKR_CRYPTOKI_NOT_INITIALIZED', 'acquire', 'the key backend is shut down');
    for (;;) {
      const session = this.idle.pop();
      if (!session) break;
      if (session.generation === this.generation) return session;
      this.open--;
      this.library.closeSession(session.handle);
    }
    if (this.open < this.config.sessions) {
      this.open++;
      try {
        return this.openSession();
      } catch (err) {
        this.open--;
        // A token that went away and came back (or a module re-initialised): look again, then try once more.
        if (!isLost(err)) throw err;
        this.recover(this.generation, (err as Pkcs11CallError).ckr);
        this.open++;
        try {
          return this.openSession();
        } catch (again) {
          this.open--;
          throw again;
        }
      }
    }
    return new Promise<PooledSession>((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private release(session: PooledSession, broken: boolean): void {
    if (broken || session.generation !== this.generation || this.closed) {
      this.open--;
      this.library.closeSession(session.handle);
      // Someone waiting gets a new session in place of this one (or the reason there is none: never left waiting).
      const next = this.waiting.shift();
      if (next) this.acquire().then(next.resolve, next.reject);
      return;
    }
    const next = this.waiting.shift();
    if (next) next.resolve(session);
    else this.idle.push(session);
  }

  /** A session of the current generation, logged in (the login is the application's: usually already there). */
  private openSession(): PooledSession {
    const handle = this.library.openSession(this.slot);
    try {
      if (!this.library.loggedIn(handle)) this.library.login(handle, this.config.pin());
    } catch (err) {
      this.library.closeSession(handle);
      throw err;
    }
    return { handle, generation: this.generation };
  }

  /** Drops every session and handle of `generation` (once per generation) and finds the slot again. */
  private recover(generation: number, ckr: string): void {
    if (generation !== this.generation) return;
    this.generation++;
    this.recoveries++;
    this.handles.clear();
    for (const session of this.idle.splice(0)) {
      this.open--;
      this.library.closeSession(session.handle);
    }
    this.log(`PKCS #11 token "${this.description.label}": ${ckr}; opening new sessions and logging in again`);
    try {
      if (ckr === 'CKR_CRYPTOKI_NOT_INITIALIZED') this.library.initialize();
      this.description = this.findToken();
      this.slot = this.description.slot;
    } catch (err) {
      // Still gone: the next call fails (503) and tries again.
      this.log(`PKCS #11 token "${this.description.label}" is not available yet: ${(err as Error).message}`);
    }
  }

  private findToken(): TokenDescription {
    const tokens = this.library.tokens();
    const list = tokens.map((t) => `"${t.label}" (slot ${t.slotId})`).join(', ') || 'none';
    if (this.config.tokenLabel !== undefined) {
      const matches = tokens.filter((t) => t.label === this.config.tokenLabel);
      if (matches.length === 0) throw new ConfigError('PKCS11_TOKEN_LABEL', `names no token of ${this.config.modulePath}: "${this.config.tokenLabel}" (tokens present: ${list})`);
      if (matches.length > 1) throw new ConfigError('PKCS11_TOKEN_LABEL', `names ${matches.length} tokens; use PKCS11_SLOT to choose one (tokens present: ${list})`);
      return matches[0];
    }
    const match = tokens.find((t) => t.slotId === this.config.slotId);
    if (!match) throw new ConfigError('PKCS11_SLOT', `names no slot with a token in ${this.config.modulePath}: ${this.config.slotId} (tokens present: ${list})`);
    return match;
  }
}

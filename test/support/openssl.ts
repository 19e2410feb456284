import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A scratch directory for openssl's files; removed by `cleanup`. */
export class OpenSslWorkspace {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-openssl-'));

  file(name: string, content?: string | Buffer): string {
    const full = path.join(this.dir, name);
    if (content !== undefined) fs.writeFileSync(full, content);
    return full;
  }

  /** Runs openssl; returns exit status and combined output (never throws on a non-zero status). */
  run(args: string[]): { status: number; output: string } {
    const result = spawnSync('openssl', args, { cwd: this.dir, encoding: 'utf8' });
    return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
  }

  /** A key and CSR made by openssl itself, e.g. newCsr('ec:P-256', '/CN=thing-1'). */
  newCsr(key: 'ec:P-256' | 'ec:P-384' | 'rsa:2048' | 'rsa:3072', subject: string, extraArgs: string[] = []): { csrPem: string; keyFile: string } {
    const name = `csr-${Math.random().toString(36).slice(2)}`;
    const keyArgs =
      key.startsWith('ec:') ? ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${key.slice(3)}`] : ['-newkey', key];
    execFileSync('openssl', ['req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-subj', subject, '-out', `${name}.csr`, ...extraArgs], {
      cwd: this.dir,
      stdio: 'pipe',
    });
    return { csrPem: fs.readFileSync(path.join(this.dir, `${name}.csr`), 'utf8'), keyFile: path.join(this.dir, `${name}.key`) };
  }

  /**
   * A self-signed P-256 certificate for localhost and 127.0.0.1, for a test app that terminates TLS itself: the
   * environment that points it at the files, and the PEM a client trusts.
   */
  tlsServer(): { env: { TLS_CERT_FILE: string; TLS_KEY_FILE: string }; caPem: string } {
    const made = this.run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.pem', '-subj', '/CN=localhost', '-days', '1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
    if (made.status !== 0) throw new Error(`openssl could not make the server certificate: ${made.output}`);
    return { env: { TLS_CERT_FILE: this.file('server.pem'), TLS_KEY_FILE: this.file('server.key') }, caPem: fs.readFileSync(this.file('server.pem'), 'utf8') };
  }

  /** `openssl x509 -text` of a PEM certificate. */
  text(certPem: string): string {
    const file = this.file(`cert-${Math.random().toString(36).slice(2)}.pem`, certPem);
    const result = this.run(['x509', '-in', file, '-noout', '-text']);
    if (result.status !== 0) throw new Error(`openssl could not parse the certificate: ${result.output}`);
    return result.output;
  }

  /** `openssl verify -x509_strict` of a leaf against root + untrusted intermediates, optionally with CRL checks. */
  verify(opts: { rootPem: string; intermediatesPem?: string; leafPem: string; crlsDer?: Buffer[] }): { ok: boolean; output: string } {
    const id = Math.random().toString(36).slice(2);
    const args = ['verify', '-x509_strict', '-CAfile', this.file(`root-${id}.pem`, opts.rootPem)];
    if (opts.intermediatesPem) args.push('-untrusted', this.file(`int-${id}.pem`, opts.intermediatesPem));
    if (opts.crlsDer) {
      const pems = opts.crlsDer.map((der, i) => {
        const derFile = this.file(`crl-${id}-${i}.der`, der);
        const converted = this.run(['crl', '-inform', 'DER', '-in', derFile]);
        if (converted.status !== 0) throw new Error(`openssl could not parse a CRL: ${converted.output}`);
        return converted.output;
      });
      args.push('-crl_check_all', '-CRLfile', this.file(`crls-${id}.pem`, pems.join('')));
    }
    args.push(this.file(`leaf-${id}.pem`, opts.leafPem));
    const result = this.run(args);
    return { ok: result.status === 0 && /: OK\s*$/.test(result.output.trim()), output: result.output };
  }

  cleanup(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

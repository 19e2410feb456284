import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A software TPM 2.0 (swtpm) playing the device in tests, driven with tpm2-tools and openssl's tpm2 provider, the
 * commands docs/hardware-identity.md gives firmware teams. What these machines taught (docs/hardware-identity.md,
 * "Testing with swtpm"):
 * - every path given to swtpm is absolute: in --daemon mode it changes directory to /, and a relative state dir
 *   puts libtpms in failure mode (every command then answers TPM_RC_FAILURE);
 * - its port is below the ephemeral range (tpm2-tools opens a connection per command, and the TIME_WAIT sockets
 *   they leave there can block swtpm's bind), and the start is retried on another port;
 * - the TCTI is `swtpm:` (mssim does not work with swtpm 0.7), and with no resource manager every tool's transient
 *   objects stay loaded: keys are persisted and `tpm2_flushcontext -t` runs after each step;
 * - one command at a time: calls are queued here, so concurrent tests can share one TPM.
 * One instance per test file, killed by `stop()`.
 */
export class SoftwareTpm {
  /** RSA EK (TCG template, made by swtpm_setup) and its certificate's NV index; SRK. */
  static readonly EK = '0x81010001';
  static readonly EK_CERT_NV = '0x01C00002';
  static readonly SRK = '0x81000001';
  /** Where this helper persists the AK. */
  static readonly AK = '0x81010003';

  readonly dir: string;
  private port = 0;
  private pid = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private env: NodeJS.ProcessEnv = {};

  private constructor() {
    this.dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-swtpm-')));
  }

  /**
   * Why the TPM suites cannot run here, or false when swtpm, tpm2-tools and the openssl tpm2 provider are installed.
   * With FLEET_PKI_TPM_TESTS=required (.ci/run) a missing tool is an error, not a skip.
   */
  static missing(): string | false {
    const why = SoftwareTpm.whyMissing();
    if (why && process.env.FLEET_PKI_TPM_TESTS === 'required') throw new Error(`FLEET_PKI_TPM_TESTS=required but ${why}`);
    return why;
  }

  private static whyMissing(): string | false {
    for (const tool of ['swtpm', 'swtpm_setup', 'swtpm_localca', 'tpm2_createak', 'tpm2_activatecredential']) {
      if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `TPM suite skipped: ${tool} is not installed (apt-get install swtpm swtpm-tools tpm2-tools tpm2-openssl libtss2-tcti-swtpm0)`;
    }
    // The provider only loads with a TPM to talk to: look for its module file instead.
    const modules = /MODULESDIR: "([^"]+)"/.exec(spawnSync('openssl', ['version', '-m'], { encoding: 'utf8' }).stdout ?? '')?.[1];
    if (!modules || !fs.existsSync(path.join(modules, 'tpm2.so'))) return 'TPM suite skipped: the openssl tpm2 provider is not installed (apt-get install tpm2-openssl)';
    return false;
  }

  /**
   * Manufactures a TPM whose EK certificate is signed by `vendor` (an openssl CA: its key and certificate files),
   * starts it, and makes an AK (restricted ECDSA P-256 signing key under the EK) at SoftwareTpm.AK.
   */
  static async start(vendor: { keyFile: string; certFile: string }): Promise<SoftwareTpm> {
    const tpm = new SoftwareTpm();
    try {
      await tpm.manufacture(vendor);
      await tpm.launch();
      await tpm.tool('tpm2_createak', ['-C', SoftwareTpm.EK, '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'ak.pub']);
      await tpm.tool('tpm2_flushcontext', ['-t']);
      await tpm.tool('tpm2_evictcontrol', ['-C', 'o', '-c', 'ak.ctx', SoftwareTpm.AK]);
      await tpm.tool('tpm2_flushcontext', ['-t']);
    } catch (err) {
      await tpm.stop();
      throw err;
    }
    return tpm;
  }

  private async manufacture(vendor: { keyFile: string; certFile: string }): Promise<void> {
    const ca = path.join(this.dir, 'ca');
    fs.mkdirSync(ca);
    fs.mkdirSync(path.join(this.dir, 'state'));
    fs.writeFileSync(path.join(ca, 'certserial'), '1\n');
    // A private swtpm_localca configuration: it signs EK certificates with the given CA (used as-is when the files
    // exist) and keeps its state here, touching nothing under /etc or /var/lib.
    fs.writeFileSync(path.join(ca, 'swtpm-localca.conf'), `statedir = ${ca}\nsigningkey = ${vendor.keyFile}\nissuercert = ${vendor.certFile}\ncertserial = ${ca}/certserial\n`);
    fs.writeFileSync(path.join(ca, 'swtpm-localca.options'), '--platform-manufacturer TestVendor\n--platform-version 2.1\n--platform-model TestModel\n');
    fs.writeFileSync(
      path.join(ca, 'swtpm_setup.conf'),
      `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${ca}/swtpm-localca.conf\ncreate_certs_tool_options = ${ca}/swtpm-localca.options\nactive_pcr_banks = sha256\n`,
    );
    await run('swtpm_setup', ['--tpm2', '--tpmstate', path.join(this.dir, 'state'), '--config', path.join(ca, 'swtpm_setup.conf'), '--create-ek-cert', '--create-spk', '--overwrite', '--logfile', path.join(this.dir, 'setup.log')], { cwd: this.dir });
  }

  private async launch(): Promise<void> {
    const pidFile = path.join(this.dir, 'swtpm.pid');
    const ephemeralLow = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || 32768;
    for (let attempt = 0; attempt < 10; attempt++) {
      const port = 10000 + 2 * Math.floor(Math.random() * ((ephemeralLow - 10002) / 2));
      if (!(await portFree(port)) || !(await portFree(port + 1))) continue;
      try {
        await run('swtpm', [
          'socket', '--tpm2', '--tpmstate', `dir=${path.join(this.dir, 'state')}`,
          '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
          '--flags', 'startup-clear', '--daemon', '--pid', `file=${pidFile}`, '--log', `file=${path.join(this.dir, 'swtpm.log')},level=1`,
        ]);
      } catch {
        continue;
      }
      for (let i = 0; i < 50 && !(fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim()); i++) await new Promise((r) => setTimeout(r, 100));
      this.pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
      this.port = port;
      const tcti = `swtpm:host=127.0.0.1,port=${port}`;
      this.env = { ...process.env, TPM2TOOLS_TCTI: tcti, TPM2OPENSSL_TCTI: tcti };
      return;
    }
    throw new Error(`swtpm did not start (see ${this.dir}/swtpm.log)`);
  }

  /** Runs one command against the TPM, after every command queued before it; returns stdout. */
  exec(file: string, args: string[]): Promise<string> {
    const next = this.queue.then(async () => (await run(file, args, { cwd: this.dir, env: this.env, encoding: 'utf8', maxBuffer: 1 << 20 })).stdout);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** A tpm2-tools command; a failure carries its stderr. */
  async tool(name: string, args: string[]): Promise<string> {
    try {
      return await this.exec(name, args);
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${name} ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' | ')}`);
    }
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  read(name: string): Buffer {
    return fs.readFileSync(this.file(name));
  }

  /** The EK certificate as the device reads it from NV (DER). */
  async ekCertificateDer(): Promise<Buffer> {
    await this.tool('tpm2_nvread', [SoftwareTpm.EK_CERT_NV, '-o', 'ek-cert.der']);
    return this.read('ek-cert.der');
  }

  /** TPM2B_PUBLIC of the EK, of the AK. */
  async ekPublic(): Promise<Buffer> {
    await this.tool('tpm2_readpublic', ['-c', SoftwareTpm.EK, '-o', 'ek.pub']);
    await this.tool('tpm2_flushcontext', ['-t']);
    return this.read('ek.pub');
  }

  akPublic(): Buffer {
    return this.read('ak.pub');
  }

  /**
   * Makes an application key under the SRK with `attributes` (ECC P-256) and persists it at `handle`; answers its
   * TPM2B_PUBLIC. `tpm2_create` asks the TPM to generate it: its private part never leaves the TPM.
   */
  async createKey(handle: string, attributes = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign'): Promise<Buffer> {
    const id = randomBytes(4).toString('hex');
    await this.tool('tpm2_create', ['-C', SoftwareTpm.SRK, '-G', 'ecc256', '-a', attributes, '-u', `key-${id}.pub`, '-r', `key-${id}.priv`]);
    await this.tool('tpm2_flushcontext', ['-t']);
    await this.tool('tpm2_load', ['-C', SoftwareTpm.SRK, '-u', `key-${id}.pub`, '-r', `key-${id}.priv`, '-c', `key-${id}.ctx`]);
    await this.tool('tpm2_flushcontext', ['-t']);
    await this.tool('tpm2_evictcontrol', ['-C', 'o', '-c', `key-${id}.ctx`, handle]);
    await this.tool('tpm2_flushcontext', ['-t']);
    return this.read(`key-${id}.pub`);
  }

  /** Removes a persisted key. */
  async evict(handle: string): Promise<void> {
    await this.tool('tpm2_evictcontrol', ['-C', 'o', '-c', handle]);
  }

  /** TPM2_Certify of the key at `handle` by `signer` (the AK): TPMS_ATTEST and TPMT_SIGNATURE. */
  async certify(handle: string, signer = SoftwareTpm.AK): Promise<{ certifyInfo: Buffer; certifySignature: Buffer }> {
    const id = randomBytes(4).toString('hex');
    await this.tool('tpm2_certify', ['-c', handle, '-C', signer, '-g', 'sha256', '-o', `attest-${id}.bin`, '-s', `attest-${id}.sig`]);
    await this.tool('tpm2_flushcontext', ['-t']);
    return { certifyInfo: this.read(`attest-${id}.bin`), certifySignature: this.read(`attest-${id}.sig`) };
  }

  /** A PKCS #10 CSR signed inside the TPM by the key at `handle` (openssl's tpm2 provider). */
  async csr(handle: string, subject: string): Promise<string> {
    const out = `csr-${randomBytes(4).toString('hex')}.pem`;
    await this.exec('openssl', ['req', '-new', '-provider', 'tpm2', '-provider', 'default', '-key', `handle:${handle}`, '-subj', subject, '-out', out]);
    await this.tool('tpm2_flushcontext', ['-t']).catch(() => undefined);
    return this.read(out).toString('utf8');
  }

  /** Signs `data` with the key at `handle` (SHA-256, DER ECDSA signature), inside the TPM. */
  async sign(handle: string, data: Buffer): Promise<Buffer> {
    const id = randomBytes(4).toString('hex');
    fs.writeFileSync(this.file(`msg-${id}`), data);
    await this.exec('openssl', ['dgst', '-sha256', '-provider', 'tpm2', '-provider', 'default', '-propquery', '?provider=tpm2', '-sign', `handle:${handle}`, '-out', `msg-${id}.sig`, `msg-${id}`]);
    await this.tool('tpm2_flushcontext', ['-t']).catch(() => undefined);
    return this.read(`msg-${id}.sig`);
  }

  /**
   * TPM2_ActivateCredential: the TPM releases the credential's secret only if the AK named in it is loaded beside
   * the EK it is sealed to. The EK's policy is PolicySecret(endorsement), hence the policy session.
   */
  async activate(credentialBlob: Buffer, ak = SoftwareTpm.AK, ek = SoftwareTpm.EK): Promise<Buffer> {
    const id = randomBytes(4).toString('hex');
    fs.writeFileSync(this.file(`cred-${id}.blob`), credentialBlob);
    await this.tool('tpm2_startauthsession', ['--policy-session', '-S', `session-${id}.ctx`]);
    try {
      await this.tool('tpm2_policysecret', ['-S', `session-${id}.ctx`, '-c', 'e']);
      await this.tool('tpm2_activatecredential', ['-c', ak, '-C', ek, '-i', `cred-${id}.blob`, '-o', `secret-${id}.bin`, '-P', `session:session-${id}.ctx`]);
    } finally {
      await this.tool('tpm2_flushcontext', [`session-${id}.ctx`]).catch(() => undefined);
      await this.tool('tpm2_flushcontext', ['-t']).catch(() => undefined);
    }
    return this.read(`secret-${id}.bin`);
  }

  async stop(): Promise<void> {
    if (this.port) spawnSync('swtpm_ioctl', ['--tcp', `127.0.0.1:${this.port + 1}`, '-s'], { timeout: 5000 });
    // Only our swtpm: the pid file could name a process that reused the number after swtpm_ioctl stopped it.
    if (this.pid && fs.existsSync(`/proc/${this.pid}/comm`) && fs.readFileSync(`/proc/${this.pid}/comm`, 'utf8').trim() === 'swtpm') {
      try {
        process.kill(this.pid);
      } catch {
        // already gone
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

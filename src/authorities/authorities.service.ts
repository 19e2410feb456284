import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext } from '../common/actor';
import { Clock } from '../common/clock';
import { isoSeconds } from '../common/time';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { creationPage } from '../common/cursor';
import { Errors } from '../common/errors';
import { Transactions } from '../database/transactions';
import { abandonNewKey, CreatedKey, KeyManager, KeyManagers, Signer } from '../keys/key-manager';
import { KeyBackend, KeySpec } from '../keys/key-spec';
import { certificateParts, fingerprint, signCertificate } from '../pki/certificate';
import { pemEncode } from '../pki/der';
import { keyIdentifier } from '../pki/extensions';
import { caPathLength, describeCertificate, IssuerFacts } from '../pki/issuance';
import { buildName, formatName, SubjectFields, subjectFieldProblem } from '../pki/names';
import { caCertificationRequest, certificationRequestParts } from '../pki/certification-request';
import { ExternalUpload, subjectKeyIdentifierOf, validateExternalCertificate } from '../pki/external-chain';
import { publicKeyFingerprint } from '../pki/key-policy';
import { subjectFieldsOf } from '../pki/csr';
import { randomSerial } from '../pki/serial';
import { Authority, AuthorityType, AuthorityUsage, hasCertificate } from './authority';
import { AuthorityRepository, CertifiedFields } from './authority.repository';
import { PublicUrls } from './public-urls';
import { RevocationWatermarks } from './revocation-watermarks';

export interface CreateAuthorityInput {
  name: string;
  type: AuthorityType;
  parentId?: string;
  /** "external": an intermediate whose certificate an external (offline) root signs; created pending, with a CSR. */
  parent?: 'external';
  keyBackend: KeyBackend;
  /** Defaults to EC_P256 for new keys; for an adopted key it must match the key when given. */
  keySpec?: KeySpec;
  kmsKeyId?: string;
  /** pkcs11: adopt the token key with this CKA_ID (hex) or label instead of generating one. */
  pkcs11KeyId?: string;
  pkcs11KeyLabel?: string;
  subject: SubjectFields;
  validityDays?: number;
  pathLength?: number;
  /** Default devices. */
  usage?: AuthorityUsage;
  /** Default: false for a root, true for an intermediate. */
  allowLeafIssuance?: boolean;
  /** A root whose key signs only inside signing windows (docs/key-ceremony.md). */
  offline?: boolean;
}

/**
 * What issuing under an authority needs: the facts its certificates depend on (name, key id, validity) and its
 * signer. The name, key id and chain are parsed once per process.
 */
export interface Issuer extends IssuerFacts {
  authority: Authority;
  signer: Signer;
  /** The authority's certificate followed by each parent up to the root, DER. */
  chain: Buffer[];
}

/** What is derived once from an authority's (immutable) certificate. */
interface ParsedAuthority {
  name: Buffer;
  keyId: Buffer;
  chain: Buffer[];
  chainPem: string;
}

@Injectable()
export class AuthoritiesService {
  private readonly logger = new Logger('Authorities');
  private readonly parsed = new Map<string, ParsedAuthority>();

  constructor(
    private readonly repository: AuthorityRepository,
    private readonly keys: KeyManagers,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    @Inject(PublicUrls) private readonly urls: PublicUrls,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly watermarks: RevocationWatermarks,
  ) {}

  async create(ctx: RequestContext, input: CreateAuthorityInput): Promise<Authority & { validityClamped: boolean }> {
    for (const [field, value] of Object.entries(input.subject) as [keyof SubjectFields, string | undefined][]) {
      const problem = value === undefined ? undefined : subjectFieldProblem(field, value);
      if (problem) throw Errors.invalidSubject(problem);
    }
    if (!input.subject.commonName) throw Errors.invalidSubject('subject.commonName is required');
    if (input.kmsKeyId !== undefined && input.keyBackend !== 'aws-kms') {
      throw Errors.validation('kmsKeyId applies only to keyBackend "aws-kms"');
    }
    if ((input.pkcs11KeyId !== undefined || input.pkcs11KeyLabel !== undefined) && input.keyBackend !== 'pkcs11') {
      throw Errors.validation('pkcs11KeyId and pkcs11KeyLabel apply only to keyBackend "pkcs11"');
    }
    if (input.pkcs11KeyId !== undefined && input.pkcs11KeyLabel !== undefined) throw Errors.validation('give pkcs11KeyId or pkcs11KeyLabel, not both');
    const adopt =
      input.kmsKeyId ?? (input.pkcs11KeyId !== undefined ? `id:${input.pkcs11KeyId.toLowerCase()}` : input.pkcs11KeyLabel !== undefined ? `label:${input.pkcs11KeyLabel}` : undefined);

    if (input.offline && input.type !== 'root') throw Errors.validation('offline applies to roots only');
    if (input.offline && input.allowLeafIssuance) throw Errors.validation('an offline root signs no end-entity certificates: allowLeafIssuance must be false');
    const external = input.parent === 'external';
    if (external && input.parentId !== undefined) {
      throw Errors.validation('parentId and parent "external" are mutually exclusive: an authority has one issuer');
    }
    if (external && input.type !== 'intermediate') throw Errors.validation('parent "external" applies to intermediates only');

    const now = this.clock.now();
    const parent = external ? undefined : await this.parentFor(input);
    const pathLength = caPathLength(parent?.authority, input.pathLength);
    const id = randomUUID();
    const keyManager = this.keys.get(input.keyBackend);
    const key = adopt !== undefined ? await this.adoptKey(keyManager, adopt, input.keySpec) : await keyManager.createKey({ spec: input.keySpec ?? 'EC_P256', authorityId: id, label: `fleet-pki authority ${id} (${input.name})` });
    try {
      if (external) return { ...(await this.storePending(ctx, { id, input, key, pathLength, now })), validityClamped: false };
      return await this.certifyAndStore(ctx, { id, input, key, parent, pathLength, now });
    } catch (err) {
      // Nothing refers to a freshly made key yet: give it back (an adopted key stays the owner's), and say so.
      if (adopt === undefined) throw await abandonNewKey(keyManager, key.keyRef, err, (line) => this.logger.warn(`authority ${id}: ${line}`));
      throw err;
    }
  }

  private async certifyAndStore(
    ctx: RequestContext,
    args: {
      id: string;
      input: CreateAuthorityInput;
      key: CreatedKey;
      parent: Issuer | undefined;
      pathLength: number | null;
      now: Date;
    },
  ): Promise<Authority & { validityClamped: boolean }> {
    const { id, input, key, parent, pathLength, now } = args;
    const facts = {
      subject: input.subject,
      validityDays: input.validityDays,
      pathLength,
      subjectPublicKeyInfo: key.publicKeySpki,
      now,
      backdateSeconds: this.config.issuance.backdateSeconds,
    };
    const { tbs, validityClamped } = describeCertificate(
      parent ? { kind: 'intermediate-ca', issuer: parent, urls: this.urls.forIssuer(parent.authority.id), ...facts } : { kind: 'root-ca', ...facts },
    );
    // A root signs itself, which is also the proof that its new key signs; an intermediate's parent signs it.
    const issuerKey = parent ? parent.signer : await this.keys.get(input.keyBackend).signer(key.keyRef, key.spec);
    const serial = randomSerial();
    const der = await signCertificate({ serial, ...tbs }, issuerKey);

    const authority = await this.insertNew(ctx, { id, input, key, pathLength, now }, {
      parentId: parent?.authority.id ?? null,
      status: 'active',
      serial: serial.toString('hex'),
      fingerprint: fingerprint(der),
      notBefore: isoSeconds(tbs.notBefore),
      notAfter: isoSeconds(tbs.notAfter),
      certificateDer: der,
      csrDer: null,
    });
    return { ...authority, validityClamped };
  }

  /**
   * An intermediate under an external root, first step (docs/external-roots.md): the key exists in its backend and
   * signs a CSR; the authority is stored pending, with no certificate, until `certify` receives the one the root signs.
   */
  private async storePending(
    ctx: RequestContext,
    args: { id: string; input: CreateAuthorityInput; key: CreatedKey; pathLength: number | null; now: Date },
  ): Promise<Authority> {
    const { input, key, pathLength } = args;
    const subject = buildName(input.subject);
    const signer = await this.keys.get(input.keyBackend).signer(key.keyRef, key.spec);
    const csrDer = await caCertificationRequest({ subject, subjectPublicKeyInfo: key.publicKeySpki, pathLength, key: signer });
    // No certificate yet: its fields stay empty until `certify` (the DTO shows them as null).
    return this.insertNew(ctx, args, { parentId: null, status: 'pending', serial: '', fingerprint: '', notBefore: '', notAfter: '', certificateDer: Buffer.alloc(0), csrDer });
  }

  /** Stores a new authority and its audit event, in one transaction. */
  private async insertNew(
    ctx: RequestContext,
    args: { id: string; input: CreateAuthorityInput; key: CreatedKey; pathLength: number | null; now: Date },
    fields: Pick<Authority, 'parentId' | 'status' | 'serial' | 'fingerprint' | 'notBefore' | 'notAfter' | 'certificateDer' | 'csrDer'>,
  ): Promise<Authority> {
    const { id, input, key, pathLength, now } = args;
    const authority: Authority = {
      id,
      name: input.name,
      type: input.type,
      usage: input.usage ?? 'devices',
      keyBackend: input.keyBackend,
      keySpec: key.spec,
      keyRef: key.keyRef,
      publicKeySha256: publicKeyFingerprint(key.publicKeySpki),
      subject: formatName(input.subject),
      pathLength,
      allowLeafIssuance: input.allowLeafIssuance ?? input.type === 'intermediate',
      externalChain: null,
      revocationCount: 0,
      offline: input.offline ?? false,
      signingEnabledUntil: null,
      createdAt: now.toISOString(),
      disabledAt: null,
      successorId: null,
      retiringAt: null,
      ...fields,
    };
    const pending = authority.status === 'pending';
    await this.transactions.run(async () => {
      await this.repository.insert(authority);
      await this.audit.record(ctx, {
        action: 'authority.created',
        target: { type: 'authority', id },
        details: {
          name: authority.name,
          type: authority.type,
          usage: authority.usage,
          parentId: authority.parentId,
          ...(pending ? { parent: 'external', status: 'pending' } : {}),
          keyBackend: authority.keyBackend,
          keySpec: authority.keySpec,
          subject: authority.subject,
          ...(pending ? {} : { serial: authority.serial, fingerprint: authority.fingerprint, notAfter: authority.notAfter }),
          pathLength,
          allowLeafIssuance: authority.allowLeafIssuance,
          ...(authority.offline ? { offline: true } : {}),
        },
      });
    });
    return authority;
  }

  /**
   * An intermediate under an external root, second step: the certificate the root signed, with the root's chain.
   * Validated in `pki/external-chain.ts` (each failed check is its own 422); on success the authority is active, its
   * certificate fields come from the uploaded certificate, and its chain ends with the uploaded one.
   */
  async certify(ctx: RequestContext, id: string, upload: ExternalUpload): Promise<Authority> {
    const authority = await this.get(id);
    if (authority.status !== 'pending' || !authority.csrDer) {
      throw Errors.authorityNotPending(
        !authority.csrDer
          ? `authority ${id} was not created with parent "external" and takes no uploaded certificate`
          : hasCertificate(authority)
            ? `authority ${id} already has its certificate (${authority.status})`
            : `authority ${id} was ${authority.status} while pending and takes no certificate`,
      );
    }
    const csr = certificationRequestParts(authority.csrDer);
    const validated = await validateExternalCertificate(upload, { subject: csr.subject, subjectPublicKeyInfo: csr.subjectPublicKeyInfo, now: this.clock.now() });
    const certified: CertifiedFields = {
      serial: validated.serial,
      fingerprint: fingerprint(validated.certificateDer),
      notBefore: isoSeconds(validated.notBefore),
      notAfter: isoSeconds(validated.notAfter),
      pathLength: validated.pathLength,
      certificateDer: validated.certificateDer,
      externalChain: validated.issuersDer,
    };
    await this.transactions.run(async () => {
      // Conditional on pending: of two concurrent uploads one wins, and only it is audited.
      if (!(await this.repository.certify(id, certified))) throw Errors.authorityNotPending(`authority ${id} already has its certificate`);
      const root = validated.issuersDer[validated.issuersDer.length - 1];
      await this.audit.record(ctx, {
        action: 'authority.certificate_uploaded',
        target: { type: 'authority', id },
        details: {
          serial: certified.serial,
          fingerprint: certified.fingerprint,
          notBefore: certified.notBefore,
          notAfter: certified.notAfter,
          pathLength: certified.pathLength,
          issuer: validated.issuer,
          rootFingerprint: fingerprint(root),
          chainFingerprints: validated.issuersDer.map((der) => fingerprint(der)),
        },
      });
    });
    return { ...authority, ...certified, status: 'active' };
  }

  /** An existing KMS or token key for a new authority: its spec must be the one asked for, and no authority may hold it yet. */
  private async adoptKey(keyManager: KeyManager, externalId: string, expectedSpec: KeySpec | undefined): Promise<CreatedKey> {
    const key = await keyManager.adoptKey(externalId);
    if (expectedSpec !== undefined && key.spec !== expectedSpec) {
      throw Errors.keySpecMismatch(`the ${keyManager.backend === 'aws-kms' ? 'KMS' : 'token'} key is ${key.spec}, not ${expectedSpec}`);
    }
    if (await this.repository.isAuthorityKey(publicKeyFingerprint(key.publicKeySpki))) {
      throw Errors.authorityKeyInUse(`the ${keyManager.backend === 'aws-kms' ? 'KMS' : 'token'} key already belongs to an authority`);
    }
    return key;
  }

  async get(id: string): Promise<Authority> {
    const authority = await this.repository.findById(id);
    if (!authority) throw Errors.authorityNotFound(`no authority with id ${id}`);
    return authority;
  }

  async list(cursor: string | undefined, limit: number): Promise<{ items: Authority[]; nextCursor: string | null }> {
    return creationPage(cursor, limit, (after, n) => this.repository.list(after, n));
  }

  async disable(ctx: RequestContext, id: string): Promise<Authority> {
    return this.transactions.run(async () => {
      const authority = await this.get(id);
      if (authority.status === 'disabled') return authority;
      const at = this.clock.now().toISOString();
      // Conditional update: of two concurrent calls only one changes the row, and only it is audited.
      if (!(await this.repository.disable(id, at))) return this.get(id);
      await this.audit.record(ctx, { action: 'authority.disabled', target: { type: 'authority', id }, details: { name: authority.name } });
      return { ...authority, status: 'disabled', disabledAt: at };
    });
  }

  /**
   * Rotation's last step: `id` stops issuing (retiring) and `successorId` issues in its place. Its CRL keeps being
   * published and its certificates keep their OCSP answers.
   */
  async retire(ctx: RequestContext, id: string, successorId: string): Promise<void> {
    await this.transactions.run(async () => {
      if (!(await this.repository.markRetiring(id, successorId, this.clock.now().toISOString()))) {
        throw Errors.authorityNotActive(`authority ${id} is not active and cannot be rotated`);
      }
      await this.audit.record(ctx, { action: 'authority.retiring', target: { type: 'authority', id }, details: { successorId } });
    });
  }

  /** The subject fields of an authority's certificate. */
  subjectOf(authority: Authority): SubjectFields {
    return subjectFieldsOf(certificateParts(authority.certificateDer).subject);
  }

  /** PEM of the authority's certificate followed by each parent up to the root. */
  async chainPem(authority: Authority): Promise<string> {
    return (await this.describe(authority)).chainPem;
  }

  /** The same by id; certificates never change, so after the first call this needs no database read. */
  async chainPemById(id: string): Promise<string> {
    return this.parsed.get(id)?.chainPem ?? this.chainPem(await this.get(id));
  }

  /** DER of the authority's certificate followed by each parent up to the root (kept in memory after the first call). */
  async chainDer(authority: Authority): Promise<Buffer[]> {
    return (await this.describe(authority)).chain;
  }

  /** The same, by id (as chainPemById). */
  async chainDerById(id: string): Promise<Buffer[]> {
    return this.parsed.get(id)?.chain ?? this.chainDer(await this.get(id));
  }

  /**
   * The issuer for new certificates: refuses disabled and expired authorities, and, when `usage` is given,
   * an authority whose certificates are for something else (a claim CA never issues device certificates).
   */
  async issuer(id: string, usage?: AuthorityUsage): Promise<Issuer> {
    return this.issuerOf(id, await this.get(id), usage);
  }

  /** `issuer`, judging the authority row the caller read already (null: no such authority). */
  private async issuerOf(id: string, found: Authority | null, usage?: AuthorityUsage): Promise<Issuer> {
    if (!found) throw Errors.authorityNotFound(`no authority with id ${id}`);
    const authority = found;
    if (usage !== undefined && authority.usage !== usage) {
      throw Errors.authorityUsageMismatch(`authority ${id} issues ${authority.usage === 'claims' ? 'claim certificates' : 'device and server certificates'} only`);
    }
    if (authority.status === 'retiring') {
      throw Errors.authorityNotActive(`authority ${id} is retiring and issues nothing new; issue under its successor ${authority.successorId}`);
    }
    if (authority.status === 'pending') throw pendingError(authority);
    if (authority.status !== 'active') throw Errors.authorityNotActive(`authority ${id} is ${authority.status} and cannot issue`);
    if (new Date(authority.notAfter) <= this.clock.now()) throw Errors.authorityExpired(`authority ${id} expired at ${authority.notAfter}`);
    return this.signingView(authority);
  }

  /**
   * The issuer for an end-entity certificate: as `issuer`, and the authority must sign end-entity certificates at all.
   * A root does not unless created with allowLeafIssuance: its key is the trust anchor of everything below it, so it
   * should stay offline-grade and sign only intermediates; a device key compromise must never need a new root.
   */
  async leafIssuer(id: string, usage: AuthorityUsage, read?: { authority: Authority | null }): Promise<Issuer> {
    // `read`: the row as the caller read it in this request, with its other facts (CertificateRepository.readForIssuance).
    const issuer = read ? await this.issuerOf(id, read.authority, usage) : await this.issuer(id, usage);
    const { authority } = issuer;
    if (!authority.allowLeafIssuance) {
      throw authority.type === 'root'
        ? Errors.authorityIsRoot(`authority ${id} is a root CA: issue under one of its intermediates (a root signs end-entity certificates only when created with allowLeafIssuance: true)`)
        : Errors.leafIssuanceNotAllowed(`authority ${id} was created with allowLeafIssuance: false and certifies only CAs`);
    }
    return issuer;
  }

  /** The authority that now issues in place of `id`: itself, or the end of its chain of successors. */
  async currentIssuerId(id: string): Promise<string> {
    let authority = await this.get(id);
    for (let hops = 0; authority.status === 'retiring' && authority.successorId && hops < 32; hops++) authority = await this.get(authority.successorId);
    return authority.id;
  }

  /** Throws AUTHORITY_PENDING for an authority that has no certificate yet (nothing to publish or sign under). */
  assertCertified(authority: Authority): void {
    if (!hasCertificate(authority)) throw pendingError(authority);
  }

  /** Whether the authority's key may sign now: always, except an offline root outside its signing window. */
  signingAllowed(authority: Authority): boolean {
    return !authority.offline || (authority.signingEnabledUntil !== null && new Date(authority.signingEnabledUntil) > this.clock.now());
  }

  /**
   * Opens an offline root's signing window for `minutes` (an operator's act, audited with the reason): inside it the
   * root signs intermediates, CRLs and OCSP signer certificates; outside it, nothing (docs/key-ceremony.md).
   */
  async openSigningWindow(ctx: RequestContext, id: string, minutes: number, reason: string): Promise<Authority> {
    return this.transactions.run(async () => {
      const authority = await this.get(id);
      const until = isoSeconds(new Date(this.clock.now().getTime() + minutes * 60_000));
      if (!authority.offline || !(await this.repository.setSigningWindow(id, until))) throw notOffline(id);
      await this.audit.record(ctx, { action: 'authority.signing_enabled', target: { type: 'authority', id }, details: { until, minutes, reason } });
      return { ...authority, signingEnabledUntil: until };
    });
  }

  /** Closes the window before its end (audited). Closing a closed window changes and records nothing. */
  async closeSigningWindow(ctx: RequestContext, id: string): Promise<Authority> {
    return this.transactions.run(async () => {
      const authority = await this.get(id);
      if (!authority.offline) throw notOffline(id);
      if (authority.signingEnabledUntil === null) return authority;
      await this.repository.setSigningWindow(id, null);
      await this.audit.record(ctx, { action: 'authority.signing_disabled', target: { type: 'authority', id }, details: { wasOpenUntil: authority.signingEnabledUntil } });
      return { ...authority, signingEnabledUntil: null };
    });
  }

  /** Signing material for any authority, active or not (CRLs stay signed after a CA is disabled). */
  async signingView(authority: Authority): Promise<Issuer> {
    // The one way to an authority's signer after its creation: an offline root's key is refused here outside a window.
    if (!this.signingAllowed(authority)) {
      throw Errors.authorityOffline(
        `authority ${authority.id} is an offline root: its key signs only while an operator has opened a signing window (POST /v1/authorities/${authority.id}/signing-window)`,
      );
    }
    const signer = await this.keys.get(authority.keyBackend).signer(authority.keyRef, authority.keySpec);
    const { name, keyId, chain } = await this.describe(authority);
    return { authority, signer, name, keyId, notBefore: new Date(authority.notBefore), notAfter: new Date(authority.notAfter), chain };
  }

  /** Every authority that has its certificate (pending ones have nothing to publish or sign). */
  async all(): Promise<Authority[]> {
    return (await this.repository.listAll()).filter(hasCertificate);
  }

  /** Raises the authority's revocation counter in the caller's transaction; the OCSP cache learns of it at commit. */
  async countRevocation(id: string): Promise<void> {
    await this.repository.countRevocation(id);
    this.transactions.afterCommit(() => this.watermarks.revoked(id));
  }

  nextCrlNumber(id: string, atLeast?: number): Promise<number> {
    return this.repository.nextCrlNumber(id, atLeast);
  }

  private async describe(authority: Authority): Promise<ParsedAuthority> {
    let cached = this.parsed.get(authority.id);
    if (!cached) {
      if (!hasCertificate(authority)) throw pendingError(authority);
      const parts = certificateParts(authority.certificateDer);
      const parentChain = authority.externalChain ?? (authority.parentId ? (await this.describe(await this.get(authority.parentId))).chain : []);
      const chain = [authority.certificateDer, ...parentChain];
      cached = {
        name: parts.subject,
        // What it signs names it by its certificate's SKI (an external root may compute SKIs by another method).
        keyId: subjectKeyIdentifierOf(authority.certificateDer) ?? keyIdentifier(parts.subjectPublicKeyInfo),
        chain,
        chainPem: chain.map((der) => pemEncode('CERTIFICATE', der)).join(''),
      };
      this.parsed.set(authority.id, cached);
    }
    return cached;
  }

  private async parentFor(input: CreateAuthorityInput): Promise<Issuer | undefined> {
    if (input.type === 'root') {
      if (input.parentId) throw Errors.validation('a root authority has no parentId');
      return undefined;
    }
    if (!input.parentId) throw Errors.parentRequired('an intermediate authority needs parentId');
    return this.issuer(input.parentId);
  }
}

function notOffline(id: string) {
  return Errors.authorityNotOffline(`authority ${id} is not an offline root: its key signs whenever it is active (signing windows are for roots created with offline: true)`);
}

function pendingError(authority: Authority) {
  return Errors.authorityPending(
    authority.status === 'pending'
      ? `authority ${authority.id} is pending: it has no certificate yet; upload the one its external root signs (POST /v1/authorities/${authority.id}/certificate)`
      : `authority ${authority.id} has no certificate: it was ${authority.status} while pending`,
  );
}


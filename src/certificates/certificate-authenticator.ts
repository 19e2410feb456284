import { createHash, KeyObject, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { Authority } from '../authorities/authority';
import { AuthoritiesService } from '../authorities/authorities.service';
import { Clock } from '../common/clock';
import { DomainError, Errors } from '../common/errors';
import { Pruner } from '../database/pruner';
import { MetricsService } from '../metrics/metrics.service';
import { verifyIssuedBy, ValidityWindow, validityProblem } from '../pki/issued-by';
import { checkJwtClaims, decodeX5cJwt, DecodedX5cJwt, JwsError, JwsFailure, verifyDecodedJwsSignature } from '../pki/jws';
import { RequestContext } from '../common/actor';
import { CertificateRecord } from './certificate';
import { CertificateRepository } from './certificate.repository';
import { UsedTokenIds } from './used-token-ids.repository';

/** A caller that proved it holds the key of a certificate this service issued. */
export interface CertificateIdentity {
  method: 'jwt' | 'mtls';
  certificate: CertificateRecord;
  authority: Authority;
  /** What the caller says it is: the JWT `sub`, when given. */
  name: string | null;
  ctx: RequestContext;
}

export interface CertificateAuthOptions {
  /** The exact `aud` a token must carry: this route's public URL. */
  audience: string;
  /** Who is authenticating, for metrics and logs ('station', 'device'). */
  purpose: string;
  /** Refuses (throws a 401 DomainError) a certificate that may not authenticate here, before its key is trusted. */
  accept(certificate: CertificateRecord, authority: Authority): void;
  /**
   * Told the certificate's SHA-256 fingerprint once it was accepted, or, for a token signed with a key known here
   * (byTokenOfKnownKey), once the signature verified and before the row is read: to start a read of the route's own
   * beside the authentication's. Its answer must be used only once the caller has authenticated.
   */
  prefetch?(fingerprint: string): void;
  /** The refusal of a certificate this service never issued. */
  untrusted(message: string): DomainError;
  /**
   * The route judges an expired certificate itself (renewal after expiry, RENEWAL_AFTER_EXPIRY_DAYS, refused there
   * with its own code and audited): the authenticator then only checks that its validity has begun.
   */
  expiryJudgedByRoute?: boolean;
}

/** Tokens live at most this long, so the replay cache stays small. */
export const MAX_TOKEN_LIFETIME_SECONDS = 300;
const CLOCK_SKEW_SECONDS = 60;

/** Public keys of certificates that signed tokens lately, by fingerprint: a factory line repeats one claim certificate. */
const PUBLIC_KEY_CACHE_SIZE = 1024;
/** Certificates lately found issued by their authority (verifyIssuedBy, the time-free checks), by the same reasoning. */
const ISSUED_BY_CACHE_SIZE = 1024;

const JWS_ERRORS: Record<JwsFailure, (message: string) => DomainError> = {
  malformed: Errors.tokenInvalid,
  'unsupported-algorithm': Errors.tokenInvalid,
  'missing-x5c': Errors.tokenInvalid,
  'missing-jti': Errors.tokenInvalid,
  'not-yet-valid': Errors.tokenInvalid,
  'lifetime-too-long': Errors.tokenInvalid,
  'bad-signature': Errors.tokenSignatureInvalid,
  'key-mismatch': Errors.tokenSignatureInvalid,
  expired: Errors.tokenExpired,
  'wrong-audience': Errors.tokenAudienceMismatch,
};

/**
 * Authenticates a caller by a certificate this service issued (factory stations by their claim certificate,
 * devices by their own), by either of two proofs of key possession: mutual TLS (the handshake's
 * CertificateVerify), or a short-lived JWT signed with the certificate's key and carrying it in `x5c`
 * (`aud` = the route's URL, `exp` at most 5 minutes ahead, `jti` single use). Both apply the same checks.
 * Failures are 401s counted in metrics and logged, never audited, so unauthenticated traffic cannot grow the
 * audit chain.
 */
@Injectable()
export class CertificateAuthenticator implements OnModuleInit {
  private readonly logger = new Logger('CertificateAuth');
  private readonly publicKeys = new Map<string, KeyObject>();
  /** `fingerprint/authority id` → the certificate's validity window, for certificates that passed verifyIssuedBy. */
  private readonly issuedBy = new Map<string, ValidityWindow>();

  constructor(
    private readonly certificates: CertificateRepository,
    private readonly authorities: AuthoritiesService,
    private readonly usedTokenIds: UsedTokenIds,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    private readonly pruner: Pruner,
  ) {}

  /**
   * Token ids are kept until their tokens expire (plus the clock skew): a replay after that fails on exp anyway, so
   * that is their retention; the Pruner deletes them afterwards in bounded batches.
   */
  onModuleInit(): void {
    this.pruner.register('used_token_ids', (now, limit) => this.usedTokenIds.prune(now, limit));
  }

  async authenticate(request: FastifyRequest, options: CertificateAuthOptions): Promise<CertificateIdentity> {
    const authorization = request.headers.authorization;
    const method = authorization !== undefined ? 'jwt' : 'mtls';
    try {
      return method === 'jwt' ? await this.byToken(request, authorization!, options) : await this.byTlsCertificate(request, options);
    } catch (err) {
      if (err instanceof DomainError && err.status === 401) {
        this.metrics.stationAuthFailures.inc({ method, reason: err.code });
        this.logger.warn(`401 ${request.method} ${request.routeOptions?.url ?? request.url.split('?')[0]} from ${request.ip} (${options.purpose}, ${method}): ${err.code} (request ${request.id})`);
      }
      throw err;
    }
  }

  private async byToken(request: FastifyRequest, authorization: string, options: CertificateAuthOptions): Promise<CertificateIdentity> {
    const match = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(authorization);
    if (!match) throw Errors.tokenInvalid('send "Authorization: Bearer <JWT>" signed with the certificate’s key, the certificate in x5c');
    const token = match[1];
    try {
      const decoded = decodeX5cJwt(token);
      const fingerprint = createHash('sha256').update(decoded.chain[0]).digest('hex');
      return (await this.byTokenOfKnownKey(request, decoded, fingerprint, options)) ?? (await this.byTokenInTurn(request, decoded, fingerprint, options));
    } catch (err) {
      if (err instanceof JwsError) throw JWS_ERRORS[err.reason](err.message);
      throw err;
    }
  }

  /**
   * The checks in the order that states why each comes where it does: the certificate must be ours and accepted, then
   * the signature (before the token id is spent, so nobody without the key can burn a caller's tokens, and before the
   * chain is validated, so only a holder of the key can make us parse a certificate), then the chain, the claims and
   * the token id. Three waits for the database on PostgreSQL: the certificate, the token id, and whatever the caller
   * started beside them.
   */
  private async byTokenInTurn(request: FastifyRequest, decoded: DecodedX5cJwt, fingerprint: string, options: CertificateAuthOptions): Promise<CertificateIdentity> {
    const { certificate, authority } = await this.issuedCertificate(fingerprint, options);
    verifyDecodedJwsSignature(decoded, this.publicKeyOf(certificate));
    await this.checkIssuedBy(certificate, authority, options);
    await this.checkX5cChain(decoded.chain.slice(1), authority, options);
    const { tokenId, keepUntil } = this.checkClaims(decoded, certificate.fingerprint, options);
    if (!(await this.usedTokenIds.use(tokenId, keepUntil))) throw Errors.tokenReplayed('this token (jti) was already used; sign a new one per request');
    return this.identity(request, 'jwt', certificate, authority, subjectOf(decoded));
  }

  /**
   * The same checks, with one wait for the database instead of two, for a certificate whose key signed a token here
   * lately (publicKeys, keyed by the exact certificate's SHA-256, so the key is that certificate's and nobody else's):
   * the signature and the claims first (no database needed), then the certificate's row and the token id in one
   * round trip, then every check on the row as above, read fresh, so a revocation or a disabled authority counts at
   * once. The token id is then spent before the row is judged, but only by a holder of the certificate's key, who can
   * burn nothing but its own tokens. Undefined (the caller goes the ordinary way, which gives every refusal its usual
   * answer) when the key is not known or the signature or the claims fail.
   */
  private async byTokenOfKnownKey(request: FastifyRequest, decoded: DecodedX5cJwt, fingerprint: string, options: CertificateAuthOptions): Promise<CertificateIdentity | undefined> {
    const key = this.publicKeys.get(fingerprint);
    if (!key) return undefined;
    let claims: { tokenId: string; keepUntil: string };
    try {
      verifyDecodedJwsSignature(decoded, key);
      claims = this.checkClaims(decoded, fingerprint, options);
    } catch {
      return undefined;
    }
    // Only a holder of the key gets here: the route's read may start.
    options.prefetch?.(fingerprint);
    const found = await this.certificates.findByFingerprintSpendingToken(fingerprint, { id: claims.tokenId, keepUntil: claims.keepUntil });
    if (!found) throw options.untrusted('the certificate was not issued by this service');
    const { certificate, authority } = await this.accepted(found, options, false);
    await this.checkIssuedBy(certificate, authority, options);
    await this.checkX5cChain(decoded.chain.slice(1), authority, options);
    if (!found.tokenFresh) throw Errors.tokenReplayed('this token (jti) was already used; sign a new one per request');
    return this.identity(request, 'jwt', certificate, authority, subjectOf(decoded));
  }

  /** The token's claims (exp, aud, jti…), and the id under which its jti is spent with the time to keep it. */
  private checkClaims(decoded: DecodedX5cJwt, certificateFingerprint: string, options: CertificateAuthOptions): { tokenId: string; keepUntil: string } {
    const { jti, expiresAt } = checkJwtClaims(decoded.payload, {
      audience: options.audience,
      now: this.clock.now(),
      maxLifetimeSeconds: MAX_TOKEN_LIFETIME_SECONDS,
      clockSkewSeconds: CLOCK_SKEW_SECONDS,
    });
    const tokenId = createHash('sha256').update(`${certificateFingerprint}\n${jti}`).digest('hex');
    // Kept past exp by the skew we allow, so a token cannot come back while it would still be accepted.
    return { tokenId, keepUntil: new Date(expiresAt.getTime() + CLOCK_SKEW_SECONDS * 1000).toISOString() };
  }

  /** The key of one of our stored certificates (keyed by its fingerprint, so a cached key is always that certificate's). */
  private publicKeyOf(certificate: CertificateRecord): KeyObject {
    let key = this.publicKeys.get(certificate.fingerprint);
    if (!key) {
      key = new X509Certificate(certificate.certificateDer).publicKey;
      remember(this.publicKeys, certificate.fingerprint, key, PUBLIC_KEY_CACHE_SIZE);
    }
    return key;
  }

  private async byTlsCertificate(request: FastifyRequest, options: CertificateAuthOptions): Promise<CertificateIdentity> {
    const socket = request.raw.socket as Partial<TLSSocket>;
    const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    if (!peer || !peer.raw) {
      throw Errors.unauthenticated('authenticate with the certificate: mutual TLS, or "Authorization: Bearer <JWT>" with x5c');
    }
    const fingerprint = createHash('sha256').update(peer.raw).digest('hex');
    // The TLS handshake proved possession of the key (CertificateVerify); what remains is trusting the certificate.
    const { certificate, authority } = await this.issuedCertificate(fingerprint, options);
    await this.checkIssuedBy(certificate, authority, options);
    return this.identity(request, 'mtls', certificate, authority, null);
  }

  /**
   * The certificate must be one we issued: found by its SHA-256 fingerprint, so the bytes are exactly ours. The
   * route's own rules (profile, authority usage, expiry) come next; the chain check (checkIssuedBy) follows the
   * proof of possession.
   */
  private async issuedCertificate(fingerprint: string, options: CertificateAuthOptions): Promise<{ certificate: CertificateRecord; authority: Authority }> {
    // The authority's row comes with the certificate's (one round trip); never from a cache, so a disable counts at once.
    const found = await this.certificates.findByFingerprintWithAuthority(fingerprint);
    if (!found) throw options.untrusted('the certificate was not issued by this service');
    return this.accepted(found, options);
  }

  /** The route's rules on a certificate found (CertificateAuthOptions.accept), then the route's read (prefetch). */
  private async accepted(
    found: { certificate: CertificateRecord; authority: Authority | null },
    options: CertificateAuthOptions,
    prefetch = true,
  ): Promise<{ certificate: CertificateRecord; authority: Authority }> {
    const { certificate } = found;
    const authority = found.authority ?? (await this.authorities.get(certificate.authorityId));
    options.accept(certificate, authority);
    if (prefetch) options.prefetch?.(certificate.fingerprint);
    return { certificate, authority };
  }

  /**
   * Defence in depth behind the fingerprint lookup: the certificate, read by @peculiar/x509 (not our DER code), names
   * its authority as issuer, carries the authority's key identifier, verifies with the authority's key and is valid
   * now (src/pki/issued-by.ts). A row whose bytes match but which its authority did not sign (a restored or tampered
   * database, a row moved to another authority) is refused. The time-free part is remembered per certificate and
   * authority, so a factory line repeating one claim certificate parses it once (docs/architecture.md, "Libraries").
   */
  private async checkIssuedBy(certificate: CertificateRecord, authority: Authority, options: CertificateAuthOptions): Promise<void> {
    const cacheKey = `${certificate.fingerprint}/${authority.id}`;
    let validity = this.issuedBy.get(cacheKey);
    if (!validity) {
      const issued = await verifyIssuedBy(certificate.certificateDer, authority.certificateDer);
      if (!issued.ok) throw options.untrusted(`the certificate does not verify against its authority ${authority.id}: ${issued.message}`);
      validity = issued.validity;
      remember(this.issuedBy, cacheKey, validity, ISSUED_BY_CACHE_SIZE);
    }
    const problem = validityProblem(validity, this.clock.now());
    if (problem?.failure === 'not-yet-valid') throw Errors.tokenInvalid(problem.message);
    if (problem?.failure === 'expired' && !options.expiryJudgedByRoute) throw options.untrusted(problem.message);
  }

  /**
   * RFC 7515 §4.1.6: the certificates after the first in x5c certify it, in turn. We trust only our authorities, so
   * each must be one of the issuing authority's chain (its own certificate or one above it), byte for byte; order is
   * not checked. Anything else is refused rather than ignored: a client sending a foreign chain is misconfigured, and
   * saying so beats accepting what we never looked at. (Mutual TLS: the client's extra certificates are not examined;
   * the leaf is checked against its authority above.)
   */
  private async checkX5cChain(extra: Buffer[], authority: Authority, options: CertificateAuthOptions): Promise<void> {
    if (extra.length === 0) return;
    const chain = await this.authorities.chainDer(authority);
    extra.forEach((der, i) => {
      if (!chain.some((known) => known.equals(der))) {
        throw options.untrusted(`x5c[${i + 1}] is not a certificate of the issuing authority's chain (authority ${authority.id}); send the certificate alone or with GET /v1/authorities/{id} chainPem`);
      }
    });
  }

  private identity(request: FastifyRequest, method: 'jwt' | 'mtls', certificate: CertificateRecord, authority: Authority, name: string | null): CertificateIdentity {
    return {
      method,
      certificate,
      authority,
      name,
      ctx: {
        actor: { type: certificate.profile === 'claim' ? 'claim-certificate' : 'device-certificate', id: certificate.fingerprint, role: null },
        requestId: String(request.id),
        sourceIp: request.ip && isIP(request.ip) ? request.ip : null,
      },
    };
  }
}

/** The JWT `sub`, when it is a name we can record. */
function subjectOf(decoded: DecodedX5cJwt): string | null {
  const sub = decoded.payload.sub;
  return typeof sub === 'string' && /^[\x20-\x7e]{1,128}$/.test(sub) ? sub : null;
}

/** Adds to a map used as a bounded cache, forgetting the oldest entry when it is full. */
function remember<V>(cache: Map<string, V>, key: string, value: V, maxSize: number): void {
  if (cache.size >= maxSize) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
}

import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { RequestContext } from '../auth/actor';
import { AuthoritiesService } from '../authorities/authorities.service';
import { CertificateRecord } from '../certificates/certificate';
import { CertificateRepository } from '../certificates/certificate.repository';
import { Clock } from '../common/clock';
import { DomainError, Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { MetricsService } from '../metrics/metrics.service';
import { checkJwtClaims, decodeX5cJwt, JwsError, JwsFailure, verifyJwsSignature } from '../pki/jws';
import { Claim } from './claim';
import { ClaimRepository } from './claim.repository';

/** A station that proved it holds a claim certificate's key. Whether the claim lets it exchange is decided after. */
export interface StationIdentity {
  method: 'jwt' | 'mtls';
  claim: Claim;
  claimCertificate: CertificateRecord;
  /** What the station says it is: the JWT `sub`, when given. */
  station: string | null;
  ctx: RequestContext;
}

/** The exchange URL is the audience: a token made for another service (or another of our routes) is refused. */
export const EXCHANGE_PATH = '/v1/provisioning/exchange';
/** Tokens live at most this long, so the replay cache stays small. */
export const MAX_TOKEN_LIFETIME_SECONDS = 300;
const CLOCK_SKEW_SECONDS = 60;
/** Used token ids are deleted this often once their tokens could no longer be accepted anyway. */
const PRUNE_EVERY_MS = 10 * 60_000;

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
 * Authenticates a factory station by its claim certificate, by either of two proofs of key possession:
 * mutual TLS (the handshake's CertificateVerify), or a short-lived JWT signed with the claim key and carrying
 * the certificate in `x5c`. Both then apply the same checks: the certificate is one this service issued as a
 * claim certificate, under a claims CA, and is within its validity. Failures here are 401s counted in metrics
 * and logged, never audited, so unauthenticated traffic cannot grow the audit chain.
 */
@Injectable()
export class StationAuthenticator implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('StationAuth');
  readonly audience: string;
  private pruneTimer?: NodeJS.Timeout;

  constructor(
    private readonly certificates: CertificateRepository,
    private readonly authorities: AuthoritiesService,
    private readonly claims: ClaimRepository,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.audience = `${config.publicBaseUrl}${EXCHANGE_PATH}`;
  }

  onModuleInit(): void {
    this.pruneTimer = setInterval(() => void this.pruneUsedTokenIds(), PRUNE_EVERY_MS);
    this.pruneTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.pruneTimer);
  }

  /** Forgets token ids whose tokens have expired (past the skew): a replay of one fails on exp anyway. */
  async pruneUsedTokenIds(): Promise<number> {
    try {
      return await this.claims.pruneTokenIds(this.clock.now().toISOString());
    } catch (err) {
      this.logger.warn(`pruning used token ids failed: ${(err as Error).message}`);
      return 0;
    }
  }

  async authenticate(request: FastifyRequest): Promise<StationIdentity> {
    const authorization = request.headers.authorization;
    const method = authorization !== undefined ? 'jwt' : 'mtls';
    try {
      return method === 'jwt' ? await this.byToken(request, authorization!) : await this.byTlsCertificate(request);
    } catch (err) {
      if (err instanceof DomainError && err.status === 401) {
        this.metrics.stationAuthFailures.inc({ method, reason: err.code });
        this.logger.warn(`401 ${request.method} ${request.url} from ${request.ip} by ${method}: ${err.code} (request ${request.id})`);
      }
      throw err;
    }
  }

  private async byToken(request: FastifyRequest, authorization: string): Promise<StationIdentity> {
    const match = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(authorization);
    if (!match) throw Errors.tokenInvalid('send "Authorization: Bearer <JWT>" signed with the claim key, with the claim certificate in x5c');
    const token = match[1];
    try {
      const decoded = decodeX5cJwt(token);
      const claimCertificate = await this.trustedClaimCertificate(decoded.chain[0]);
      // The signature is checked before the token id is spent, so nobody without the key can burn a station's tokens.
      verifyJwsSignature(token, new X509Certificate(claimCertificate.certificateDer).publicKey);
      const { jti, expiresAt } = checkJwtClaims(decoded.payload, {
        audience: this.audience,
        now: this.clock.now(),
        maxLifetimeSeconds: MAX_TOKEN_LIFETIME_SECONDS,
        clockSkewSeconds: CLOCK_SKEW_SECONDS,
      });
      const tokenId = createHash('sha256').update(`${claimCertificate.fingerprint}\n${jti}`).digest('hex');
      // Kept past exp by the skew we allow, so a token cannot come back while it would still be accepted.
      const keepUntil = new Date(expiresAt.getTime() + CLOCK_SKEW_SECONDS * 1000).toISOString();
      if (!(await this.claims.useTokenId(tokenId, keepUntil))) throw Errors.tokenReplayed('this token (jti) was already used; sign a new one per request');
      const sub = decoded.payload.sub;
      const station = typeof sub === 'string' && /^[\x20-\x7e]{1,128}$/.test(sub) ? sub : null;
      return this.identity(request, 'jwt', claimCertificate, station);
    } catch (err) {
      if (err instanceof JwsError) throw JWS_ERRORS[err.reason](err.message);
      throw err;
    }
  }

  private async byTlsCertificate(request: FastifyRequest): Promise<StationIdentity> {
    const socket = request.raw.socket as Partial<TLSSocket>;
    const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    if (!peer || !peer.raw) {
      throw Errors.unauthenticated('authenticate with the claim certificate: mutual TLS, or "Authorization: Bearer <JWT>" with x5c');
    }
    // The TLS handshake proved possession of the key (CertificateVerify); what remains is trusting the certificate.
    const claimCertificate = await this.trustedClaimCertificate(peer.raw);
    return this.identity(request, 'mtls', claimCertificate, null);
  }

  /**
   * The certificate must be one we issued (found by its SHA-256 fingerprint, so the bytes are exactly ours),
   * with the claim profile, under a claims CA, and within its validity. Revocation is the claim's business
   * and is judged (and audited) after authentication.
   */
  private async trustedClaimCertificate(der: Buffer): Promise<CertificateRecord> {
    const record = await this.certificates.findByFingerprint(createHash('sha256').update(der).digest('hex'));
    if (!record) throw Errors.claimCertificateUntrusted('the certificate was not issued by a claim authority of this service');
    if (record.profile !== 'claim') {
      throw Errors.notAClaimCertificate(`a claim certificate is required; this is a ${record.profile} certificate`);
    }
    const authority = await this.authorities.get(record.authorityId);
    if (authority.usage !== 'claims') throw Errors.claimCertificateUntrusted('the certificate was not issued by a claim authority');
    const now = this.clock.now();
    if (now < new Date(record.notBefore) || now >= new Date(record.notAfter)) {
      throw Errors.claimCertificateExpired(`the claim certificate is valid from ${record.notBefore} to ${record.notAfter}`);
    }
    return record;
  }

  private async identity(request: FastifyRequest, method: 'jwt' | 'mtls', claimCertificate: CertificateRecord, station: string | null): Promise<StationIdentity> {
    const claim = await this.claims.findByClaimCertificate(claimCertificate.id);
    if (!claim) throw Errors.notAClaimCertificate('the certificate belongs to no claim');
    return {
      method,
      claim,
      claimCertificate,
      station,
      ctx: {
        actor: { type: 'claim-certificate', id: claimCertificate.fingerprint, role: null },
        requestId: String(request.id),
        sourceIp: request.ip && isIP(request.ip) ? request.ip : null,
      },
    };
  }
}

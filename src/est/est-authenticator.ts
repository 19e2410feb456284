import { isIP } from 'node:net';
import { Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AuditService } from '../audit/audit.service';
import { ApiKeysService } from '../auth/api-keys.service';
import { RequestLimits } from '../auth/request-limits';
import { AuthoritiesService } from '../authorities/authorities.service';
import { CertificateIdentity } from '../certificates/certificate-authenticator';
import { DeviceAuthenticator } from '../certificates/device-authenticator';
import { StationAuthenticator, StationIdentity } from '../claims/station-authenticator';
import { RequestContext } from '../common/actor';
import { Errors } from '../common/errors';
import { Permission, roleAllows } from '../common/roles';
import { MetricsService } from '../metrics/metrics.service';
import { DEFAULT_EST_LABEL, EstLabel } from './est-label';
import { EstLabelsService } from './est-labels.service';

/** Who calls an EST enrollment operation, under which label. */
export type EstCaller =
  /** A factory station, by its claim certificate (claim labels: simpleenroll, serverkeygen). */
  | { kind: 'station'; label: EstLabel; identity: StationIdentity }
  /** A device, by its current certificate (simplereenroll, any label). */
  | { kind: 'device'; label: EstLabel; identity: CertificateIdentity }
  /** An operator's API key (authority labels: simpleenroll, serverkeygen). */
  | { kind: 'operator'; label: EstLabel; ctx: RequestContext };

/** The label a request names: its `:label` segment, or the default label. */
export function labelOf(request: FastifyRequest): string {
  const label = (request.params as { label?: unknown } | undefined)?.label;
  return typeof label === 'string' ? label : DEFAULT_EST_LABEL;
}

/**
 * Authenticates the caller of an EST enrollment from its headers and TLS socket alone (before the body is read,
 * auth/pre-body-authentication.ts), by what the label means (docs/est.md):
 * - simplereenroll: the device's current certificate, as POST /v1/certificates/renew (mutual TLS, or its x5c JWT);
 * - simpleenroll and serverkeygen on a claim label: the claim certificate, as POST /v1/provisioning/exchange;
 * - simpleenroll and serverkeygen on an authority label: an API key whose role may issue certificates (RFC 7030
 *   §3.2.3 lets the server use HTTP authentication; a Bearer key keeps one credential for the API and EST).
 * The certificate must belong to the label (its claim, or its authority): another is a 403 (EST_LABEL_MISMATCH).
 */
@Injectable()
export class EstAuthenticator {
  constructor(
    private readonly labels: EstLabelsService,
    private readonly stations: StationAuthenticator,
    private readonly devices: DeviceAuthenticator,
    private readonly authorities: AuthoritiesService,
    private readonly apiKeys: ApiKeysService,
    private readonly audit: AuditService,
    private readonly metrics: MetricsService,
    private readonly limits: RequestLimits,
  ) {}

  async authenticate(request: FastifyRequest): Promise<EstCaller> {
    const label = await this.labels.get(labelOf(request));
    const route = request.routeOptions?.url ?? request.url;
    if (route.endsWith('/simplereenroll')) {
      const identity = await this.devices.authenticate(request);
      await this.checkDeviceBelongs(label, identity);
      return { kind: 'device', label, identity };
    }
    if (label.kind === 'claim') {
      const identity = await this.stations.authenticate(request);
      if (identity.claim.id !== label.claimId) throw Errors.estLabelMismatch(`EST label "${label.label}" enrolls for another claim than this claim certificate's`);
      return { kind: 'station', label, identity };
    }
    return { kind: 'operator', label, ctx: await this.operator(request, route) };
  }

  private async checkDeviceBelongs(label: EstLabel, identity: CertificateIdentity): Promise<void> {
    const certificate = identity.certificate;
    const belongs =
      label.kind === 'claim'
        ? certificate.claimId === label.claimId
        : certificate.authorityId === label.authorityId || (await this.authorities.currentIssuerId(certificate.authorityId)) === label.authorityId;
    if (!belongs) throw Errors.estLabelMismatch(`EST label "${label.label}" renews the certificates of another ${label.kind === 'claim' ? 'claim' : 'authority'}`);
  }

  /** The API-key check of auth/auth.guard.ts for the one permission EST needs: 401s logged only, 403s audited. */
  private async operator(request: FastifyRequest, route: string): Promise<RequestContext> {
    const result = await this.apiKeys.authenticate(request.headers.authorization);
    if (!result.ok) {
      this.metrics.authFailures.inc({ reason: result.reason });
      throw Errors.unauthenticated(result.reason === 'missing' ? 'this EST label enrolls with an API key: send "Authorization: Bearer <key>"' : 'the API key is not valid');
    }
    this.limits.checkApiKey(result.key.id);
    const ctx: RequestContext = {
      actor: { type: 'api-key', id: result.key.id, role: result.key.role },
      requestId: String(request.id),
      sourceIp: request.ip && isIP(request.ip) ? request.ip : null,
    };
    if (!roleAllows(result.key.role, Permission.IssueCertificates)) {
      this.metrics.authDenied.inc({ role: result.key.role });
      await this.audit.record(ctx, { action: 'auth.denied', details: { route: `${request.method} ${route}`, permission: Permission.IssueCertificates, role: result.key.role } });
      throw Errors.forbidden(`role ${result.key.role} may not ${Permission.IssueCertificates}`);
    }
    return ctx;
  }
}

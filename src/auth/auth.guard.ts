import { isIP } from 'node:net';
import { CanActivate, ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import { AuditService } from '../audit/audit.service';
import { Errors } from '../common/errors';
import { MetricsService } from '../metrics/metrics.service';
import { RequestContext } from '../common/actor';
import { ApiKeysService } from './api-keys.service';
import { RequestLimits } from './request-limits';
import { PERMISSION_KEY, PUBLIC_KEY, REQUEST_CONTEXT } from '../common/access.decorators';
import { Permission, roleAllows } from '../common/roles';

/**
 * Global guard: API-key authentication and the role check. 401s (no or bad key) go to metrics and the
 * log only, so anonymous traffic cannot grow the audit chain; 403s come from a known key and are audited.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly logger = new Logger('Auth');

  constructor(
    private readonly reflector: Reflector,
    private readonly apiKeys: ApiKeysService,
    private readonly audit: AuditService,
    private readonly metrics: MetricsService,
    private readonly limits: RequestLimits,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const permission = this.reflector.getAllAndOverride<Permission | undefined>(PERMISSION_KEY, targets);
    const request = context.switchToHttp().getRequest<FastifyRequest & Record<string, unknown>>();
    const route = `${request.method} ${request.routeOptions?.url ?? request.url}`;

    const result = await this.apiKeys.authenticate(request.headers.authorization);
    if (!result.ok) {
      this.metrics.authFailures.inc({ reason: result.reason });
      // Never log the header itself: it may be a real key with a typo.
      this.logger.warn(`401 ${route} from ${request.ip}: ${result.reason} API key (request ${request.id})`);
      throw Errors.unauthenticated(
        result.reason === 'missing'
          ? 'send an API key as "Authorization: Bearer <key>"'
          : 'the API key is not valid',
      );
    }

    // Before the role check, whose refusal is audited: a key past its limit costs no more than a lookup.
    this.limits.checkApiKey(result.key.id);

    const ctx: RequestContext = {
      actor: { type: 'api-key', id: result.key.id, role: result.key.role },
      requestId: String(request.id),
      // With TRUST_PROXY the address comes from X-Forwarded-For: record it only when it is an address.
      sourceIp: request.ip && isIP(request.ip) ? request.ip : null,
    };
    request[REQUEST_CONTEXT] = ctx;

    if (!permission || !roleAllows(result.key.role, permission)) {
      this.metrics.authDenied.inc({ role: result.key.role });
      await this.audit.record(ctx, {
        action: 'auth.denied',
        details: { route, permission: permission ?? 'undeclared', role: result.key.role },
      });
      throw Errors.forbidden(`role ${result.key.role} may not ${permission ?? 'call this route'}`);
    }
    return true;
  }
}

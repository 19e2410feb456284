import { applyDecorators, createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { ApiPublic } from './openapi';
import { RequestContext } from './actor';
import { Permission } from './roles';

/*
 * What a route requires, declared on the controllers of every feature. The declarations live here, below all of
 * them (the audit log's own routes included); auth/auth.guard.ts reads them and enforces them on every request.
 */

export const PERMISSION_KEY = 'fleetpki:permission';
export const PUBLIC_KEY = 'fleetpki:public';

/** The permission a route needs; the guard refuses every route that declares neither this nor @Public(). */
export const RequirePermission = (permission: Permission) => SetMetadata(PERMISSION_KEY, permission);

/** Routes anyone may call (health, CRLs, CA certificates); documented with `security: []` in OpenAPI. */
export const Public = () => applyDecorators(SetMetadata(PUBLIC_KEY, true), ApiPublic());

export const REQUEST_CONTEXT = 'fleetpkiContext';

/** Injects the authenticated request's context (actor, request id, source address). */
export const Ctx = createParamDecorator((_data: unknown, ctx: ExecutionContext): RequestContext => {
  const request = ctx.switchToHttp().getRequest<Record<string, unknown>>();
  return request[REQUEST_CONTEXT] as RequestContext;
});

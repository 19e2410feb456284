import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { RequestContext } from './actor';
import { Permission } from './roles';

export const PERMISSION_KEY = 'fleetpki:permission';
export const PUBLIC_KEY = 'fleetpki:public';

/** The permission a route needs; the guard refuses every route that declares neither this nor @Public(). */
export const RequirePermission = (permission: Permission) => SetMetadata(PERMISSION_KEY, permission);

/** Routes anyone may call (health, CRLs, CA certificates). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);

export const REQUEST_CONTEXT = 'fleetpkiContext';

/** Injects the authenticated request's context (actor, request id, source address). */
export const Ctx = createParamDecorator((_data: unknown, ctx: ExecutionContext): RequestContext => {
  const request = ctx.switchToHttp().getRequest<Record<string, unknown>>();
  return request[REQUEST_CONTEXT] as RequestContext;
});

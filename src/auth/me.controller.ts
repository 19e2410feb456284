import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { ApiSecured } from '../common/openapi';
import { grantsOf, Permission, Role, ROLES } from '../common/roles';
import { ApiKeysService } from './api-keys.service';

export class MeDto {
  @ApiProperty({ format: 'uuid', description: 'The API key’s id (the actor id of its audit events)' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: ROLES }) role: string;
  @ApiProperty({ description: 'Public part of the key' }) prefix: string;
  @ApiProperty({ enum: Object.values(Permission), isArray: true, description: 'What the role may do (src/common/roles.ts)' }) permissions: string[];
}

/** Who the caller is: the ops console (docs/console.md) shows only what the caller's role may do. */
@ApiTags('api-keys')
@Controller('v1/me')
export class MeController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @Get()
  @RequirePermission(Permission.ReadSelf)
  @ApiOperation({
    summary: 'The calling API key: id, name, role and what the role may do',
    description: 'Every role may call it. Never returns the secret. The API enforces the role on every route whatever a client shows.',
  })
  @ApiOkResponse({ type: MeDto, description: 'The calling key' })
  @ApiSecured()
  async getMe(@Ctx() ctx: RequestContext): Promise<MeDto> {
    const key = await this.apiKeys.get(ctx.actor.id);
    return { id: key.id, name: key.name, role: key.role, prefix: key.prefix, permissions: [...grantsOf(key.role as Role)] };
  }
}

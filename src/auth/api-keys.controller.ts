import { Body, Controller, Delete, Get, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsIn, IsString, Length, Matches } from 'class-validator';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ApiSecured } from '../common/openapi';
import { UuidParam } from '../common/pipes';
import { NO_CONTROL_CHARS } from '../common/text';
import { RequestContext } from '../common/actor';
import { ApiKeysService, ApiKeyView } from './api-keys.service';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Permission, Role, ROLES } from '../common/roles';
import { Idempotent } from '../common/idempotency';

export class CreateApiKeyDto {
  @ApiProperty({ example: 'factory-line-3 operator', maxLength: 200 })
  @IsString() @Length(1, 200) @Matches(NO_CONTROL_CHARS, { message: 'name must not contain control characters' })
  name: string;

  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES)
  role: Role;
}

export class ApiKeyDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ enum: ROLES }) role: string;
  @ApiProperty({ description: 'Public part of the key, shown in logs and lists' }) prefix: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ nullable: true, type: String }) createdBy: string | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) revokedAt: string | null;
}

export class CreatedApiKeyDto extends ApiKeyDto {
  @ApiProperty({ description: 'The secret key. Shown once: store it now.', example: 'fpk_1a2b3c4d5e6f.…' }) key: string;
}

export class ApiKeyListDto {
  @ApiProperty({ type: [ApiKeyDto] }) items: ApiKeyDto[];
}

@ApiTags('api-keys')
@Controller('v1/api-keys')
export class ApiKeysController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @Post()
  @Idempotent({ secretAnswer: true })
  @RequirePermission(Permission.ManageApiKeys)
  @ApiOperation({
    summary: 'Create an API key; the secret is in this response only',
    description: 'Only a hash of the secret is stored: a lost key cannot be recovered, only revoked and replaced. Requires the admin role.',
  })
  @ApiCreatedResponse({ type: CreatedApiKeyDto, description: 'The new key, including its secret (shown once)' })
  @ApiSecured()
  createApiKey(@Ctx() ctx: RequestContext, @Body() body: CreateApiKeyDto): Promise<CreatedApiKeyDto> {
    return this.apiKeys.create(ctx, body.name, body.role);
  }

  @Get()
  @RequirePermission(Permission.ManageApiKeys)
  @ApiOperation({ summary: 'List API keys (never their secrets)', description: 'All keys, revoked ones included. Requires the admin role.' })
  @ApiOkResponse({ type: ApiKeyListDto, description: 'Every API key' })
  @ApiSecured()
  async listApiKeys(): Promise<ApiKeyListDto> {
    return { items: await this.apiKeys.list() };
  }

  @Delete(':id')
  @RequirePermission(Permission.ManageApiKeys)
  @ApiOperation({
    summary: 'Revoke an API key; it stops working at once',
    description: 'Idempotent: revoking a revoked key returns it unchanged. Requires the admin role.',
  })
  @ApiIdParam('API key')
  @ApiOkResponse({ type: ApiKeyDto, description: 'The key, now revoked' })
  @ApiSecured()
  @ApiProblems(Errors.apiKeyNotFound)
  revokeApiKey(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string): Promise<ApiKeyView> {
    return this.apiKeys.revoke(ctx, id);
  }
}

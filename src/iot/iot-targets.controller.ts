import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiParam, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsObject, IsOptional, IsString, Length, Matches } from 'class-validator';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { RequestContext } from '../common/actor';
import { Errors } from '../common/errors';
import { ApiProblems, ApiSecured } from '../common/openapi';
import { Permission, roleAllows } from '../common/roles';
import { IOT_TARGET_ID_PATTERN, IotTarget } from './iot-target';
import { IotTargetsService } from './iot-targets.service';

export class CreateIotTargetDto {
  @ApiProperty({ description: 'Lowercase letters, digits and -, 1-63; "default" is taken by the service\'s own configuration', example: 'eu-prod' })
  @Matches(IOT_TARGET_ID_PATTERN, { message: 'id must be 1-63 lowercase letters, digits or -' })
  id: string;

  @ApiProperty({ example: '111122223333' })
  @Matches(/^\d{12}$/, { message: 'accountId must be a 12-digit AWS account id' })
  accountId: string;

  @ApiProperty({ example: 'eu-west-1' })
  @Matches(/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/, { message: 'region must be an AWS region name' })
  region: string;

  @ApiPropertyOptional({ description: 'An IAM role to assume (STS AssumeRole) for this target', example: 'arn:aws:iam::111122223333:role/FleetPkiIot' })
  @IsOptional() @Matches(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, { message: 'roleArn must be an IAM role ARN' })
  roleArn?: string;

  @ApiPropertyOptional({ description: 'A named profile of the AWS shared config/credentials files (credentials are never sent to this API)', example: 'eu-prod' })
  @IsOptional() @IsString() @Matches(/^[\w.@+=-]{1,128}$/, { message: 'profile must be an AWS profile name' })
  profile?: string;

  @ApiPropertyOptional({
    description: 'Endpoint override (a VPC endpoint): an https URL of an *.amazonaws.com(.cn) host; any URL only when IOT_TARGET_ENDPOINTS_ANY=true (tests, stand-ins)',
    example: 'https://iot.eu-west-1.amazonaws.com',
  })
  @IsOptional() @IsString() @Length(8, 2048) @Matches(/^https?:\/\/[^\s]+$/, { message: 'endpoint must be an http(s) URL' })
  endpoint?: string;

  @ApiPropertyOptional({ description: 'Requests per second per AWS IoT operation, over IOT_RATE_LIMITS', example: { RegisterCertificate: 5 }, type: 'object', additionalProperties: { type: 'number' } })
  @IsOptional() @IsObject()
  rateLimits?: Record<string, number>;
}

export class IotTargetDto {
  @ApiProperty({ example: 'eu-prod' }) id: string;
  @ApiProperty({ nullable: true, type: String, description: 'Null for the default target when AWS_ACCOUNT_ID is unset' }) accountId: string | null;
  @ApiProperty({ description: 'Empty for the default target when AWS IoT is not configured' }) region: string;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'Only to callers that may manage IoT targets (admin)' }) roleArn?: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'Only to callers that may manage IoT targets (admin)' }) profile?: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'Only to callers that may manage IoT targets (admin)' }) endpoint?: string | null;
  @ApiProperty({ nullable: true, type: 'object', additionalProperties: { type: 'number' } }) rateLimits: Record<string, number> | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'Null for the default target' }) createdAt: string | null;
}

export class IotTargetListDto {
  @ApiProperty({ type: [IotTargetDto] }) items: IotTargetDto[];
}

/**
 * A target as the caller may see it: the role, profile and endpoint (where signed AWS calls go, with which identity)
 * only to callers that may manage targets (docs/threat-model.md).
 */
function toDto(target: IotTarget, ctx: RequestContext): IotTargetDto {
  if (ctx.actor.role && roleAllows(ctx.actor.role, Permission.ManageIotTargets)) return { ...target };
  const { roleArn: _roleArn, profile: _profile, endpoint: _endpoint, ...rest } = target;
  return rest;
}

@ApiTags('iot')
@Controller('v1/iot/targets')
export class IotTargetsController {
  constructor(private readonly targets: IotTargetsService) {}

  @Post()
  @RequirePermission(Permission.ManageIotTargets)
  @ApiOperation({ summary: 'Add an IoT target (an AWS account and region)', description: 'Admin only. See docs/iot-targets.md.' })
  @ApiCreatedResponse({ type: IotTargetDto })
  @ApiSecured()
  @ApiProblems(Errors.validation, Errors.iotTargetExists, Errors.iotTargetDuplicateAccount)
  async createIotTarget(@Ctx() ctx: RequestContext, @Body() body: CreateIotTargetDto): Promise<IotTargetDto> {
    return toDto(await this.targets.create(ctx, body), ctx);
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'IoT targets, the implicit "default" first', description: 'Any role; roleArn, profile and endpoint only to admins.' })
  @ApiOkResponse({ type: IotTargetListDto })
  @ApiSecured()
  async listIotTargets(@Ctx() ctx: RequestContext): Promise<IotTargetListDto> {
    return { items: (await this.targets.list()).map((target) => toDto(target, ctx)) };
  }

  @Get(':targetId')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'An IoT target', description: 'Any role; roleArn, profile and endpoint only to admins.' })
  @ApiParam({ name: 'targetId', example: 'eu-prod' })
  @ApiOkResponse({ type: IotTargetDto })
  @ApiSecured()
  @ApiProblems(Errors.iotTargetNotFound)
  async getIotTarget(@Ctx() ctx: RequestContext, @Param('targetId') targetId: string): Promise<IotTargetDto> {
    return toDto(await this.targets.get(targetId), ctx);
  }

  @Delete(':targetId')
  @HttpCode(204)
  @RequirePermission(Permission.ManageIotTargets)
  @ApiOperation({ summary: 'Delete an IoT target no registration, certificate, claim or EST label uses', description: 'Admin only.' })
  @ApiParam({ name: 'targetId', example: 'eu-prod' })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiSecured()
  @ApiProblems(Errors.iotTargetNotFound, Errors.iotTargetInUse)
  async deleteIotTarget(@Ctx() ctx: RequestContext, @Param('targetId') targetId: string): Promise<void> {
    await this.targets.delete(ctx, targetId);
  }
}

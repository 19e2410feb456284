import { Body, Controller, Get, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsDefined, IsOptional, IsString, Length, Matches } from 'class-validator';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Permission } from '../common/roles';
import { Errors } from '../common/errors';
import { ApiProblems, ApiSecured } from '../common/openapi';
import { PolicyTemplate } from './policy-template';
import { PolicyTemplatesService } from './policy-templates.service';
import { IOT_POLICY_NAME_PATTERN } from './iot-registration';
import { Idempotent } from '../common/idempotency';


class SavePolicyDto {
  @ApiProperty({ example: 'fleet-default', description: 'The AWS IoT policy name (1-128 of letters, digits, _+=,.@-)' })
  @IsString() @Matches(IOT_POLICY_NAME_PATTERN, { message: 'name must be 1-128 characters of letters, digits and _+=,.@-' })
  name: string;

  @ApiProperty({ type: 'object', additionalProperties: true, description: 'AWS IoT policy document (JSON object, or its text)' })
  @IsDefined()
  document: object | string;

  @ApiPropertyOptional({ type: [String], description: 'Finding codes accepted for this version (admin only; audited)' })
  @IsOptional() @IsArray() @ArrayMaxSize(20) @IsString({ each: true }) @Length(1, 64, { each: true })
  acceptFindings?: string[];
}

class PolicyFindingDto {
  @ApiProperty({ example: 'WILDCARD_ACTION' }) code: string;
  @ApiProperty({ enum: ['high', 'medium', 'low'] }) severity: string;
  @ApiProperty({ description: 'The statement: its Sid, or #<index>' }) statement: string;
  @ApiProperty() message: string;
  @ApiPropertyOptional({ description: 'Accepted by an admin for this version' }) accepted?: boolean;
}

class PolicyTemplateDto {
  @ApiProperty() name: string;
  @ApiProperty({ type: 'integer' }) version: number;
  @ApiProperty({ type: 'object', additionalProperties: true }) document: object;
  @ApiProperty({ type: [String] }) acceptedFindings: string[];
  @ApiProperty({ enum: ['pending', 'synced', 'failed'], description: 'Whether AWS IoT has this version as its default' }) iotStatus: string;
  @ApiProperty({ nullable: true, type: String }) iotLastError: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;
  @ApiPropertyOptional({ type: [PolicyFindingDto], description: 'On save: every finding, each accepted' }) findings?: PolicyFindingDto[];
}

class PolicyTemplateVersionDto {
  @ApiProperty() name: string;
  @ApiProperty({ type: 'integer' }) version: number;
  @ApiProperty({ type: 'object', additionalProperties: true }) document: object;
  @ApiProperty({ type: [String], description: 'Finding codes an admin accepted for this version' }) acceptedFindings: string[];
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ nullable: true, type: String, description: 'The API key id that wrote it' }) createdBy: string | null;
}

class PolicyTemplateDetailDto extends PolicyTemplateDto {
  @ApiProperty({ type: [PolicyTemplateVersionDto], description: 'Every stored version, newest first' }) versions: PolicyTemplateVersionDto[];
}

class PolicyTemplateListDto {
  @ApiProperty({ type: [PolicyTemplateDto] }) items: PolicyTemplateDto[];
}

function toDto(template: PolicyTemplate): PolicyTemplateDto {
  return { ...template, document: JSON.parse(template.document) as object };
}

@ApiTags('iot')
@Controller('v1/iot/policies')
export class PolicyTemplatesController {
  constructor(private readonly templates: PolicyTemplatesService) {}

  @Post()
  @Idempotent()
  @RequirePermission(Permission.ManagePolicies)
  @ApiOperation({
    summary: 'Create a managed AWS IoT policy, or its next version',
    description:
      'The document is linted: a statement allowing iot:* or another wildcard action, Resource "*" or an unscoped topic or client ' +
      'wildcard for Connect/Publish/Subscribe/Receive, iot:Connect for any client id, or an action outside the device data plane is ' +
      'refused with 422 POLICY_FINDINGS naming each finding — unless an admin lists its code in `acceptFindings` (audited). The version ' +
      'then becomes the default in AWS IoT through the outbox (older versions pruned, AWS keeps five). Requires the operator or admin role.',
  })
  @ApiCreatedResponse({ type: PolicyTemplateDto })
  @ApiSecured()
  @ApiProblems(Errors.invalidPolicyDocument, Errors.policyFindings, Errors.policyTemplateConflict)
  async savePolicy(@Ctx() ctx: RequestContext, @Body() body: SavePolicyDto): Promise<PolicyTemplateDto> {
    const { template, findings } = await this.templates.save(ctx, body);
    return { ...toDto(template), findings };
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'List managed AWS IoT policies', description: 'The current version of each, with its AWS IoT sync status.' })
  @ApiOkResponse({ type: PolicyTemplateListDto })
  @ApiSecured()
  async listPolicies(): Promise<PolicyTemplateListDto> {
    return { items: (await this.templates.list()).map(toDto) };
  }

  @Get(':name')
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'A managed AWS IoT policy: current version and history', description: 'Versions newest first, with who wrote them and which findings were accepted.' })
  @ApiParam({ name: 'name', description: 'Policy name' })
  @ApiOkResponse({ type: PolicyTemplateDetailDto })
  @ApiSecured()
  @ApiProblems(Errors.policyTemplateNotFound)
  async getPolicy(@Param('name') name: string): Promise<PolicyTemplateDetailDto> {
    if (!IOT_POLICY_NAME_PATTERN.test(name)) throw Errors.validation('name must be 1-128 characters of letters, digits and _+=,.@-');
    const template = await this.templates.get(name);
    const versions = (await this.templates.versions(name)).map((v) => ({ ...v, document: JSON.parse(v.document) as object }));
    return { ...toDto(template), versions };
  }
}

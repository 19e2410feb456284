import { Body, Controller, Delete, Get, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Permission } from '../common/roles';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ApiSecured, ProblemGroups } from '../common/openapi';
import { UuidParam } from '../common/pipes';
import { IotCaRegistrationDto, RegisterIotCaDto, toIotCaRegistrationDto } from './iot.dto';
import { IotRegistrationsService } from './iot-registrations.service';
import { PolicyTemplatesService } from './policy-templates.service';
import { Idempotent } from '../common/idempotency';
import { DEFAULT_TARGET_ID, IOT_TARGET_ID_PATTERN } from './iot-target';

@ApiTags('iot')
@Controller('v1/authorities/:id/iot-registration')
export class IotRegistrationsController {
  constructor(
    private readonly registrations: IotRegistrationsService,
    private readonly policies: PolicyTemplatesService,
  ) {}

  @Post()
  @Idempotent()
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({
    summary: 'Register the authority with AWS IoT for JITR/JITP or API-mode devices',
    description:
      'DEFAULT mode fetches the account registration code and proves possession of the CA key with a verification certificate signed by it (in KMS or the local store); SNI_ONLY needs none. AWS refusals come back as 502 IOT_REQUEST_REFUSED with AWS’s reason. A deactivated registration is registered again: AWS IoT’s existing CA (if it still has it, and it is this authority’s certificate in the same mode) is set back to what is asked, else the CA is registered afresh (audited authority.iot-registered with reregistered: true). A CA AWS IoT already holds but we did not record (a lost answer) is adopted when it is ours, else 409.',
  })
  @ApiIdParam('authority')
  @ApiCreatedResponse({ type: IotCaRegistrationDto, description: 'Registered' })
  @ApiSecured()
  @ApiProblems(ProblemGroups.issuer, Errors.authorityUsageMismatch, Errors.iotAlreadyRegistered, Errors.iotTargetNotFound, Errors.iotDefaultModeTaken, Errors.policyTemplateNotFound, ProblemGroups.signing, ProblemGroups.iotCall)
  async registerIotCa(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string, @Body() body: RegisterIotCaDto): Promise<IotCaRegistrationDto> {
    const registration = await this.registrations.register(ctx, id, {
      certificateMode: body.certificateMode ?? 'DEFAULT',
      // Auto-registration serves JITR/JITP only; in API mode it would let AWS take certificates we did not register.
      autoRegistration: body.autoRegistration ?? ['jitr', 'jitp'].includes(body.deviceRegistration ?? 'jitr'),
      setAsActive: body.setAsActive ?? true,
      deviceRegistration: body.deviceRegistration ?? 'jitr',
      policyName: await this.policies.policyNameFor(body.policyName, body.policyTemplate),
      provisioningTemplate: body.provisioningTemplate,
      targetId: body.targetId,
    });
    return toIotCaRegistrationDto(registration);
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'The authority’s AWS IoT registration', description: 'Any role.' })
  @ApiIdParam('authority')
  @ApiOkResponse({ type: IotCaRegistrationDto, description: 'The registration' })
  @ApiSecured()
  @ApiQuery({ name: 'targetId', required: false, description: 'The IoT target; default: "default"' })
  @ApiProblems(Errors.validation, Errors.authorityNotFound, Errors.iotRegistrationNotFound, Errors.iotTargetNotFound)
  async getIotCaRegistration(@Param('id', UuidParam) id: string, @Query('targetId') targetId?: string): Promise<IotCaRegistrationDto> {
    return toIotCaRegistrationDto(await this.registrations.get(id, targetIdParam(targetId)));
  }

  @Delete()
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({ summary: 'Deactivate the authority in AWS IoT', description: 'Sets the CA certificate INACTIVE and auto-registration off in AWS IoT.' })
  @ApiIdParam('authority')
  @ApiOkResponse({ type: IotCaRegistrationDto, description: 'Deactivated' })
  @ApiSecured()
  @ApiQuery({ name: 'targetId', required: false, description: 'The IoT target; default: "default"' })
  @ApiProblems(Errors.validation, Errors.authorityNotFound, Errors.iotRegistrationNotFound, Errors.iotTargetNotFound, ProblemGroups.iotCall)
  async deactivateIotCa(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string, @Query('targetId') targetId?: string): Promise<IotCaRegistrationDto> {
    return toIotCaRegistrationDto(await this.registrations.deactivate(ctx, id, targetIdParam(targetId)));
  }
}

function targetIdParam(value: unknown): string {
  if (value === undefined) return DEFAULT_TARGET_ID;
  if (typeof value !== 'string' || !IOT_TARGET_ID_PATTERN.test(value)) throw Errors.validation('targetId must be an IoT target id');
  return value;
}

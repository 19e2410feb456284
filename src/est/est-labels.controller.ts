import { Body, Controller, Delete, Get, Param, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Errors } from '../common/errors';
import { ApiProblems, ApiSecured } from '../common/openapi';
import { Permission } from '../common/roles';
import { DEFAULT_EST_LABEL, EST_LABEL_PATTERN } from './est-label';
import { CreateEstLabelDto, EstLabelDto, EstLabelListDto, toEstLabelDto } from './est.dto';
import { EstLabelsService } from './est-labels.service';
import { Idempotent } from '../common/idempotency';

/** EST labels: what /.well-known/est/<label>/ enrolls for (docs/est.md). */
@ApiTags('est')
@Controller('v1/est/labels')
export class EstLabelsController {
  constructor(private readonly labels: EstLabelsService) {}

  @Post()
  @Idempotent()
  @RequirePermission(Permission.ManageEstLabels)
  @ApiOperation({
    summary: 'Create an EST label',
    description:
      'A claim label (`kind: claim`, `claimId`): EST enrollment under it is the factory exchange of that claim, the TLS client certificate being the ' +
      'claim certificate. An authority label (`kind: authority`, `authorityId`, `profile`, optional `validityDays`): enrollment issues under that ' +
      'authority and profile for an operator API key. The label named `default` serves /.well-known/est/<operation> without a label. ' +
      '`serverKeygen: true` allows /serverkeygen. `allocation` (docs/iot-targets.md) sends the devices enrolled through the label to IoT targets, over the claim\'s or the profile\'s allocation; every target it names must exist. Audited (est-label.created). Requires the admin role.',
  })
  @ApiCreatedResponse({ type: EstLabelDto })
  @ApiSecured()
  @ApiProblems(Errors.invalidEstLabel, Errors.estLabelExists, Errors.claimNotFound, Errors.authorityNotFound, Errors.authorityUsageMismatch, Errors.profileNotFound, Errors.validityTooLong, Errors.validation, Errors.iotTargetNotFound)
  async createEstLabel(@Ctx() ctx: RequestContext, @Body() body: CreateEstLabelDto): Promise<EstLabelDto> {
    const label = await this.labels.create(ctx, body);
    return toEstLabelDto(label, label.label === DEFAULT_EST_LABEL);
  }

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({ summary: 'List the EST labels', description: 'In label order. Any role may read.' })
  @ApiOkResponse({ type: EstLabelListDto })
  @ApiSecured()
  async listEstLabels(): Promise<EstLabelListDto> {
    return { items: (await this.labels.list()).map((label) => toEstLabelDto(label, label.label === DEFAULT_EST_LABEL)) };
  }

  @Delete(':label')
  @RequirePermission(Permission.ManageEstLabels)
  @ApiOperation({ summary: 'Delete an EST label', description: 'Enrollment under it stops at once; what it issued stays. Audited (est-label.deleted). Requires the admin role.' })
  @ApiParam({ name: 'label', schema: { type: 'string', pattern: EST_LABEL_PATTERN.source } })
  @ApiOkResponse({ type: EstLabelDto, description: 'The deleted label' })
  @ApiSecured()
  @ApiProblems(Errors.estLabelNotFound)
  async deleteEstLabel(@Ctx() ctx: RequestContext, @Param('label') name: string): Promise<EstLabelDto> {
    const label = await this.labels.delete(ctx, name);
    return toEstLabelDto(label, label.label === DEFAULT_EST_LABEL);
  }
}

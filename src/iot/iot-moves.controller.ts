import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Matches } from 'class-validator';
import { AuditService } from '../audit/audit.service';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { RequestContext } from '../common/actor';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { Idempotent } from '../common/idempotency';
import { ApiIdParam, ApiProblems, ApiSecured } from '../common/openapi';
import { UuidParam } from '../common/pipes';
import { Permission } from '../common/roles';
import { effectiveStatus } from '../certificates/certificate';
import { CertificateDto, toCertificateDto } from '../certificates/certificates.dto';
import { CertificatesService } from '../certificates/certificates.service';
import { Transactions } from '../database/transactions';
import { IotDeviceSync } from './iot-device-sync';
import { IOT_TARGET_ID_PATTERN } from './iot-target';
import { IotTargetsService } from './iot-targets.service';

export class MoveIotTargetDto {
  @ApiProperty({ description: 'The IoT target to move the device to', example: 'us-prod' })
  @Matches(IOT_TARGET_ID_PATTERN, { message: 'targetId must be an IoT target id' })
  targetId: string;
}

/** Re-allocation: a device certificate moves to another IoT target (docs/iot-targets.md). */
@ApiTags('iot')
@Controller('v1/certificates/:id/iot-target')
export class IotMovesController {
  constructor(
    private readonly certificates: CertificatesService,
    private readonly targets: IotTargetsService,
    private readonly sync: IotDeviceSync,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
  ) {}

  @Post()
  @Idempotent()
  @HttpCode(200)
  @RequirePermission(Permission.ManageAuthorities)
  @ApiOperation({
    summary: 'Move a device certificate to another IoT target',
    description:
      'The certificate is registered (thing, policy, ACTIVE) in the new target through the outbox, then set INACTIVE in the old one. Its authority must have an ACTIVE registration in the new target. Only an active certificate moves (revoked: CERTIFICATE_ALREADY_REVOKED, superseded: CERTIFICATE_SUPERSEDED, expired: CERTIFICATE_NOT_ACTIVE, all 409). Admin only.',
  })
  @ApiIdParam('certificate')
  @ApiOkResponse({ type: CertificateDto, description: 'The certificate, naming its new target (iot.status pending until the move is done)' })
  @ApiSecured()
  @ApiProblems(Errors.validation, Errors.certificateNotFound, Errors.iotTargetNotFound, Errors.iotRegistrationNotFound, Errors.certificateAlreadyRevoked, Errors.certificateSuperseded, Errors.certificateNotActive)
  async moveCertificateIotTarget(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string, @Body() body: MoveIotTargetDto): Promise<CertificateDto> {
    await this.targets.get(body.targetId);
    await this.transactions.run(async () => {
      const record = await this.certificates.get(id);
      // Only an active certificate moves: a revoked, superseded (still in its renewal grace) or expired one is on its
      // way out of AWS IoT, and a move would register it in one more account (docs/iot-targets.md, "Re-allocation").
      const status = effectiveStatus(record, this.clock.now());
      if (status === 'revoked') throw Errors.certificateAlreadyRevoked(`certificate ${id} is revoked`);
      if (status === 'superseded') throw Errors.certificateSuperseded(`certificate ${id} was renewed by ${record.replacedById}; move its replacement`);
      if (status !== 'active') throw Errors.certificateNotActive(`certificate ${id} is ${status}; only an active certificate moves to another IoT target`);
      const from = record.iotTargetId ?? 'default';
      if (!(await this.sync.startMove(record, body.targetId))) return;
      await this.audit.record(ctx, { action: 'certificate.iot-target-moved', target: { type: 'certificate', id }, details: { fromTargetId: from, toTargetId: body.targetId } });
    });
    const record = await this.certificates.get(id);
    return toCertificateDto(record, await this.certificates.chainPemOf(record), this.clock.now());
  }
}

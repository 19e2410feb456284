import { Body, Controller, Headers, HttpCode, Post, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../common/access.decorators';
import { CertificatesService } from '../certificates/certificates.service';
import { Errors } from '../common/errors';
import { ApiProblems, CERTIFICATE_JWT_SCHEME, ProblemDeclaration, ProblemGroups } from '../common/openapi';
import { checkThingAttributes } from './attributes';
import { ExchangeDto, ExchangeResultDto, toExchangeResultDto } from './claims.dto';
import { ExchangeService } from './exchange.service';
import { IotTargetsService } from '../iot/iot-targets.service';
import { StationIdentity } from './station-authenticator';
import { Station, StationGuard } from './station.guard';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

/** What a claim exchange can answer (without Idempotency-Key): for this route and EST enrollment on a claim label (src/est/). */
export const EXCHANGE_PROBLEMS: readonly ProblemDeclaration[] = [
  ProblemGroups.certificateAuth,
  [Errors.claimCertificateUntrusted, Errors.notAClaimCertificate, Errors.claimCertificateExpired],
  [Errors.claimRevoked, Errors.claimNotYetValid, Errors.claimExpired, Errors.serialNotAllowed, Errors.invalidClaim, Errors.attestationRequired],
  [Errors.deviceAlreadyProvisioned, Errors.claimQuotaExhausted],
  ProblemGroups.csr,
  ProblemGroups.issuance,
];

@ApiTags('provisioning')
@Controller('v1/provisioning')
export class ProvisioningController {
  constructor(
    private readonly exchanges: ExchangeService,
    private readonly certificates: CertificatesService,
    private readonly targets: IotTargetsService,
  ) {}

  @Post('exchange')
  @Public()
  @UseGuards(StationGuard)
  @HttpCode(201)
  @ApiOperation({
    summary: 'Exchange a claim certificate for a device certificate (factory stations)',
    description:
      'Authenticated by the claim certificate, not an API key: mutual TLS when the service terminates TLS (TLS_CERT_FILE), or ' +
      '`Authorization: Bearer <JWT>` signed with the claim key (ES256, ES384 or RS256), the claim certificate in the `x5c` header, ' +
      '`aud` = this URL, `exp` at most 5 minutes ahead, a fresh `jti` each time (single use). The claim must be active and inside its ' +
      'window, the serial must match its pattern and allow-list, and its quota must have room (checked atomically). The same serial with ' +
      'the same key, or the same Idempotency-Key and body, is a retry: 200 with the certificate issued before (a first exchange is 201). Issues from the claim’s ' +
      'device CA and registers with AWS IoT as that CA is registered (API mode: through the outbox, `iot.status: pending`). The caller is ' +
      'authenticated before the body is read: without valid credentials the answer is a 401, whatever the body (even one that is not JSON or is too large).',
  })
  @ApiBearerAuth(CERTIFICATE_JWT_SCHEME)
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Up to 128 printable ASCII characters; a retry with the same key and body returns the same certificate' })
  @ApiCreatedResponse({ type: ExchangeResultDto, description: 'The device certificate, issued now' })
  @ApiOkResponse({ type: ExchangeResultDto, description: 'A retry (same serial and key, or same Idempotency-Key and body): the certificate issued before' })
  @ApiProblems(...EXCHANGE_PROBLEMS, Errors.idempotencyKeyReused)
  async exchange(
    @Station() identity: StationIdentity,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Body() body: ExchangeDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
  ): Promise<ExchangeResultDto> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw Errors.validation('Idempotency-Key must be 1-128 printable ASCII characters');
    }
    if (body.attributes) checkThingAttributes(body.attributes, 'attributes');
    const result = await this.exchanges.exchange(identity, { deviceSerial: body.deviceSerial, csr: body.csr, attributes: body.attributes }, idempotencyKey);
    if (result.replayed) reply.status(200);
    return toExchangeResultDto(result.certificate, await this.certificates.chainPem(result.certificate.authorityId), result.deviceSerial, await this.targets.get(result.certificate.iotTargetId));
  }
}

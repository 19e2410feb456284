import { Body, Controller, Headers, HttpCode, Param, Post, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { checkThingAttributes } from '../claims/attributes';
import { ExchangeResultDto, toExchangeResultDto } from '../claims/claims.dto';
import { EXCHANGE_PROBLEMS } from '../claims/provisioning.controller';
import { StationIdentity } from '../claims/station-authenticator';
import { Station, StationGuard } from '../claims/station.guard';
import { CertificatesService } from '../certificates/certificates.service';
import { Public } from '../common/access.decorators';
import { Errors } from '../common/errors';
import { ApiProblems, CERTIFICATE_JWT_SCHEME, ProblemGroups } from '../common/openapi';
import { IotTargetsService } from '../iot/iot-targets.service';
import { ActivationDto, AttestationChallengeDto, AttestationDto } from './tpm.dto';
import { AttestedEnrollmentService } from './attested-enrollment.service';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;
const STATION_AUTH =
  'Authenticated as the claim exchange is (claim certificate by mutual TLS, or an x5c JWT signed with the claim key), but the JWT `aud` is ' +
  'PUBLIC_BASE_URL + `/v1/provisioning/attestations` for both steps. ';

/** TPM 2.0 attested enrollment on a claim, in two steps (docs/hardware-identity.md). */
@ApiTags('provisioning')
@Controller('v1/provisioning/attestations')
export class AttestedEnrollmentController {
  constructor(
    private readonly enrollments: AttestedEnrollmentService,
    private readonly certificates: CertificatesService,
    private readonly targets: IotTargetsService,
  ) {}

  @Post()
  @Public()
  @UseGuards(StationGuard)
  @HttpCode(201)
  @ApiOperation({
    summary: 'Attested enrollment, step 1: TPM evidence in, credential challenge out',
    description:
      STATION_AUTH +
      'The claim’s attestation must be `tpm` or `optional`. Checks the AK (restricted signing key), the AK’s TPM2_Certify signature over the exact ' +
      'TPMS_ATTEST bytes, that the certified name is the key’s public area and the key is fixedTPM, fixedParent and sensitiveDataOrigin, that the CSR ' +
      'key is that key, and that the EK certificate chains to an allow-listed manufacturer root (GET /v1/tpm/manufacturer-roots). Answers a ' +
      'MakeCredential challenge sealed to the EK and bound to the AK name: single use, valid TPM_CHALLENGE_TTL_SECONDS. Nothing is issued yet. ' +
      'Audited (provisioning.attestation-challenged, or provisioning.refused).',
  })
  @ApiBearerAuth(CERTIFICATE_JWT_SCHEME)
  @ApiCreatedResponse({ type: AttestationChallengeDto })
  @ApiProblems(
    ProblemGroups.certificateAuth,
    [Errors.claimCertificateUntrusted, Errors.notAClaimCertificate, Errors.claimCertificateExpired],
    [Errors.claimRevoked, Errors.claimNotYetValid, Errors.claimExpired, Errors.attestationNotEnabled, Errors.validation],
    [Errors.tpmEvidenceMalformed, Errors.tpmAlgorithmUnsupported, Errors.tpmEkUntrusted, Errors.tpmAkNotRestrictedSigning, Errors.tpmAttestationSignatureInvalid],
    [Errors.tpmAttestedNameMismatch, Errors.tpmKeyNotHardwareBound, Errors.tpmCsrKeyMismatch],
    ProblemGroups.csr,
  )
  async startAttestation(@Station() identity: StationIdentity, @Body() body: AttestationDto): Promise<AttestationChallengeDto> {
    if (body.attributes) checkThingAttributes(body.attributes, 'attributes');
    const challenge = await this.enrollments.start(identity, body);
    return {
      challengeId: challenge.challengeId,
      expiresAt: challenge.expiresAt,
      credentialBlob: challenge.credentialBlob.toString('base64'),
      idObject: challenge.idObject.toString('base64'),
      encryptedSecret: challenge.encryptedSecret.toString('base64'),
      akName: challenge.akName,
      ekCertificateSha256: challenge.ekCertificateSha256,
    };
  }

  @Post(':challengeId/activation')
  @Public()
  @UseGuards(StationGuard)
  @HttpCode(201)
  @ApiOperation({
    summary: 'Attested enrollment, step 2: the activated secret in, the device certificate out',
    description:
      STATION_AUTH +
      'The secret the TPM released with ActivateCredential proves the AK is in the TPM of the certified EK. The challenge is consumed at once ' +
      '(right or wrong: a wrong secret spends it); then the claim’s exchange issues the certificate under every rule of the claim (window, ' +
      'serial pattern and allow-list, quota, re-provisioning, Idempotency-Key, AWS IoT registration, audit), and the certificate records ' +
      'what was proven (hardwareAttestation).',
  })
  @ApiParam({ name: 'challengeId', format: 'uuid' })
  @ApiBearerAuth(CERTIFICATE_JWT_SCHEME)
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'As on the exchange' })
  @ApiCreatedResponse({ type: ExchangeResultDto, description: 'The device certificate, issued now' })
  @ApiOkResponse({ type: ExchangeResultDto, description: 'A retry (same serial and key): the certificate issued before' })
  @ApiProblems(...EXCHANGE_PROBLEMS, Errors.idempotencyKeyReused, [Errors.tpmChallengeNotFound, Errors.tpmChallengeUsed, Errors.tpmChallengeExpired, Errors.tpmActivationFailed, Errors.tpmEvidenceMalformed, Errors.attestationNotEnabled])
  async activateAttestation(
    @Station() identity: StationIdentity,
    @Res({ passthrough: true }) reply: FastifyReply,
    @Param('challengeId') challengeId: string,
    @Body() body: ActivationDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
  ): Promise<ExchangeResultDto> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) throw Errors.validation('Idempotency-Key must be 1-128 printable ASCII characters');
    const result = await this.enrollments.activate(identity, challengeId, body.secret, idempotencyKey);
    if (result.replayed) reply.status(200);
    return toExchangeResultDto(result.certificate, await this.certificates.chainPem(result.certificate.authorityId), result.deviceSerial, await this.targets.get(result.certificate.iotTargetId));
  }
}

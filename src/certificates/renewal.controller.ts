import { Body, Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Public } from '../common/access.decorators';
import { Clock } from '../common/clock';
import { Errors } from '../common/errors';
import { ApiProblems, CERTIFICATE_JWT_SCHEME, ProblemDeclaration, ProblemGroups } from '../common/openapi';
import { CertificateIdentity } from './certificate-authenticator';
import { CertificateDto, RenewDto, toCertificateDto } from './certificates.dto';
import { CertificatesService } from './certificates.service';
import { Device, DeviceGuard } from './device.guard';
import { RenewalService } from './renewal.service';
import { Idempotent } from '../common/idempotency';

/** What a renewal by the device's certificate can answer: for this route and EST simplereenroll (src/est/). */
export const RENEWAL_PROBLEMS: readonly ProblemDeclaration[] = [
  ProblemGroups.certificateAuth,
  [Errors.certificateUntrusted, Errors.notADeviceCertificate],
  [Errors.renewalNotAllowed, Errors.certificateRevoked, Errors.certificateSuperseded, Errors.certificateExpired, Errors.renewalNotYetAllowed],
  Errors.sameKeyNotAllowed,
  [Errors.renewalAttestationRequired, Errors.renewalAttestationMismatch],
  ProblemGroups.csr,
  ProblemGroups.issuance,
];

/**
 * A device renewing its own certificate. Public for the API-key guard: the device authenticates by the certificate
 * (DeviceGuard, and before the body is read: RenewalModule.preBodyAuthenticators). Listed under the rotation tag
 * first, then certificates, as the API document has always had it.
 */
@ApiTags('rotation', 'certificates')
@Controller()
export class RenewalController {
  constructor(
    private readonly renewal: RenewalService,
    private readonly certificates: CertificatesService,
    private readonly clock: Clock,
  ) {}

  @Post('v1/certificates/renew')
  @Idempotent()
  @Public()
  @UseGuards(DeviceGuard)
  @HttpCode(201)
  @ApiOperation({
    summary: 'A device renews its own certificate (authenticated by that certificate)',
    description:
      'Mutual TLS with the current certificate, or `Authorization: Bearer <JWT>` signed with its key, the certificate in `x5c`, ' +
      '`aud` = this URL (PUBLIC_BASE_URL + /v1/certificates/renew), `exp` ≤ 5 minutes ahead, single-use `jti`. Allowed in the profile’s ' +
      'renewal window (the last third of the lifetime) or while a rotation campaign covers the certificate; a new key is required ' +
      '(SAME_KEY_NOT_ALLOWED) unless the operator allows the same key for the profile; an expired certificate cannot renew ' +
      '(CERTIFICATE_EXPIRED) unless the operator allows some days after expiry for the profile; a revoked (CERTIFICATE_REVOKED) or already ' +
      'renewed (CERTIFICATE_SUPERSEDED) certificate cannot renew. The new certificate keeps the thing name and claim, and `replaces` the old one, which becomes ' +
      '`superseded`, stays valid for RENEWAL_GRACE_SECONDS and then leaves AWS IoT (INACTIVE, detached) through the outbox. A certificate ' +
      'from a retiring CA renews under its successor. A TPM-attested certificate (hardwareAttestation) renews only with `tpm`: the AK it was ' +
      'enrolled with certifies the new TPM-resident key (RENEWAL_ATTESTATION_REQUIRED, RENEWAL_ATTESTATION_MISMATCH; docs/hardware-identity.md). The device is authenticated before the body is read: without valid ' +
      'credentials the answer is a 401, whatever the body (even one that is not JSON or is too large).',
  })
  @ApiBearerAuth(CERTIFICATE_JWT_SCHEME)
  @ApiCreatedResponse({ type: CertificateDto, description: 'The new certificate' })
  @ApiProblems(
    ...RENEWAL_PROBLEMS,
    [Errors.tpmEvidenceMalformed, Errors.tpmAlgorithmUnsupported, Errors.tpmAkNotRestrictedSigning, Errors.tpmAttestationSignatureInvalid, Errors.tpmAttestedNameMismatch, Errors.tpmKeyNotHardwareBound, Errors.tpmCsrKeyMismatch],
  )
  async renewCertificate(@Device() identity: CertificateIdentity, @Body() body: RenewDto): Promise<CertificateDto> {
    const record = await this.renewal.renew(identity, body.csr, body.tpm);
    return toCertificateDto(record, await this.certificates.chainPemOf(record), this.clock.now());
  }
}

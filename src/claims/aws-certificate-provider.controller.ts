import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsString, Matches, MaxLength, MinLength } from 'class-validator';
import type { FastifyReply } from 'fastify';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Errors } from '../common/errors';
import { ApiProblems, ApiSecured } from '../common/openapi';
import { Permission } from '../common/roles';
import { CertificatesService } from '../certificates/certificates.service';
import { pemEncode } from '../pki/der';
import { MAX_CSR_PEM_LENGTH } from '../pki/csr';
import { AwsCertificateProvider } from './aws-certificate-provider';
import { EXCHANGE_PROBLEMS } from './provisioning.controller';

export class AwsCertificateProviderEventDto {
  @ApiProperty({ description: 'The device’s CSR (PEM), as AWS IoT hands it to the certificate provider Lambda; the device serial is its subject serialNumber, else its CN', maxLength: MAX_CSR_PEM_LENGTH })
  @IsString() @MaxLength(MAX_CSR_PEM_LENGTH)
  certificateSigningRequest: string;

  @ApiProperty({ description: 'The AWS IoT certificate id of the certificate the device connected with (its claim certificate): 64 hex characters', example: 'a'.repeat(64) })
  @IsString() @Matches(/^[0-9a-fA-F]{64}$/)
  principalId: string;

  @ApiProperty({ description: 'The MQTT client id of the device’s connection (1-128 characters)', example: 'SN00012345' })
  @IsString() @MinLength(1) @MaxLength(128)
  clientId: string;
}

export class AwsCertificateProviderResultDto {
  @ApiProperty({ description: 'The device certificate (PEM): what the Lambda returns to AWS IoT' }) certificatePem: string;
  @ApiProperty({ description: 'SHA-256 of the DER, lowercase hex: the AWS IoT certificateId' }) certificateId: string;
  @ApiProperty({ format: 'uuid', description: 'Our id of the device certificate' }) id: string;
  @ApiProperty() deviceSerial: string;
  @ApiProperty() thingName: string;
  @ApiProperty({ format: 'uuid' }) claimId: string;
  @ApiProperty({ description: 'The device CA’s certificate followed by each parent up to the root, PEM' }) chainPem: string;
  @ApiProperty({ description: 'True when this answers a retry (same claim, same CSR) with the certificate issued before' }) replayed: boolean;
}

export class AwsCertificateStatusRequestDto {
  @ApiProperty({ description: 'AWS IoT certificate id = SHA-256 of the certificate DER, hex', example: 'a'.repeat(64) })
  @IsString() @Matches(/^[0-9a-fA-F]{64}$/)
  certificateId: string;
}

export class AwsCertificateStatusDto {
  @ApiProperty() certificateId: string;
  @ApiProperty({ description: 'Whether this service issued the certificate' }) known: boolean;
  @ApiProperty({ nullable: true, type: String, enum: ['active', 'revoked', 'superseded', 'expired'] }) status: string | null;
  @ApiProperty({ description: 'True when the certificate may connect: a device or claim certificate of ours, not revoked, inside its validity, its issuing authorities usable' }) authenticated: boolean;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) revokedAt: string | null;
}

/**
 * The two calls of the AWS IoT Lambda handlers (integrations/aws-lambda/, docs/aws-fleet-provisioning.md), under the
 * `aws-integration` role: the certificate provider (fleet provisioning by claim) and the pre-authentication status check.
 */
@ApiTags('aws-integration')
@Controller('v1/provisioning')
export class AwsCertificateProviderController {
  constructor(
    private readonly provider: AwsCertificateProvider,
    private readonly certificates: CertificatesService,
  ) {}

  @Post('aws-certificate-provider')
  @RequirePermission(Permission.AwsCertificateProvider)
  @HttpCode(201)
  @ApiOperation({
    summary: 'AWS IoT certificate provider: a CreateCertificateFromCsr request → a device certificate under the claim’s rules',
    description:
      'Called by the certificate provider Lambda (integrations/aws-lambda/src/certificate-provider.ts) with the event AWS IoT gave it. ' +
      'The principalId (the claim certificate’s AWS certificate id, i.e. its SHA-256 fingerprint) names the claim; the CSR subject names the ' +
      'device (serialNumber, else CN). The factory exchange then runs with every rule of the claim (window, revocation, serial pattern, ' +
      'allow-list, quota, audit, profile, thing name). The same claim and CSR again is a retry: 200 with the certificate issued before. Any ' +
      'refusal is a problem+json 4xx; the Lambda fails the invocation and AWS IoT answers the device on the rejected topic. Nothing is issued on a refusal.',
  })
  @ApiSecured()
  @ApiCreatedResponse({ type: AwsCertificateProviderResultDto, description: 'The device certificate, issued now' })
  @ApiOkResponse({ type: AwsCertificateProviderResultDto, description: 'A retry (same claim, same CSR): the certificate issued before' })
  @ApiProblems(...EXCHANGE_PROBLEMS.slice(1), Errors.awsPrincipalNotAClaim, Errors.idempotencyKeyReused, Errors.replayCertificateRevoked)
  async awsCertificateProvider(
    @Ctx() ctx: RequestContext,
    @Body() body: AwsCertificateProviderEventDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<AwsCertificateProviderResultDto> {
    const result = await this.provider.provide(ctx, body);
    if (result.replayed) reply.status(200);
    const record = result.certificate;
    return {
      certificatePem: pemEncode('CERTIFICATE', record.certificateDer),
      certificateId: record.fingerprint,
      id: record.id,
      deviceSerial: result.deviceSerial,
      thingName: record.thingName ?? '',
      claimId: record.claimId ?? '',
      chainPem: await this.certificates.chainPem(record.authorityId),
      replayed: result.replayed,
    };
  }

  @Post('aws-certificate-status')
  @RequirePermission(Permission.AwsCertificateStatus)
  @HttpCode(200)
  @ApiOperation({
    summary: 'AWS IoT pre-authentication: may this certificate connect?',
    description:
      'Called by the pre-authentication Lambda (integrations/aws-lambda/src/client-certificate-check.ts) at each CONNECT (behind its short cache). ' +
      '`authenticated` is true only for a device or claim certificate this service issued that is not revoked, is inside its validity, and whose ' +
      'issuing authorities (up to the root) are neither disabled nor expired; an unknown certificate is `known: false`.',
  })
  @ApiSecured()
  @ApiOkResponse({ type: AwsCertificateStatusDto })
  @ApiProblems(Errors.validation)
  awsCertificateStatus(@Body() body: AwsCertificateStatusRequestDto): Promise<AwsCertificateStatusDto> {
    return this.provider.status(body.certificateId);
  }
}

import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsObject, IsOptional, IsString, Length, Matches, MaxLength } from 'class-validator';
import { NO_CONTROL_CHARS } from '../common/text';
import { pemEncode } from '../pki/der';
import { MAX_CSR_PEM_LENGTH } from '../pki/csr';
import { TpmManufacturerRoot } from './tpm.repository';

const MAX_CERTIFICATE_LENGTH = 16 * 1024;
const MAX_STRUCTURE_LENGTH = 8192;

export class CreateTpmRootDto {
  @ApiProperty({ example: 'Acme TPM EK CA 2026', maxLength: 200 })
  @IsString() @Length(1, 200) @Matches(NO_CONTROL_CHARS, { message: 'name must not contain control characters' })
  name: string;

  @ApiProperty({ description: 'The EK-issuing CA certificate (PEM) of a TPM manufacturer: a CA certificate (basicConstraints cA), unexpired', maxLength: MAX_CERTIFICATE_LENGTH })
  @IsString() @MaxLength(MAX_CERTIFICATE_LENGTH)
  certificatePem: string;
}

export class TpmRootDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ description: 'SHA-256 of the certificate DER, lowercase hex' }) fingerprint: string;
  @ApiProperty() subject: string;
  @ApiProperty({ format: 'date-time' }) notAfter: string;
  @ApiProperty() certificatePem: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
}

export class TpmRootListDto {
  @ApiProperty({ type: [TpmRootDto] }) items: TpmRootDto[];
}

export function toTpmRootDto(root: TpmManufacturerRoot): TpmRootDto {
  const { certificateDer, ...rest } = root;
  return { ...rest, certificatePem: pemEncode('CERTIFICATE', certificateDer) };
}

export class AttestationDto {
  @ApiProperty({ example: 'SN00012345', description: '1-64 letters, digits or . _ : / -, starting with a letter or digit' })
  @IsString() @Length(1, 64)
  deviceSerial: string;

  @ApiProperty({ description: 'PKCS #10 CSR (PEM) signed by the TPM-resident key (openssl req -provider tpm2); its key must be the certified key', maxLength: MAX_CSR_PEM_LENGTH })
  @IsString() @MaxLength(MAX_CSR_PEM_LENGTH)
  csr: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'Thing attributes for this device, added to the claim’s' })
  @IsOptional() @IsObject()
  attributes?: Record<string, string>;

  @ApiProperty({ description: 'EK certificate: PEM, or base64 of the DER read from the TPM (tpm2_nvread 0x01C00002 for the RSA EK)', maxLength: MAX_CERTIFICATE_LENGTH })
  @IsString() @MaxLength(MAX_CERTIFICATE_LENGTH)
  ekCertificate: string;

  @ApiPropertyOptional({ type: [String], maxItems: 4, description: 'Intermediate CA certificates between the EK certificate and an allow-listed manufacturer root (PEM or base64 DER)' })
  @IsOptional() @IsArray() @ArrayMaxSize(4) @IsString({ each: true }) @MaxLength(MAX_CERTIFICATE_LENGTH, { each: true })
  ekChain?: string[];

  @ApiPropertyOptional({ description: 'Base64 TPM2B_PUBLIC of the EK (tpm2_readpublic -c 0x81010001 -o): its name algorithm and symmetric cipher are used for MakeCredential; default: the TCG EK template of the certificate’s key type', maxLength: MAX_STRUCTURE_LENGTH })
  @IsOptional() @IsString() @MaxLength(MAX_STRUCTURE_LENGTH)
  ekPublic?: string;

  @ApiProperty({ description: 'Base64 TPM2B_PUBLIC of the AK (tpm2_createak -u): must be a restricted signing key (fixedTPM, fixedParent, sensitiveDataOrigin)', maxLength: MAX_STRUCTURE_LENGTH })
  @IsString() @MaxLength(MAX_STRUCTURE_LENGTH)
  akPublic: string;

  @ApiProperty({ description: 'Base64 TPM2B_PUBLIC of the application key (tpm2_create -u): must be fixedTPM, fixedParent, sensitiveDataOrigin, sign', maxLength: MAX_STRUCTURE_LENGTH })
  @IsString() @MaxLength(MAX_STRUCTURE_LENGTH)
  keyPublic: string;

  @ApiProperty({ description: 'Base64 TPMS_ATTEST of TPM2_Certify(key, AK) (tpm2_certify -o)', maxLength: MAX_STRUCTURE_LENGTH })
  @IsString() @MaxLength(MAX_STRUCTURE_LENGTH)
  certifyInfo: string;

  @ApiProperty({ description: 'Base64 TPMT_SIGNATURE by the AK over certifyInfo (tpm2_certify -s, default tss format)', maxLength: MAX_STRUCTURE_LENGTH })
  @IsString() @MaxLength(MAX_STRUCTURE_LENGTH)
  certifySignature: string;
}

export class AttestationChallengeDto {
  @ApiProperty({ format: 'uuid', description: 'Answer at POST /v1/provisioning/attestations/{challengeId}/activation' }) challengeId: string;
  @ApiProperty({ format: 'date-time', description: 'The challenge can be answered once, until then' }) expiresAt: string;
  @ApiProperty({ description: 'Base64 of the credential in tpm2-tools’ file format: write it to a file and pass it to tpm2_activatecredential -i' }) credentialBlob: string;
  @ApiProperty({ description: 'Base64 TPM2B_ID_OBJECT (credentialBlob’s first part), for a TSS' }) idObject: string;
  @ApiProperty({ description: 'Base64 TPM2B_ENCRYPTED_SECRET (credentialBlob’s second part), for a TSS' }) encryptedSecret: string;
  @ApiProperty({ description: 'The AK name the credential is bound to, lowercase hex' }) akName: string;
  @ApiProperty({ description: 'SHA-256 of the EK certificate the credential is sealed to, lowercase hex' }) ekCertificateSha256: string;
}

export class ActivationDto {
  @ApiProperty({ description: 'Base64 of the secret tpm2_activatecredential released (-o)', maxLength: 128 })
  @IsString() @MaxLength(128)
  secret: string;
}

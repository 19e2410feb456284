import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsOptional, IsString, Length, Matches, ValidateNested } from 'class-validator';
import { CertificateMode } from './iot-registry';
import { IOT_TARGET_ID_PATTERN } from './iot-target';
import { DEVICE_REGISTRATION_MODES, DeviceRegistration, IotCaRegistration, IOT_POLICY_NAME_PATTERN } from './iot-registration';

export class ProvisioningTemplateDto {
  @ApiProperty({ description: 'AWS IoT JITP template body (JSON text)', maxLength: 10240 })
  @IsString() @Length(2, 10240)
  templateBody: string;

  @ApiProperty({ example: 'arn:aws:iam::111122223333:role/JITPRole' })
  @Matches(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/, { message: 'roleArn must be an IAM role ARN' })
  roleArn: string;
}

export class RegisterIotCaDto {
  @ApiPropertyOptional({ enum: ['DEFAULT', 'SNI_ONLY'], default: 'DEFAULT', description: 'DEFAULT proves key possession with a verification certificate' })
  @IsOptional() @IsIn(['DEFAULT', 'SNI_ONLY'])
  certificateMode?: CertificateMode;

  @ApiPropertyOptional({ description: 'Let AWS IoT register device certificates on first connection; default true for jitr/jitp, false otherwise' })
  @IsOptional() @IsBoolean()
  autoRegistration?: boolean;

  @ApiPropertyOptional({ default: true })
  @IsOptional() @IsBoolean()
  setAsActive?: boolean;

  @ApiPropertyOptional({ enum: DEVICE_REGISTRATION_MODES, default: 'jitr' })
  @IsOptional() @IsIn(DEVICE_REGISTRATION_MODES)
  deviceRegistration?: DeviceRegistration;

  @ApiPropertyOptional({ description: 'AWS IoT policy given to devices of this CA', example: 'fleet-device' })
  @IsOptional() @Matches(IOT_POLICY_NAME_PATTERN, { message: 'policyName must be an AWS IoT policy name' })
  policyName?: string;

  @ApiPropertyOptional({ example: 'fleet-default', description: 'A managed policy template (POST /v1/iot/policies) to attach to devices; instead of policyName' })
  @IsOptional() @Matches(IOT_POLICY_NAME_PATTERN, { message: 'policyTemplate must be a policy template name' })
  policyTemplate?: string;

  @ApiPropertyOptional({ description: 'The IoT target (GET /v1/iot/targets) to register with; default: the target "default"', example: 'eu-prod' })
  @IsOptional() @Matches(IOT_TARGET_ID_PATTERN, { message: 'targetId must be an IoT target id' })
  targetId?: string;

  @ApiPropertyOptional({ type: ProvisioningTemplateDto, description: 'JITP only' })
  @IsOptional() @ValidateNested() @Type(() => ProvisioningTemplateDto)
  provisioningTemplate?: ProvisioningTemplateDto;
}

export class IotCaRegistrationDto {
  @ApiProperty({ format: 'uuid' }) authorityId: string;
  @ApiProperty({ description: 'The IoT target it is registered in', example: 'default' }) targetId: string;
  @ApiProperty({ description: 'AWS IoT CA certificate id (SHA-256 of the CA certificate DER)' }) caCertificateId: string;
  @ApiProperty() caCertificateArn: string;
  @ApiProperty({ enum: ['DEFAULT', 'SNI_ONLY'] }) certificateMode: string;
  @ApiProperty({ enum: ['ACTIVE', 'INACTIVE'] }) status: string;
  @ApiProperty() autoRegistration: boolean;
  @ApiProperty({ enum: DEVICE_REGISTRATION_MODES }) deviceRegistration: string;
  @ApiProperty({ nullable: true, type: String }) policyName: string | null;
  @ApiProperty({ type: ProvisioningTemplateDto, nullable: true }) provisioningTemplate: ProvisioningTemplateDto | null;
  @ApiProperty({ format: 'date-time' }) registeredAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;
}

export function toIotCaRegistrationDto(registration: IotCaRegistration): IotCaRegistrationDto {
  return { ...registration };
}

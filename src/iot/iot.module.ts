import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { Errors } from '../common/errors';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { AwsIotRegistry, iotClient } from './aws-iot-registry';
import { IotRegistry } from './iot-registry';
import { IotRegistrationRepository } from './iot-registration.repository';
import { IotRegistrationsController } from './iot-registrations.controller';
import { IotRegistrationsService } from './iot-registrations.service';
import { TypeOrmIotRegistrationRepository } from './typeorm-iot-registration.repository';

/** Without an AWS region every IoT call is a clear 422, not a crash. */
class UnconfiguredIotRegistry extends IotRegistry {
  private refuse(): never {
    throw Errors.iotNotConfigured('AWS IoT is not configured on this service (set AWS_REGION; see README "AWS IoT")');
  }
  registrationCode(): Promise<string> {
    this.refuse();
  }
  registerCaCertificate(): Promise<{ certificateId: string; certificateArn: string }> {
    this.refuse();
  }
  deactivateCaCertificate(): Promise<void> {
    this.refuse();
  }
}

@Module({
  imports: [AuthoritiesModule],
  controllers: [IotRegistrationsController],
  providers: [
    IotRegistrationsService,
    { provide: IotRegistrationRepository, useClass: TypeOrmIotRegistrationRepository },
    {
      provide: IotRegistry,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => (config.iot ? new AwsIotRegistry(iotClient(config.iot)) : new UnconfiguredIotRegistry()),
    },
  ],
})
export class IotModule {}

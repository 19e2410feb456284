import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { IotModule } from '../iot/iot.module';
import { SetupCheckController } from './setup-check.controller';
import { AwsCredentialsResolver } from './aws-credentials-resolver.port';
import { DefaultChainCredentialsResolver } from './default-chain-credentials-resolver';
import { NodeRootStoreProbe } from './node-root-store-probe';
import { PublicTrustProbe } from './public-trust-probe.port';
import { SetupCheckService } from './setup-check.service';

@Module({
  imports: [AuthoritiesModule, IotModule],
  controllers: [SetupCheckController],
  providers: [
    SetupCheckService,
    { provide: PublicTrustProbe, useClass: NodeRootStoreProbe },
    { provide: AwsCredentialsResolver, useClass: DefaultChainCredentialsResolver },
  ],
})
export class SetupModule {}

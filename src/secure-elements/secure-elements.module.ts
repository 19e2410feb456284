import { Module } from '@nestjs/common';
import { CertificatesModule } from '../certificates/certificates.module';
import { IotModule } from '../iot/iot.module';
import { ManifestImportRepository } from './manifest-import.repository';
import { ManifestImportsService } from './manifest-imports.service';
import { ManifestsController } from './manifests.controller';
import { TypeOrmManifestImportRepository } from './typeorm-manifest-import.repository';

/** Secure-element manifests: pre-provisioned device identities (docs/secure-elements.md). */
@Module({
  imports: [CertificatesModule, IotModule],
  controllers: [ManifestsController],
  providers: [ManifestImportsService, { provide: ManifestImportRepository, useClass: TypeOrmManifestImportRepository }],
})
export class SecureElementsModule {
  /** Routes whose body arrives as a stream (common/streamed-bodies.ts): the manifest upload. For app.factory.ts. */
  static readonly streamedBodyRoutes: ReadonlySet<string> = new Set(['/v1/manifests']);
}

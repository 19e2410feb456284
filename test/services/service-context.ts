import { capturingLogger, plantCanary } from '../support/log-capture';
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../../src/app.module';
import { AuditService } from '../../src/audit/audit.service';
import { RequestContext } from '../../src/common/actor';
import { CertificateIdentity } from '../../src/certificates/certificate-authenticator';
import { AuthoritiesService } from '../../src/authorities/authorities.service';
import { AuthorityRepository } from '../../src/authorities/authority.repository';
import { CertificateRepository } from '../../src/certificates/certificate.repository';
import { CertificatesService } from '../../src/certificates/certificates.service';
import { AllowlistUploads } from '../../src/claims/allowlist-uploads';
import { ClaimRepository } from '../../src/claims/claim.repository';
import { ClaimsService } from '../../src/claims/claims.service';
import { ExchangeService } from '../../src/claims/exchange.service';
import { StationIdentity } from '../../src/claims/station-authenticator';
import { AppConfig } from '../../src/config/config';
import { IotRegistrationsService } from '../../src/iot/iot-registrations.service';
import { Transactions } from '../../src/database/transactions';
import { MetricsService } from '../../src/metrics/metrics.service';
import { AuthorityRotationService } from '../../src/rotation/authority-rotation.service';
import { RenewalService } from '../../src/certificates/renewal.service';
import { RotationsService } from '../../src/rotation/rotations.service';
import { CrlService } from '../../src/revocation/crl.service';
import { TemporaryDatabase, temporaryDatabase } from '../../scripts/lib/temporary-database';
import { IotStandIn } from '../../tools/standins';
import { Driver, ManualClock, testConfig } from '../support/test-app';

/**
 * The application's providers on a fresh database, without an HTTP server: the service tests call the services the
 * controllers call, with a RequestContext of their own. The wiring is the application's (AppModule); this file is the
 * only place the service tests name src/ internals, so a move in src/ is fixed here once.
 */
export class ServiceContext {
  /** An administrator's API key, as a controller would pass it. */
  readonly admin: RequestContext = { actor: { type: 'api-key', id: 'service-test-admin', role: 'admin' }, requestId: 'service-test', sourceIp: '127.0.0.1' };

  private constructor(
    private readonly app: INestApplicationContext,
    readonly config: AppConfig,
    readonly clock: ManualClock,
    private readonly cleanup: () => Promise<void>,
  ) {}

  /** Starts the providers on a fresh database of `driver`; `env` adds configuration, `iot` points AWS IoT at a stand-in. */
  static async start(driver: Driver, options: { env?: Record<string, string>; iot?: IotStandIn; clock?: ManualClock } = {}): Promise<ServiceContext> {
    const db: TemporaryDatabase = await temporaryDatabase(driver);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-pki-services-'));
    const clock = options.clock ?? new ManualClock();
    const config = testConfig(driver, db, dataDir, options);
    try {
      const app = await NestFactory.createApplicationContext(AppModule.forRoot(config, clock), { logger: capturingLogger('error') ?? ['error', 'fatal'] });
      await app.init();
      plantCanary();
      return new ServiceContext(app, config, clock, async () => {
        await app.close();
        await db.drop();
        fs.rmSync(dataDir, { recursive: true, force: true });
      });
    } catch (err) {
      await db.drop();
      throw err;
    }
  }

  close(): Promise<void> {
    return this.cleanup();
  }

  get authorities(): AuthoritiesService {
    return this.app.get(AuthoritiesService);
  }
  get authorityRotation(): AuthorityRotationService {
    return this.app.get(AuthorityRotationService);
  }
  get certificates(): CertificatesService {
    return this.app.get(CertificatesService);
  }
  get claims(): ClaimsService {
    return this.app.get(ClaimsService);
  }
  get allowlists(): AllowlistUploads {
    return this.app.get(AllowlistUploads);
  }
  get exchanges(): ExchangeService {
    return this.app.get(ExchangeService);
  }
  get renewals(): RenewalService {
    return this.app.get(RenewalService);
  }
  get rotations(): RotationsService {
    return this.app.get(RotationsService);
  }
  get iotRegistrations(): IotRegistrationsService {
    return this.app.get(IotRegistrationsService);
  }
  get crls(): CrlService {
    return this.app.get(CrlService);
  }
  get audit(): AuditService {
    return this.app.get(AuditService);
  }
  get metrics(): MetricsService {
    return this.app.get(MetricsService);
  }
  get transactions(): Transactions {
    return this.app.get(Transactions);
  }

  /** The stored rows, read through the same ports the services write through. */
  get stored(): { authorities: AuthorityRepository; certificates: CertificateRepository; claims: ClaimRepository } {
    return { authorities: this.app.get(AuthorityRepository), certificates: this.app.get(CertificateRepository), claims: this.app.get(ClaimRepository) };
  }

  /**
   * A station that proved (by mTLS or JWT, which the HTTP suites test) that it holds the claim certificate of `claimId`:
   * what StationAuthenticator hands the exchange.
   */
  async station(claimId: string, name = 'service-test-station'): Promise<StationIdentity> {
    const claim = (await this.stored.claims.findById(claimId))!;
    const claimCertificate = (await this.stored.certificates.findById(claim.claimCertificateId))!;
    return { method: 'jwt', claim, claimCertificate, station: name, ctx: this.certificateContext('claim-certificate', claimCertificate.fingerprint) };
  }

  /** A device that proved it holds the key of its certificate `certificateId`: what DeviceAuthenticator hands renewal. */
  async device(certificateId: string): Promise<CertificateIdentity> {
    const certificate = (await this.stored.certificates.findById(certificateId))!;
    const authority = (await this.stored.authorities.findById(certificate.authorityId))!;
    return { method: 'jwt', certificate, authority, name: null, ctx: this.certificateContext('device-certificate', certificate.fingerprint) };
  }

  private certificateContext(type: 'claim-certificate' | 'device-certificate', fingerprint: string): RequestContext {
    return { actor: { type, id: fingerprint, role: null }, requestId: 'service-test', sourceIp: '127.0.0.1' };
  }
}

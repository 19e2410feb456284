import { INestApplicationContext, Module } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { AuthModule } from '../auth/auth.module';
import { PreBodyAuthenticator } from '../auth/pre-body-authentication';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificatesModule } from '../certificates/certificates.module';
import { RenewalModule } from '../certificates/renewal.module';
import { ClaimsModule } from '../claims/claims.module';
import { MAX_EST_BODY_LENGTH } from '../pki/est';
import { EstAuthenticator } from './est-authenticator';
import { EstLabelRepository } from './est-label.repository';
import { EstLabelsController } from './est-labels.controller';
import { EstLabelsService } from './est-labels.service';
import { EST_BASE_PATH, EstController, PKCS10_MEDIA_TYPE } from './est.controller';
import { EST_CALLER, EstGuard } from './est.guard';
import { EstService } from './est.service';
import { TypeOrmEstLabelRepository } from './typeorm-est-label.repository';

const ENROLL_OPERATIONS = ['simpleenroll', 'simplereenroll', 'serverkeygen'];

/** EST (RFC 7030): the /.well-known/est routes and their labels (docs/est.md). */
@Module({
  imports: [AuthModule, AuthoritiesModule, CertificatesModule, ClaimsModule, RenewalModule],
  controllers: [EstController, EstLabelsController],
  providers: [EstService, EstLabelsService, EstAuthenticator, EstGuard, { provide: EstLabelRepository, useClass: TypeOrmEstLabelRepository }],
})
export class EstModule {
  /** The enrollment routes, authenticated before their body is read (auth/pre-body-authentication.ts), for app.factory.ts. */
  static preBodyAuthenticators(app: INestApplicationContext): [route: string, authenticate: PreBodyAuthenticator][] {
    const authenticate = EST_CALLER.authenticatesWith(app.get(EstAuthenticator));
    return ENROLL_OPERATIONS.flatMap((operation) => [
      [`POST ${EST_BASE_PATH}/${operation}`, authenticate],
      [`POST ${EST_BASE_PATH}/:label/${operation}`, authenticate],
    ]);
  }

  /**
   * application/pkcs10 bodies (RFC 7030 §4.2.1), as text of bounded length, for the EST enrollment routes alone;
   * every other route answers 415 for them. For app.factory.ts.
   */
  static installBodyParser(fastify: FastifyInstance): void {
    fastify.addContentTypeParser(PKCS10_MEDIA_TYPE, { parseAs: 'string', bodyLimit: MAX_EST_BODY_LENGTH }, (request, body, done) => {
      if ((request.routeOptions?.url ?? '').startsWith(`${EST_BASE_PATH}/`)) return done(null, body);
      done(Object.assign(new Error(`Unsupported Media Type: ${PKCS10_MEDIA_TYPE}`), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }), undefined);
    });
  }
}

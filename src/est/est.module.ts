import { INestApplicationContext, Module } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AuthModule } from '../auth/auth.module';
import { PreBodyAuthenticator } from '../auth/pre-body-authentication';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CertificatesModule } from '../certificates/certificates.module';
import { RenewalModule } from '../certificates/renewal.module';
import { ClaimsModule } from '../claims/claims.module';
import { IotModule } from '../iot/iot.module';
import { Errors } from '../common/errors';
import { MAX_EST_BODY_LENGTH } from '../pki/est';
import { EstAuthenticator } from './est-authenticator';
import { EstLabelRepository } from './est-label.repository';
import { EstLabelsController } from './est-labels.controller';
import { EstLabelsService } from './est-labels.service';
import { EstController } from './est.controller';
import { EST_BASE_PATH, PKCS10_MEDIA_TYPE } from './est.docs';
import { EST_CALLER, EstGuard } from './est.guard';
import { EstService } from './est.service';
import { TypeOrmEstLabelRepository } from './typeorm-est-label.repository';

const ENROLL_OPERATIONS = ['simpleenroll', 'simplereenroll', 'serverkeygen'];

/** EST (RFC 7030): the /.well-known/est routes and their labels (docs/est.md). */
@Module({
  imports: [AuthModule, AuthoritiesModule, CertificatesModule, ClaimsModule, IotModule, RenewalModule],
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
   * The enrollment routes take application/pkcs10 alone: another media type is a 415 before any parser reads the body
   * (a JSON parse error would say less). Appended after the pre-body authentication, which comes first. Must be
   * installed before the routes are registered (before app.init()), for app.factory.ts.
   */
  static requirePkcs10Bodies(fastify: FastifyInstance): void {
    fastify.addHook('onRoute', (route) => {
      if (route.method !== 'POST' || !route.url.startsWith(`${EST_BASE_PATH}/`)) return;
      const hook = async (request: FastifyRequest, _reply: unknown, payload: NodeJS.ReadableStream) => {
        const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
        if (type !== PKCS10_MEDIA_TYPE) throw Errors.unsupportedMediaType(`send the CSR as Content-Type: ${PKCS10_MEDIA_TYPE} (base64 of its DER, RFC 7030 §4.2.1)`);
        return payload;
      };
      const existing = route.preParsing === undefined ? [] : Array.isArray(route.preParsing) ? route.preParsing : [route.preParsing];
      route.preParsing = [...existing, hook];
    });
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

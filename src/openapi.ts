import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { CERTIFICATE_JWT_SCHEME, ProblemDto, PUBLIC_OPERATION_EXTENSION } from './common/openapi';
import { OCSP_OPENAPI_PATHS } from './revocation/ocsp-http';

const TAGS: [name: string, description: string][] = [
  ['authorities', 'Certificate authorities: self-signed roots and intermediates, their certificates and chains'],
  ['revocation', 'Certificate revocation lists and the OCSP responder, published without authentication'],
  ['certificates', 'Issuing certificates from CSRs, searching and revoking them'],
  ['api-keys', 'API keys and their roles (admin only)'],
  ['audit', 'The hash-chained audit log'],
  ['claims', 'Factory claims: quotas, allow-lists and claim certificates (admin)'],
  ['provisioning', 'The exchange of a claim certificate for a device certificate, called by factory stations'],
  ['rotation', 'Rotation campaigns: renewing a set of certificates by a deadline'],
  ['fleet', 'Fleet security audits: findings and remediations'],
  ['iot', 'AWS IoT Core: CA registration for JITR/JITP and API-mode devices'],
  ['health', 'Liveness, readiness and Prometheus metrics'],
  ['setup', 'Self-check of the deployment (admin): database, key backends, AWS, JITR settings, public TLS'],
];

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** Builds the OpenAPI document from the controllers' decorators; operationIds are the method names. */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('Fleet PKI')
    .setDescription(
      'Certificate authority and provisioning service for IoT fleets on AWS IoT Core. ' +
        'Errors are RFC 9457 application/problem+json bodies with a stable `code`.',
    )
    .setVersion('1.0.0')
    // Relative: the API is on the host that serves this document (Swagger UI at /docs).
    .addServer('/', 'This Fleet PKI instance')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'fpk API key', description: 'API key: fpk_<prefix>.<secret>' })
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: 'Factory stations and devices: a JWT signed with the key of a certificate this service issued (the claim certificate, or the device’s own), ES256, ES384 or RS256, the certificate in the x5c header, aud = the route’s URL, exp at most 5 minutes ahead, a single-use jti. Mutual TLS with the same certificate is the alternative when the service terminates TLS.',
      },
      CERTIFICATE_JWT_SCHEME,
    );
  for (const [name, description] of TAGS) builder.addTag(name, description);
  const config = builder.build();
  // The service is not published under a license, so there is no license URL to give.
  config.info.license = { name: 'UNLICENSED' };
  const document = SwaggerModule.createDocument(app, config, {
    operationIdFactory: (_controllerKey: string, methodKey: string) => methodKey,
    extraModels: [ProblemDto],
  });
  applyPublicSecurity(document);
  document.paths = withOcspPaths(document.paths);
  return document;
}

/**
 * The OCSP responder's operations, served ahead of the framework (revocation/ocsp-http.ts) and so described by
 * hand, placed after the other revocation routes (as the controllers would have placed them).
 */
function withOcspPaths(paths: OpenAPIObject['paths']): OpenAPIObject['paths'] {
  const entries = Object.entries(paths);
  const isRevocation = ([, item]: (typeof entries)[number]) => HTTP_METHODS.some((method) => item[method]?.tags?.includes('revocation'));
  const lastRevocation = entries.map(isRevocation).lastIndexOf(true);
  const position = lastRevocation < 0 ? entries.length : lastRevocation + 1;
  return Object.fromEntries([...entries.slice(0, position), ...Object.entries(OCSP_OPENAPI_PATHS), ...entries.slice(position)]);
}

/**
 * @Public() routes carry a marker extension; they get `security: []` (no API key), which @nestjs/swagger
 * cannot express. Every other route must document bearer auth (@ApiSecured()), so the document cannot
 * silently show a protected route as open or the reverse.
 */
function applyPublicSecurity(document: OpenAPIObject): void {
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of HTTP_METHODS) {
      const operation = item[method] as (NonNullable<typeof item.get> & Record<string, unknown>) | undefined;
      if (!operation) continue;
      const name = `${method.toUpperCase()} ${path} (${operation.operationId})`;
      const secured = operation.security?.some((requirement) => 'bearer' in requirement) ?? false;
      if (operation[PUBLIC_OPERATION_EXTENSION]) {
        if (secured) throw new Error(`OpenAPI: ${name} is @Public() but documents bearer auth`);
        delete operation[PUBLIC_OPERATION_EXTENSION];
        // A route with its own scheme (certificate JWT) keeps it, with {} for the mutual TLS alternative.
        operation.security = operation.security?.length ? [...operation.security, {}] : [];
      } else if (!secured) {
        throw new Error(`OpenAPI: ${name} is neither @Public() nor documented with @ApiSecured()`);
      }
    }
  }
}

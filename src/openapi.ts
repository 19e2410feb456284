import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { ProblemDto } from './common/openapi';

/** Builds the OpenAPI document from the controllers' decorators; operationIds are the method names. */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Fleet PKI')
    .setDescription(
      'Certificate authority and provisioning service for IoT fleets on AWS IoT Core. ' +
        'Errors are RFC 9457 application/problem+json bodies with a stable `code`.',
    )
    .setVersion('1.0.0')
    .setLicense('UNLICENSED', 'https://example.invalid/license')
    .addServer('http://localhost:8080', 'Embedded default')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'API key: fpk_<prefix>.<secret>' })
    .build();
  return SwaggerModule.createDocument(app, config, {
    operationIdFactory: (_controllerKey: string, methodKey: string) => methodKey,
    extraModels: [ProblemDto],
  });
}

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type * as net from 'node:net';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module';
import { Clock } from './common/clock';
import { validationPipe } from './common/pipes';
import { AppConfig, HttpServerConfig } from './config/config';
import { sourceKey } from './common/request-rate-limits';
import { RequestLimits } from './auth/request-limits';
import { MetricsService } from './metrics/metrics.service';
import { buildOpenApiDocument } from './openapi';
import { installBodyParsers } from './common/streamed-bodies';
import { SecureElementsModule } from './secure-elements/secure-elements.module';
import { ClaimsModule } from './claims/claims.module';
import { RenewalModule } from './certificates/renewal.module';
import { EstModule } from './est/est.module';
import { RevocationModule } from './revocation/revocation.module';
import type { OcspHttpBinding } from './revocation/ocsp-http';
import { requestIdOf } from './common/request-id';
import { answerClientError, answerFrameworkError, refuseWithoutHost } from './common/http-errors';
import { DEFAULT_CACHE_CONTROL, securityHeaders } from './common/security-headers';
import { authenticateBeforeBody } from './auth/pre-body-authentication';
import { TpmModule } from './tpm/tpm.module';
import { IdempotencyInterceptor } from './database/idempotency.interceptor';
import { configureLogging, LogOutput, ServiceLogger } from './logging/service-logger';
import { logRequests } from './logging/request-log';
import { serveConsole } from './console/console-static';

/**
 * The HTTP(S) server: requests for the OCSP responder go to its binding, ahead of the framework (see
 * revocation/ocsp-http.ts); everything else to Fastify. The binding is attached once the application is built.
 * Fastify's answers get the security headers and the no-store default here, before any layer of it (router refusals,
 * 404s, hooks, handlers) writes: a route's own Cache-Control replaces the default. The binding sets its own.
 */
function createServer(config: AppConfig, framework: http.RequestListener, ocsp: () => OcspHttpBinding | undefined): http.Server {
  const tls = config.tls !== undefined;
  const defaults = [...securityHeaders(tls), DEFAULT_CACHE_CONTROL];
  const listener: http.RequestListener = (request, response) => {
    if (refuseWithoutHost(request, response, tls)) return;
    if (ocsp()?.handle(request, response)) return;
    for (const [name, value] of defaults) response.setHeader(name, value);
    framework(request, response);
  };
  // Client certificates are requested but not required, and verified by the routes that accept them
  // (the claim CAs are data, not configuration); every other route ignores them.
  // A request without Host is refused by refuseWithoutHost (problem+json), not by Node (an empty 400).
  const limits = httpServerOptions(config.http);
  const server = config.tls
    ? https.createServer({ cert: fs.readFileSync(config.tls.certFile), key: fs.readFileSync(config.tls.keyFile), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', requireHostHeader: false, handshakeTimeout: config.http.headersTimeoutMs, ...limits }, listener)
    : http.createServer({ requireHostHeader: false, ...limits }, listener);
  applyConnectionLimits(server, config.http);
  return server;
}

/**
 * What keeps slow or idle clients from holding the service (docs/limits.md): the request head must arrive within
 * HTTP_HEADERS_TIMEOUT_MS (slow-loris; Node also closes a connection that sends nothing within it), the whole request
 * within HTTP_REQUEST_TIMEOUT_MS (both answered 408 by common/http-errors.ts), headers above HTTP_MAX_HEADER_BYTES are
 * a 431. Node enforces the two timeouts on a timer of `connectionsCheckingInterval` (30 s by default, which would let a
 * slow client stay up to 30 s past them).
 */
function httpServerOptions(limits: HttpServerConfig): http.ServerOptions {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4))),
  };
}

/**
 * HTTP_MAX_CONNECTIONS (Node closes connections past it at once) and HTTP_MAX_CONNECTIONS_PER_SOURCE: connections of
 * one TCP peer address (IPv6 by /64) past the cap are closed at once, before TLS or HTTP, so one client cannot take
 * every connection slot or file descriptor of the process. The TCP peer, not X-Forwarded-For: behind a load balancer
 * every connection comes from it, and the cap is left off (docs/limits.md).
 */
function applyConnectionLimits(server: http.Server, limits: HttpServerConfig): void {
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
  const cap = limits.maxConnectionsPerSource;
  if (cap === 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket: net.Socket) => {
    const key = sourceKey(socket.remoteAddress);
    const count = (open.get(key) ?? 0) + 1;
    if (count > cap) return void socket.destroy();
    open.set(key, count);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left > 0) open.set(key, left);
      else open.delete(key);
    });
  });
}

/**
 * Builds the whole application (used by main, the tests and the OpenAPI generator). Logs are pino lines on stdout
 * (LOG_FORMAT, LOG_LEVEL; docs/operations.md, "Logs"); `logOutput` takes them instead, every level (the tests' log
 * capture, test/support/log-capture.ts).
 */
export async function createApp(config: AppConfig, clock?: Clock, logOutput?: LogOutput): Promise<NestFastifyApplication> {
  const pino = configureLogging({ level: config.logLevel, format: config.logFormat, output: logOutput });
  if (config.database.driver === 'sqlite') fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const ocsp: { binding?: OcspHttpBinding } = {};
  const adapter = new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes,
    serverFactory: (framework: http.RequestListener) => createServer(config, framework, () => ocsp.binding),
    // AWS IoT posts the destination confirmation to "<url>/?confirmationToken=…": a trailing slash must not 404.
    routerOptions: { ignoreTrailingSlash: true },
    trustProxy: config.trustProxy,
    // Honour a caller's X-Request-Id when it is sane, so logs and audit events can be correlated.
    genReqId: requestIdOf,
    // Refusals made before any route runs are problem+json too (common/http-errors.ts).
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
  });
  const logger = new ServiceLogger();
  // abortOnError false: a provider failing at boot (a PKCS #11 token refusing the PIN) rejects here, so main.ts prints
  // its message (naming the setting) and exits, instead of Nest aborting the process.
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, clock), adapter, { logger, abortOnError: false });
  app.useGlobalPipes(validationPipe);
  app.enableShutdownHooks();

  const fastify = app.getHttpAdapter().getInstance();
  // Before app.init() registers the routes: the certificate-authenticated routes authenticate before reading the body.
  authenticateBeforeBody(fastify, new Map([...ClaimsModule.preBodyAuthenticators(app), ...RenewalModule.preBodyAuthenticators(app), ...EstModule.preBodyAuthenticators(app), ...TpmModule.preBodyAuthenticators(app)]));
  EstModule.requirePkcs10Bodies(fastify);
  // JSON only: a text/plain body would reach validation as a string and confuse callers.
  fastify.removeContentTypeParser('text/plain');
  const metrics = app.get(MetricsService);
  // The source-address limit, first of all hooks: before authentication, routing's other work or any body is read.
  const limits = app.get(RequestLimits);
  fastify.addHook('onRequest', async (request) => limits.checkSource(request));
  fastify.addHook('onSend', async (request, reply) => {
    reply.header('X-Request-Id', String(request.id));
  });
  // Idempotency-Key: the first request's answer is stored (or its key freed) before it goes out (docs/idempotency.md).
  fastify.addHook('onSend', app.get(IdempotencyInterceptor).onSend);
  logRequests(fastify, pino, logger.pino);
  fastify.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration
      .series({ method: request.method, route: request.routeOptions?.url ?? 'unmatched', status: String(reply.statusCode) })
      .observe(reply.elapsedTime / 1000);
  });

  // The ops console (docs/console.md), a static page that calls this API with the operator's key.
  await serveConsole(app);
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), { jsonDocumentUrl: 'docs/openapi.json', yamlDocumentUrl: 'docs/openapi.yaml' });
  await app.init();
  // Nest adds an application/x-www-form-urlencoded parser during init; JSON only here too (415).
  fastify.removeContentTypeParser('application/x-www-form-urlencoded');
  // Nest's JSON parser is replaced by one that hands the large-upload routes their stream.
  installBodyParsers(fastify, config.bodyLimitBytes, new Set([...ClaimsModule.streamedBodyRoutes, ...SecureElementsModule.streamedBodyRoutes]), ['text/csv']);
  EstModule.installBodyParser(fastify);
  await fastify.ready();
  ocsp.binding = RevocationModule.ocspBinding(app);
  return app;
}

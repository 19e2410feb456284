import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { Logger } from '@nestjs/common';
import { REQUEST_CONTEXT } from '../common/access.decorators';
import { REQUEST_CALLER } from '../common/idempotency';
import { configureLogging, ServiceLogger } from './service-logger';
import { logRequests } from './request-log';

/** A bare Fastify with the request log, routes standing in for the API key guard and a certificate authenticator. */
async function server(lines: Record<string, unknown>[]) {
  const root = configureLogging({ level: 'debug', format: 'json', output: { write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  const logger = new ServiceLogger();
  Logger.overrideLogger(logger);
  const fastify = Fastify({ trustProxy: '127.0.0.1' });
  logRequests(fastify, root, logger.pino);
  fastify.addHook('preHandler', async (request) => {
    const fields = request as unknown as Record<string, unknown>;
    if (request.url.startsWith('/keyed')) fields[REQUEST_CONTEXT] = { actor: { type: 'api-key', id: 'key-1', role: 'admin' }, requestId: String(request.id), sourceIp: null };
    if (request.url.startsWith('/station')) fields[REQUEST_CALLER] = { type: 'claim-certificate', id: 'ab'.repeat(32), role: null };
  });
  fastify.get('/keyed/:id', async () => {
    new Logger('Handler').log('inside the handler');
    return { ok: true };
  });
  fastify.post('/station/exchange', async (request) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    new Logger('Handler').warn(`after the body (${Object.keys(request.body as object).length} fields)`);
    return { ok: true };
  });
  fastify.get('/healthz', async () => 'ok');
  fastify.get('/boom', async () => {
    throw new Error('boom');
  });
  return fastify;
}

describe('request lines', () => {
  it('name the API key, the claim certificate, the route pattern and the client behind a trusted proxy', async () => {
    const lines: Record<string, unknown>[] = [];
    const fastify = await server(lines);
    await fastify.inject({ method: 'GET', url: '/keyed/1234?token=abc', headers: { 'x-forwarded-for': '198.51.100.4' } });
    await fastify.inject({ method: 'POST', url: '/station/exchange', payload: { csr: 'x', password: 'y' } });
    await fastify.close();
    Logger.overrideLogger(false);

    const requests = lines.filter((line) => line.msg === 'request completed');
    assert.deepEqual(requests.map((line) => [line.method, line.route, line.status, line.actorType, line.actorId]), [
      ['GET', '/keyed/:id', 200, 'api-key', 'key-1'],
      ['POST', '/station/exchange', 200, 'claim-certificate', 'ab'.repeat(32)],
    ]);
    assert.equal(requests[0].remoteAddress, '198.51.100.4');
    // Lines logged in the handler carry the request's id, before and after reading a body.
    const inside = lines.filter((line) => line.context === 'Handler');
    assert.deepEqual(inside.map((line) => line.requestId), requests.map((line) => line.requestId));
    assert.ok(!JSON.stringify(lines).includes('1234') && !JSON.stringify(lines).includes('token'), 'no raw URL');
  });

  it('logs a 5xx at error and a successful health probe at debug', async () => {
    const lines: Record<string, unknown>[] = [];
    const fastify = await server(lines);
    await fastify.inject({ method: 'GET', url: '/healthz' });
    await fastify.inject({ method: 'GET', url: '/boom' });
    await fastify.close();
    Logger.overrideLogger(false);
    const byRoute = new Map(lines.filter((line) => line.route).map((line) => [line.route, line]));
    assert.equal(byRoute.get('/healthz')?.level, 'debug');
    assert.equal(byRoute.get('/boom')?.level, 'error');
    assert.equal(byRoute.get('/boom')?.msg, 'request failed');
    assert.equal(byRoute.get('/boom')?.status, 500);
  });
});

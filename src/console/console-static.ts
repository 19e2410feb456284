import * as fs from 'node:fs';
import * as path from 'node:path';
import fastifyStatic from '@fastify/static';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply } from 'fastify';

/** Where `npm run build` puts the console (console/vite.config.mjs): dist/console, beside dist/src. */
export const CONSOLE_DIR = path.resolve(__dirname, '..', '..', 'console');

/**
 * The console's Content-Security-Policy (docs/console.md): its own scripts and styles only (no inline script, no
 * eval, no third-party origin), API calls to this origin only, never framed. The API key is held by the page; a
 * policy this tight keeps injected markup from running code that could read it.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function consoleHeaders(reply: FastifyReply, hashed: boolean): void {
  reply.header('Content-Security-Policy', CONSOLE_CSP);
  reply.header('X-Frame-Options', 'DENY');
  reply.header('Referrer-Policy', 'no-referrer');
  // Built asset names carry a content hash: cache them for good; the page itself is always fetched anew.
  reply.header('Cache-Control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
}

/**
 * Serves the ops console at /console/ from its built directory. A service built without it (no dist/console)
 * starts all the same and says so once.
 */
export async function serveConsole(app: NestFastifyApplication, dir = CONSOLE_DIR): Promise<void> {
  const indexFile = path.join(dir, 'index.html');
  if (!fs.existsSync(indexFile)) {
    new Logger('Console').warn(`ops console not built (no ${indexFile}): /console is not served; run npm run build`);
    return;
  }
  // The page itself at /console and /console/ (the router ignores the trailing slash), read once; the hashed
  // assets by @fastify/static.
  const page = fs.readFileSync(indexFile);
  app.getHttpAdapter().getInstance().get('/console', async (_request, reply) => {
    consoleHeaders(reply, false);
    return reply.type('text/html; charset=utf-8').send(page);
  });
  await app.register(fastifyStatic, { root: path.join(dir, 'assets'), prefix: '/console/assets/', index: false, decorateReply: false, setHeaders: (reply) => consoleHeaders(reply, true) });
}

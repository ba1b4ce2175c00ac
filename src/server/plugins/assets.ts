/**
 * /assets/: the built stylesheets, scripts and images (@fastify/static), in a context of its own so that
 * what the static server refuses is answered here, as a 4xx, and never reaches the 500 path (issue #12).
 *
 * @fastify/send refuses with 403 a path that climbs out of the folder (an encoded `../`) or names a
 * folder; we answer those as any missing asset (404), so nothing says what is there (OWASP ASVS 5 V13.4:
 * no directory listings or hidden files). Dotfiles are ignored (404) for the same reason; a NUL byte is
 * refused before, as bad input (400, plugins/input-guard.ts). A Range it cannot satisfy stays a 416 with a Content-Range giving the length (RFC 9110
 * §15.5.17), and a failed If-Match a 412, through the app's error handler.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { ASSET_BUILD_DIR } from '../../web/build-assets.js';

function statusOf(error: unknown): number | undefined {
  const { statusCode, status } = error as { statusCode?: unknown; status?: unknown };
  if (typeof statusCode === 'number') return statusCode;
  return typeof status === 'number' ? status : undefined;
}

export async function assets(app: FastifyInstance): Promise<void> {
  const parentHandler = app.errorHandler;
  app.setErrorHandler(async (error, request, reply) => {
    if (statusOf(error) === 403) return reply.callNotFound();
    return parentHandler.call(app, error, request, reply);
  });
  await app.register(fastifyStatic, { root: ASSET_BUILD_DIR, prefix: '/assets/', maxAge: '1h', index: false, dotfiles: 'ignore' });
}

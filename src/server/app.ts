/**
 * buildApp: the HTTP server as a Fastify instance, built from an AppContext (configuration and
 * dependencies). Surfaces are encapsulated plugins; shared behaviour (security headers, CSRF,
 * sessions, views, errors, metrics) is registered once here.
 */
import { readFileSync } from 'node:fs';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import { redactPath, type AppContext } from '../app/context.js';
import { formatErrorMessage, isPortcullisError, type ErrorCode } from '../core/errors.js';
import { isDependencyUnavailable } from '../app/context.js';
import { ensureAssets } from '../web/build-assets.js';
import { accountRoutes } from './account/routes.js';
import { activationRoutes } from './activation/routes.js';
import { authenticatorRoutes } from './authenticator/routes.js';
import { oidcProvider } from './oidc/plugin.js';
import { dailyWork, sweepExpired } from '../app/housekeeping.js';
import { deviceApiRoutes } from './device-api/routes.js';
import { adminApiRoutes } from './admin-api/routes.js';
import { adminLogRoutes } from './admin/log-routes.js';
import { adminPolicyRoutes } from './admin/policy-routes.js';
import { adminRoutes } from './admin/routes.js';
import { adminUserRoutes } from './admin/user-routes.js';
import { devRoutes } from './dev/routes.js';
import { helpRoutes } from './help/routes.js';
import { opsRoutes } from './ops/routes.js';
import { assets } from './plugins/assets.js';
import { csrfProtection } from './plugins/csrf.js';
import { inputGuard } from './plugins/input-guard.js';
import { securityHeaders } from './plugins/security-headers.js';
import { sessions } from './plugins/session.js';
import { views } from './plugins/views.js';
import { passwordResetRoutes } from './password-reset/routes.js';
import { securityInfoRoutes } from './security-info/routes.js';
import { signInRoutes } from './sign-in/routes.js';
import './types.js';

const ERROR_TITLES: Partial<Record<ErrorCode, string>> = {
  'csrf-failed': 'This page has expired',
  'not-found': 'Page not found',
  'rate-limited': 'Too many requests',
  internal: 'Sorry, there is a problem with the service',
  'service-unavailable': 'Sorry, there is a problem with the service',
};


function isApi(request: FastifyRequest): boolean {
  return request.routeOptions.config?.surface === 'api';
}

/** The 4xx status an error from Fastify or a plugin carries (`statusCode`, or http-errors' `status`), if any. */
function clientErrorStatus(error: unknown): number | null {
  const { statusCode, status } = error as { statusCode?: unknown; status?: unknown };
  const value = typeof statusCode === 'number' ? statusCode : status;
  return typeof value === 'number' && Number.isInteger(value) && value >= 400 && value <= 499 ? value : null;
}

export async function buildApp(ctx: AppContext): Promise<FastifyInstance> {
  await ensureAssets();
  // HTTPS straight from Portcullis when given a certificate (phones need a secure origin for the
  // authenticator web app); otherwise plain HTTP, with TLS at a reverse proxy in production.
  const https = ctx.config.tls ? { cert: readFileSync(ctx.config.tls.certFile), key: readFileSync(ctx.config.tls.keyFile) } : null;
  const app = Fastify({
    ...(https ? { https } : {}),
    loggerInstance: ctx.logger as FastifyBaseLogger,
    // Fastify takes a hop count too, though its types do not say so.
    trustProxy: ctx.config.trustProxy as string | boolean,
    bodyLimit: 256 * 1024,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  app.setErrorHandler(async (error, request, reply) => {
    let code: ErrorCode = 'internal';
    let params = {};
    if (isPortcullisError(error)) {
      code = error.code;
      params = error.params;
    } else if ((error as { validation?: unknown }).validation) {
      code = 'request-invalid';
    } else if (clientErrorStatus(error) !== null) {
      // Bad input refused by Fastify or a plugin (a body too large, a content type we do not take, an
      // unsatisfiable Range from @fastify/static …) keeps its 4xx and never becomes a 500 (issue #12).
      const status = clientErrorStatus(error);
      code = status === 404 ? 'not-found' : status === 429 ? 'rate-limited' : 'request-invalid';
      // Such as Content-Range on a 416 (RFC 9110 §15.5.17), which http-errors carries on the error.
      const headers = (error as { headers?: unknown }).headers;
      if (typeof headers === 'object' && headers !== null) {
        for (const [name, value] of Object.entries(headers)) if (typeof value === 'string' && /^(content-range|allow|retry-after)$/i.test(name)) reply.header(name, value);
      }
    } else if (isDependencyUnavailable(error)) {
      // The database or Redis is down or restarting: expected in operations, not a bug. The request is
      // refused whole (a throttle that cannot be read is never skipped), and the node recovers by itself
      // when the connection comes back (docs/operations.md, "What a crash or a lost node costs").
      code = 'service-unavailable';
      reply.header('retry-after', '30');
      request.log.warn({ err: (error as Error).message, url: redactPath(request.url) }, 'database or Redis unavailable');
    } else {
      request.log.error({ err: error, url: redactPath(request.url) }, 'unhandled error');
    }
    const status = isPortcullisError(error) ? error.status : code === 'internal' ? 500 : code === 'service-unavailable' ? 503 : (clientErrorStatus(error) ?? 400);
    const message = formatErrorMessage(code, params);
    if (isApi(request)) {
      // A device with a wrong clock learns the server's, to correct and retry (docs/device-api.md).
      const extra = code === 'device-clock-skew' ? { serverTime: Math.floor(ctx.clock().getTime() / 1000) } : {};
      // An error about one field names it, for the client to show beside that field.
      const field = typeof (params as { field?: unknown }).field === 'string' ? { field: (params as { field: string }).field } : {};
      return reply.code(status).send({ error: code, message, ...field, ...extra });
    }
    return reply.render('error.njk', { title: ERROR_TITLES[code] ?? 'There is a problem', message, linkHref: '/', linkText: 'Go to the start page' }, status);
  });

  app.setNotFoundHandler(async (request, reply) => {
    if (request.url.startsWith('/device/') || request.url.startsWith('/oidc/')) {
      return reply.code(404).send({ error: 'not-found', message: formatErrorMessage('not-found') });
    }
    return reply.render(
      'error.njk',
      { title: 'Page not found', message: 'If you typed the web address, check it is correct.', linkHref: '/', linkText: 'Go to the start page' },
      404,
    );
  });

  app.addHook('onResponse', async (request, reply) => {
    ctx.metrics.httpRequestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(cookie);
  await app.register(formbody);
  await app.register(inputGuard);
  await app.register(securityHeaders, { https: ctx.config.https });
  await app.register(csrfProtection, { key: ctx.keys.csrf, publicOrigin: ctx.config.publicOrigin });
  await app.register(sessions, { ctx });
  await app.register(views, { organisationName: ctx.config.organisationName });
  await app.register(assets);

  await app.register(opsRoutes, { ctx });
  await app.register(signInRoutes, { ctx });
  await app.register(accountRoutes, { ctx });
  await app.register(activationRoutes, { ctx });
  // Development pages show one-time codes: only with DEVELOPMENT_PAGES=true (a localhost PUBLIC_URL).
  if (ctx.config.developmentPages) await app.register(devRoutes, { ctx });
  await app.register(securityInfoRoutes, { ctx });
  await app.register(passwordResetRoutes, { ctx });
  await app.register(deviceApiRoutes, { ctx });
  await app.register(adminApiRoutes, { ctx });
  await app.register(adminRoutes, { ctx });
  await app.register(adminPolicyRoutes, { ctx });
  await app.register(adminLogRoutes, { ctx });
  await app.register(adminUserRoutes, { ctx });
  await app.register(authenticatorRoutes, { ctx });
  await app.register(helpRoutes, { ctx });
  await app.register(oidcProvider, { ctx });

  // Housekeeping: expired sessions, sign-in flows, throttle counters, challenges and abandoned set-ups
  // are deleted now and then (src/app/housekeeping.ts).
  const sweep = setInterval(() => {
    sweepExpired(ctx).catch((error: unknown) => ctx.logger.warn({ err: (error as Error).message }, 'housekeeping failed'));
    dailyWork(ctx).catch((error: unknown) => ctx.logger.warn({ err: (error as Error).message }, 'the daily compliance snapshot failed'));
  }, 10 * 60 * 1000);
  sweep.unref();
  app.addHook('onClose', async () => clearInterval(sweep));

  return app;
}

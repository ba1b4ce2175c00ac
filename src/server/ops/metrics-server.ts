/**
 * /metrics on a listener of its own (METRICS_HOST:METRICS_PORT, 127.0.0.1:9464 by default), never on
 * the public one: the counters describe sign-ins and delivery across every user, which is for the
 * operator's monitoring, not for anyone who can reach the sign-in page (OWASP ASVS 5 V13.4, unintended
 * information leakage: monitoring endpoints are not exposed unless meant to be; issue #12). When the
 * operator binds it beyond this machine, METRICS_TOKEN asks scrapers for a bearer token (RFC 6750 §2.1).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { AppContext } from '../../app/context.js';

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|\[::1\]|localhost)$/i;

/** Whether an address to listen on keeps the listener on this machine. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host.trim());
}

/** Compares digests, so neither the token's length nor its prefix shows in the time taken. */
function tokenMatches(sent: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(sent), digest(expected));
}

/** The metrics listener as a Fastify instance: GET /metrics, 404 for everything else. */
export async function buildMetricsApp(ctx: AppContext, options: { token?: string | null } = {}): Promise<FastifyInstance> {
  const token = options.token ?? ctx.config.metricsServer?.token ?? null;
  const app = Fastify({
    loggerInstance: ctx.logger as FastifyBaseLogger,
    // A scrape every few seconds would drown the request log.
    disableRequestLogging: true,
    bodyLimit: 1024,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  app.setNotFoundHandler(async (_request, reply) => reply.code(404).type('text/plain; charset=utf-8').send('Not found\n'));
  app.setErrorHandler(async (error, request, reply) => {
    const status = (error as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) return reply.code(status).type('text/plain; charset=utf-8').send('Bad request\n');
    request.log.error({ err: error }, 'metrics failed');
    return reply.code(500).type('text/plain; charset=utf-8').send('Metrics are unavailable\n');
  });

  app.get('/metrics', async (request, reply) => {
    reply.header('cache-control', 'no-store');
    if (token !== null) {
      const match = /^Bearer ([\x21-\x7e]+)$/.exec(request.headers.authorization ?? '');
      if (!match || !tokenMatches(match[1]!, token)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="portcullis-metrics"')
          .type('text/plain; charset=utf-8')
          .send('A bearer token is needed to read the metrics\n');
      }
    }
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  return app;
}

/**
 * Operations: /healthz (the process is up) and /readyz (the database, and Redis when configured,
 * answer). /metrics is not here: it has a listener of its own (metrics-server.ts, issue #12).
 */
import type { FastifyInstance } from 'fastify';
import { databaseAnswers, type AppContext } from '../../app/context.js';

export async function opsRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const config = { surface: 'api' as const };

  app.get('/healthz', { config }, async () => ({ status: 'ok' }));

  app.get('/readyz', { config }, async (_request, reply) => {
    const database = await databaseAnswers(ctx);
    let redis: boolean | undefined;
    if (ctx.redis) {
      try {
        redis = (await ctx.redis.ping()) === 'PONG';
      } catch {
        redis = false;
      }
    }
    const ready = database && redis !== false;
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', database, ...(redis === undefined ? {} : { redis }) });
  });
}

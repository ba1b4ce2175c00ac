/**
 * `portcullis serve`: migrate, then serve HTTP — the public listener, and /metrics on a listener of its
 * own — until SIGTERM or SIGINT, when requests in flight are finished (up to SHUTDOWN_TIMEOUT), the audit
 * log's last events are sealed, and the database is closed.
 */
import { startAuditSealer } from '../../app/audit-chain.js';
import { createAppContext, createLogger } from '../../app/context.js';
import { describeDemo, ensureDemo } from '../../app/demo.js';
import { ConfigError, type Config } from '../../config/load.js';
import { buildApp } from '../../server/app.js';
import { buildMetricsApp, isLoopbackHost } from '../../server/ops/metrics-server.js';
import { loadServerConfig } from '../runtime.js';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyInstance } from 'fastify';

export function startupWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.secret.source === 'generated-file') {
    warnings.push(
      `PORTCULLIS_SECRET is not set: using a secret generated into ${config.dataDir}/secret. ` +
        'This is for development only. Set PORTCULLIS_SECRET (run `portcullis secret generate`) before real use, and keep it safe: ' +
        'losing it makes encrypted secrets at rest unreadable.',
    );
  }
  if (config.trustProxy === true) {
    warnings.push('TRUST_PROXY=true believes X-Forwarded-For from anyone: name your proxies instead, or throttling can be evaded.');
  }
  // Delivery: the development outbox sends nothing, and the development pages show codes to anyone.
  const providerOptions = [['sms', 'SMS_PROVIDER'], ['voice', 'VOICE_PROVIDER'], ['email', 'EMAIL_PROVIDER']] as const;
  const outboxOptions = providerOptions.filter(([channel]) => config.delivery.providers[channel] === 'outbox').map(([, option]) => option);
  if (outboxOptions.length) {
    warnings.push(
      `${outboxOptions.join(', ')} ${outboxOptions.length === 1 ? 'is' : 'are'} outbox: those messages are NOT sent, only kept for development ` +
        '(read them with `portcullis outbox`). Choose a real provider before real use (docs/configuration.md).',
    );
  }
  if (config.developmentPages) {
    warnings.push('DEVELOPMENT_PAGES=true: /dev/outbox shows every development message, codes included, to anyone who can reach this server.');
  }
  // Drama numbers reach no one: on a real service people could register a phone that never gets a code.
  if (config.secondFactors.allowDramaRange) {
    warnings.push("PHONE_ALLOW_DRAMA_RANGE=true: Ofcom's drama numbers (+44 7700 900xxx) are accepted as phones, and no text or call can reach them. For development only.");
  }
  if (config.metricsServer && !isLoopbackHost(config.metricsServer.host) && !config.metricsServer.token) {
    warnings.push(
      `METRICS_HOST=${config.metricsServer.host} without METRICS_TOKEN: anyone who can reach port ${config.metricsServer.port} reads the metrics. ` +
        'Set METRICS_TOKEN, or bind the listener to 127.0.0.1 (the default).',
    );
  }
  return warnings;
}

export async function serve(options: { demo?: boolean }): Promise<void> {
  const config = loadServerConfig();
  const logger = createLogger(config);
  for (const warning of startupWarnings(config)) {
    logger.warn(warning);
    process.stderr.write(`\n  WARNING: ${warning}\n\n`);
  }
  const ctx = await createAppContext(config, { logger });
  if (options.demo) {
    await ensureDemo(ctx);
    process.stderr.write(`\n${describeDemo(config.publicUrl)}\n\n`);
  }
  const app = await buildApp(ctx);
  collectWhenQuiet(app);
  const metricsApp = config.metricsServer ? await buildMetricsApp(ctx) : null;
  await app.listen({ host: config.host, port: config.port });
  if (metricsApp && config.metricsServer) {
    try {
      await metricsApp.listen({ host: config.metricsServer.host, port: config.metricsServer.port });
    } catch (error) {
      // A metrics port already taken (two nodes on one machine) stops start-up, naming the option.
      await app.close();
      await ctx.close();
      throw new ConfigError('METRICS_PORT', `could not be listened on at ${config.metricsServer.host}:${config.metricsServer.port}: ${(error as Error).message}`);
    }
  }
  ctx.delivery.start();
  // Chains new audit events every second (one node at a time); see src/app/audit-chain.ts.
  const sealer = startAuditSealer(ctx);
  logger.info(
    {
      publicUrl: config.publicUrl.toString(),
      metrics: config.metricsServer ? `http://${config.metricsServer.host}:${config.metricsServer.port}/metrics` : 'off',
      database: config.database.kind,
      redis: Boolean(config.redisUrl),
    },
    'Portcullis is serving',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    const timer = setTimeout(() => {
      logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownSeconds * 1000);
    timer.unref();
    try {
      await Promise.all([app.close(), metricsApp?.close()]);
      // The requests' last events are sealed, and the head checkpointed, before the database closes.
      await sealer.stop();
      await ctx.close();
      logger.info('shut down cleanly');
      process.exitCode = 0;
    } catch (error) {
      logger.error({ err: error }, 'error while shutting down');
      process.exitCode = 1;
    }
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

/**
 * Memory given back when the node is quiet (docs/performance.md#memory-and-start). Start-up leaves
 * garbage behind (modules compiled, templates and schemas built, migrations checked) and V8 keeps the
 * young generation it grew (two 16 MiB semi-spaces); a server with no requests is never collected, so it
 * would hold some 40 MiB it does not need until load arrives. As V8 does in a browser tab (its memory
 * reducer, which Node.js does not drive), a quiet spell — no request for one check, every 5 seconds — gets
 * one full collection, which also shrinks the young generation (V8 does so when allocation is slow).
 * Under load nothing changes: V8 grows the young generation as it likes. `gc` is exposed in a context
 * of its own, never on the global object.
 */
function collectWhenQuiet(app: FastifyInstance, everyMs = 5000): NodeJS.Timeout {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let served = 0;
  let seen = -1;
  let collected = false;
  app.addHook('onResponse', async () => {
    served += 1;
  });
  const timer = setInterval(() => {
    if (served !== seen) {
      seen = served;
      collected = false;
      return;
    }
    if (collected) return;
    collected = true;
    // Twice: the second, finding little to do, is the one that gives the emptied pages back.
    gc();
    gc();
  }, everyMs);
  timer.unref();
  return timer;
}

/**
 * Everything the application services need, built once for the server or a CLI verb: configuration,
 * the store, the throttle store, the password hasher, derived keys, the clock and the logger.
 * Tests build it with their own database and clock.
 */
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import { createInProcessBus, createRedisBus, type Bus } from '../channels/bus.js';
import pino, { type Logger } from 'pino';
import { createDelivery, type Delivery } from '../channels/outbox.js';
import type { Config } from '../config/load.js';
import { deriveKeys, type DerivedKeys } from '../crypto/keys.js';
import { createPasswordHasher, type PasswordHasher } from '../crypto/password-hasher.js';
import { openDatabase } from '../store/database.js';
import { createStore, type Store } from '../store/index.js';
import { migrateToLatest } from '../store/migrations/index.js';

/** A database or Redis that does not answer: the server says 503, not 500 (issue #17). */
export { isDependencyUnavailable } from '../store/errors.js';
import { createRedisThrottleStore, createSqlThrottleStore, type ThrottleStore } from '../store/throttle-store.js';
import { countDatabaseWork, createMetrics, type Metrics } from './metrics.js';

export type Clock = () => Date;

export interface AppContext {
  config: Config;
  store: Store;
  throttles: ThrottleStore;
  hasher: PasswordHasher;
  keys: DerivedKeys;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  redis: Redis | null;
  /** Text messages, calls and email through the outbox (src/channels/). `portcullis serve` starts its dispatcher. */
  delivery: Delivery;
  /** Events between nodes (push decisions to waiting pages): in-process, or Redis pub/sub with REDIS_URL. */
  bus: Bus;
  /** Stops the delivery dispatcher, then closes the database and Redis connections. */
  close(): Promise<void>;
}

/** Paths that must never appear in logs. */
export const LOG_REDACT_PATHS = [
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
  '*.password',
  '*.newPassword',
  '*.secret',
  '*.token',
];

/** Secret-bearing path segments (activation tokens) are cut from logged URLs. */
export function redactPath(url: string): string {
  return url.replace(/^\/activate\/[^/?#]+/, '/activate/[redacted]');
}

export function createLogger(config: Pick<Config, 'logLevel'>, destination?: pino.DestinationStream): Logger {
  return pino({
    level: config.logLevel,
    serializers: {
      req: (req: { method?: string; url?: string; ip?: string }) => ({ method: req.method, url: redactPath(req.url ?? ''), ip: req.ip }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      err: pino.stdSerializers.err,
    },
    redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'portcullis' },
    timestamp: pino.stdTimeFunctions.isoTime,
  }, destination);
}

export interface CreateContextOptions {
  logger?: Logger;
  clock?: Clock;
  migrate?: boolean;
  metrics?: Metrics;
  hasher?: PasswordHasher;
}

export async function createAppContext(config: Config, options: CreateContextOptions = {}): Promise<AppContext> {
  const logger = options.logger ?? createLogger(config);
  const database = openDatabase(config.database);
  let redis: Redis | null = null;
  try {
    if (options.migrate ?? true) {
      const { applied } = await migrateToLatest(database.db, database.dialect);
      if (applied.length) logger.info({ applied }, 'database migrations applied');
    }
    if (config.redisUrl) {
      // Loaded only with REDIS_URL: a server without Redis never holds ioredis.
      const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
      redis = new RedisClient(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
      redis.on('error', (error) => logger.warn({ err: error.message }, 'Redis connection error'));
      await redis.connect();
    }
  } catch (error) {
    redis?.disconnect();
    await database.close();
    throw error;
  }
  const store = createStore(database);
  const keys = deriveKeys(config.secret.key);
  const clock = options.clock ?? (() => new Date());
  const metrics = options.metrics ?? createMetrics();
  countDatabaseWork(metrics, database.counts);
  const delivery = createDelivery({ db: database.db, keys, config, logger, metrics, clock });
  const bus = redis ? createRedisBus(redis, logger) : createInProcessBus();
  return {
    config,
    store,
    throttles: redis ? createRedisThrottleStore(redis) : createSqlThrottleStore(database.db),
    hasher: options.hasher ?? (await createPasswordHasher(config.passwordHashing)),
    keys,
    clock,
    logger,
    metrics,
    redis,
    delivery,
    bus,
    async close() {
      await delivery.close();
      await bus.close();
      if (redis) await redis.quit().catch(() => redis?.disconnect());
      await database.close();
    },
  };
}

/** Whether the database answers (for /readyz). */
export async function databaseAnswers(ctx: AppContext): Promise<boolean> {
  return ctx.store.database.ping();
}

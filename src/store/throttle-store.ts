/**
 * Counters for throttling and rate limits, shared by every node: in the database by default, in Redis
 * when REDIS_URL is set. Never only in one process's memory, so limits hold across nodes and restarts.
 * The decisions are the core's (src/core/throttle.ts); a store only counts, atomically.
 */
import { sql, type Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import type { CounterState } from '../core/throttle.js';
import { prepared } from './prepared.js';
import type { DatabaseSchema } from './schema.js';

// Every sign-in reads counters (src/store/prepared.ts).
const counter = prepared(2, (db, key, now) => db.selectFrom('throttles').select(['count', 'locked_until']).where('key', '=', key).where('expires_at', '>', now));
const twoCounters = prepared(3, (db, first, second, now) =>
  db.selectFrom('throttles').select(['key', 'count', 'locked_until']).where('key', 'in', [first, second]).where('expires_at', '>', now),
);

function counterState(row: { count: number | string; locked_until: string | null } | undefined): CounterState | null {
  return row ? { count: Number(row.count), lockedUntil: row.locked_until ? new Date(row.locked_until) : null } : null;
}

export interface ThrottleStore {
  /** Adds one and returns the new count; a counter past its expiry starts again from one. */
  increment(key: string, now: Date, expiresAt: Date): Promise<number>;
  get(key: string, now: Date): Promise<CounterState | null>;
  /** Two counters in one round trip (a sign-in reads its address's and its IP's). */
  getBoth(first: string, second: string, now: Date): Promise<[CounterState | null, CounterState | null]>;
  /** Marks the counter locked until a time (it must already exist). */
  lock(key: string, until: Date): Promise<void>;
  clear(key: string): Promise<void>;
  deleteExpired(now: Date): Promise<number>;
}

export function createSqlThrottleStore(db: Kysely<DatabaseSchema>): ThrottleStore {
  return {
    async increment(key, now, expiresAt) {
      const at = now.toISOString();
      const row = await db
        .insertInto('throttles')
        .values({ key, count: 1, locked_until: null, expires_at: expiresAt.toISOString() })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({
            count: sql<number>`case when ${sql.ref('throttles.expires_at')} <= ${at} then 1 else ${sql.ref('throttles.count')} + 1 end`,
            locked_until: sql<string | null>`case when ${sql.ref('throttles.expires_at')} <= ${at} then null else ${sql.ref('throttles.locked_until')} end`,
            expires_at: expiresAt.toISOString(),
          }),
        )
        .returning('count')
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },
    async get(key, now) {
      return counterState((await counter(db, key, now.toISOString())).rows[0]);
    },
    async getBoth(first, second, now) {
      const { rows } = await twoCounters(db, first, second, now.toISOString());
      return [counterState(rows.find((r) => r.key === first)), counterState(rows.find((r) => r.key === second))];
    },
    async lock(key, until) {
      await db.updateTable('throttles').set({ locked_until: until.toISOString() }).where('key', '=', key).execute();
    },
    async clear(key) {
      await db.deleteFrom('throttles').where('key', '=', key).execute();
    },
    async deleteExpired(now) {
      const result = await db.deleteFrom('throttles').where('expires_at', '<=', now.toISOString()).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

function redisCounter(fields: Record<string, string>): CounterState | null {
  if (!fields.count) return null;
  return { count: Number(fields.count), lockedUntil: fields.lockedUntil ? new Date(Number(fields.lockedUntil)) : null };
}

export function createRedisThrottleStore(redis: Redis, prefix = 'portcullis:throttle:'): ThrottleStore {
  return {
    async increment(key, _now, expiresAt) {
      const result = await redis
        .multi()
        .hincrby(prefix + key, 'count', 1)
        .pexpireat(prefix + key, expiresAt.getTime())
        .exec();
      const [error, count] = result?.[0] ?? [new Error('Redis transaction failed'), 0];
      if (error) throw error;
      return Number(count);
    },
    async get(key) {
      return redisCounter(await redis.hgetall(prefix + key));
    },
    async getBoth(first, second) {
      const results = (await redis.pipeline().hgetall(prefix + first).hgetall(prefix + second).exec()) ?? [];
      const fields = results.map(([error, value]) => {
        if (error) throw error;
        return value as Record<string, string>;
      });
      return [redisCounter(fields[0] ?? {}), redisCounter(fields[1] ?? {})];
    },
    async lock(key, until) {
      // Only if the counter still exists: HSET on a missing key would create one without expiry.
      await redis.eval(
        "if redis.call('exists', KEYS[1]) == 1 then return redis.call('hset', KEYS[1], 'lockedUntil', ARGV[1]) end return 0",
        1,
        prefix + key,
        String(until.getTime()),
      );
    },
    async clear(key) {
      await redis.del(prefix + key);
    },
    async deleteExpired() {
      return 0; // Redis expires keys itself.
    },
  };
}

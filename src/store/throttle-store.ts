/**
 * Counters for throttling and rate limits, shared by every node: in the database by default, in Redis
 * when REDIS_URL is set. Never only in one process's memory, so limits hold across nodes and restarts.
 * The decisions are the core's (src/core/throttle.ts); a store only counts, atomically.
 */
import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import { isLockedAt, type CounterState } from '../core/throttle.js';
import { currentPipelineScope, write } from './pipeline.js';
import { prepared } from './prepared.js';
import type { DatabaseSchema } from './schema.js';

// Every sign-in reads counters (src/store/prepared.ts).
const counter = prepared(2, (db, key, now) => db.selectFrom('throttles').select(['count', 'locked_until']).where('key', '=', key).where('expires_at', '>', now));
const twoCounters = prepared(3, (db, first, second, now) =>
  db.selectFrom('throttles').select(['key', 'count', 'locked_until']).where('key', 'in', [first, second]).where('expires_at', '>', now),
);

/** A row with nothing counted and no lock is only an attempt's lease: no counter. */
function counterState(row: { count: number | string; locked_until: string | null } | undefined): CounterState | null {
  if (!row || (Number(row.count) === 0 && !row.locked_until)) return null;
  return { count: Number(row.count), lockedUntil: row.locked_until ? new Date(row.locked_until) : null };
}

/** The attempt lease on one counter: held by one attempt at a time, on every node. */
export interface Lease {
  key: string;
  owner: string;
}

export interface AttemptFailure {
  now: Date;
  /** How long the counter is kept after this failure. */
  expiresAt: Date;
  /** Every `threshold`-th failure locks: the lease is kept until the lock is written. */
  threshold: number;
  /** The lock for a count that reached a multiple of the threshold. */
  lockFor(count: number): Date;
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
  /**
   * One attempt in flight per counter (OWASP ASVS 5 V6.3.1, NIST SP 800-63B-4 §3.2.2: the failed-attempt
   * limit must hold when guesses arrive together). Takes the counter's lease until `until` if no other
   * attempt holds it, atomically, and returns the counter as it then stands (read under the lease, so
   * nothing else of this kind changes it until the attempt ends); null when another attempt holds it. A
   * lease whose holder died lapses at `until`.
   */
  acquire(key: string, now: Date, until: Date): Promise<{ lease: Lease; counter: CounterState | null } | null>;
  /**
   * `acquire`, then one unit of `budget` as `take` would reserve it — but only if the lease was granted
   * and its counter is not locked at `now`, so an attempt refused as busy or locked never holds a unit of
   * the budget, even for a moment. One round trip on PostgreSQL inside a pipelined scope (the take is
   * conditional in SQL on the lease the statement before it took); otherwise one after the other.
   */
  acquireWithBudget(
    key: string,
    now: Date,
    until: Date,
    budget: { key: string; limit: number; expiresAt: Date },
  ): Promise<{ held: { lease: Lease; counter: CounterState | null } | null; taken: boolean }>;
  /**
   * The attempt failed: adds one to its counter (returned) and ends the lease — after writing the lock,
   * when the count reached a multiple of the threshold, so no other attempt starts in between.
   */
  fail(lease: Lease, failure: AttemptFailure): Promise<number>;
  /** The attempt succeeded: the counter and its lease are gone. */
  succeed(lease: Lease): Promise<void>;
  /** The attempt ended with neither (refused before the work, or a result that does not count). */
  release(lease: Lease): Promise<void>;
  /**
   * Reserves one unit of a window's budget before the work it limits: adds one only while the count is
   * below `limit`, atomically, and says whether it did. A reservation for work that turns out not to
   * count (a right password against a per-address failure budget) is given back.
   */
  take(key: string, limit: number, now: Date, expiresAt: Date): Promise<boolean>;
  giveBack(key: string, now: Date): Promise<void>;
}

// Every sign-in runs these (src/store/prepared.ts).
const acquireLease = prepared(4, (db, key, owner, until, at) => {
  const lapsed = sql<boolean>`${sql.ref('throttles.expires_at')} <= ${at}`;
  // A counter past its expiry starts again; a live one keeps its count and lock, and lives at least
  // as long as the lease.
  return db
    .insertInto('throttles')
    .values({ key, count: 0, locked_until: null, expires_at: until, lease_owner: owner, lease_until: until })
    .onConflict((oc) =>
      oc
        .column('key')
        .doUpdateSet({
          count: sql<number>`case when ${lapsed} then 0 else ${sql.ref('throttles.count')} end`,
          locked_until: sql<string | null>`case when ${lapsed} then null else ${sql.ref('throttles.locked_until')} end`,
          expires_at: sql<string>`case when ${sql.ref('throttles.expires_at')} < ${until} then ${until} else ${sql.ref('throttles.expires_at')} end`,
          lease_owner: owner,
          lease_until: until,
        })
        .where((eb) => eb.or([eb('throttles.lease_owner', 'is', null), eb('throttles.lease_until', '<=', at), eb('throttles.expires_at', '<=', at)])),
    )
    .returning(['count', 'locked_until', 'lease_owner']);
});
const takeUnit = prepared(4, (db, key, limit, at, expiresAt) => {
  const lapsed = sql<boolean>`${sql.ref('throttles.expires_at')} <= ${at}`;
  return db
    .insertInto('throttles')
    .values({ key, count: 1, locked_until: null, expires_at: expiresAt })
    .onConflict((oc) =>
      oc
        .column('key')
        .doUpdateSet({
          count: sql<number>`case when ${lapsed} then 1 else ${sql.ref('throttles.count')} + 1 end`,
          locked_until: sql<string | null>`case when ${lapsed} then null else ${sql.ref('throttles.locked_until')} end`,
          expires_at: expiresAt,
        })
        .where((eb) => eb.or([eb('throttles.expires_at', '<=', at), eb('throttles.count', '<', limit as unknown as number)])),
    )
    .returning('count');
});
/** `takeUnit`, only while `owner` holds the lease on `leaseKey` and its counter is not locked. */
const takeUnitIfLeased = prepared(6, (db, key, limit, at, expiresAt, leaseKey, owner) => ({
  compile: () =>
    sql<{ count: number }>`
      insert into throttles (key, count, locked_until, expires_at)
      select ${key}, 1, null, ${expiresAt}
      where exists (
        select 1 from throttles l
        where l.key = ${leaseKey} and l.lease_owner = ${owner} and (l.locked_until is null or l.locked_until <= ${at})
      )
      on conflict (key) do update set
        count = case when throttles.expires_at <= ${at} then 1 else throttles.count + 1 end,
        locked_until = case when throttles.expires_at <= ${at} then null else throttles.locked_until end,
        expires_at = ${expiresAt}
      where throttles.expires_at <= ${at} or throttles.count < ${limit}
      returning count`.compile(db),
}));
const clearCounter = prepared(1, (db, key) => db.deleteFrom('throttles').where('key', '=', key));
const releaseLease = prepared(2, (db, key, owner) =>
  db.updateTable('throttles').set({ lease_owner: null, lease_until: null }).where('key', '=', key).where('lease_owner', '=', owner),
);
const giveBackUnit = prepared(2, (db, key, now) =>
  db
    .updateTable('throttles')
    .set((eb) => ({ count: eb('count', '-', 1) }))
    .where('key', '=', key)
    .where('count', '>', 0)
    .where('expires_at', '>', now),
);

function newOwner(): string {
  return randomUUID();
}

export function createSqlThrottleStore(db: Kysely<DatabaseSchema>): ThrottleStore {
  const acquireAs = async (key: string, owner: string, now: Date, until: Date) => {
    const [row] = (await acquireLease(db, key, owner, until.toISOString(), now.toISOString())).rows;
    if (!row || row.lease_owner !== owner) return null;
    return { lease: { key, owner }, counter: counterState(row) };
  };
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
    async acquire(key, now, until) {
      return acquireAs(key, newOwner(), now, until);
    },
    async acquireWithBudget(key, now, until, budget) {
      const owner = newOwner();
      const take = async () => {
        const { rows } = await takeUnitIfLeased(db, budget.key, budget.limit as unknown as string, now.toISOString(), budget.expiresAt.toISOString(), key, owner);
        return rows.length > 0 && budget.limit >= 1;
      };
      // In a pipelined scope both go on one connection, in this order, in one round trip: the take sees
      // the lease the acquire took. Elsewhere (two connections of a pool) the take waits for the acquire.
      if (currentPipelineScope()) {
        const [held, taken] = await Promise.all([acquireAs(key, owner, now, until), take()]);
        return { held, taken };
      }
      const held = await acquireAs(key, owner, now, until);
      return { held, taken: held && !isLockedAt(held.counter, now) ? await take() : false };
    },
    async fail(lease, failure) {
      const row = await db
        .insertInto('throttles')
        .values({ key: lease.key, count: 1, locked_until: null, expires_at: failure.expiresAt.toISOString() })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({
            count: sql<number>`${sql.ref('throttles.count')} + 1`,
            expires_at: failure.expiresAt.toISOString(),
            // Kept while a lock is due: it is written next, before anyone else may start.
            lease_owner: sql<string | null>`case when ${sql.ref('throttles.lease_owner')} = ${lease.owner} and (${sql.ref('throttles.count')} + 1) % ${failure.threshold} <> 0 then null else ${sql.ref('throttles.lease_owner')} end`,
          }),
        )
        .returning('count')
        .executeTakeFirstOrThrow();
      const count = Number(row.count);
      if (count % failure.threshold === 0) {
        await db
          .updateTable('throttles')
          .set({
            locked_until: failure.lockFor(count).toISOString(),
            lease_owner: sql<string | null>`case when ${sql.ref('lease_owner')} = ${lease.owner} then null else ${sql.ref('lease_owner')} end`,
          })
          .where('key', '=', lease.key)
          .execute();
      }
      return count;
    },
    // Nobody reads these back: they go alongside the request's other writes (src/store/pipeline.ts).
    async succeed(lease) {
      await write(db, async (on) => void (await clearCounter(on, lease.key)));
    },
    async release(lease) {
      await write(db, async (on) => void (await releaseLease(on, lease.key, lease.owner)));
    },
    async take(key, limit, now, expiresAt) {
      const [row] = (await takeUnit(db, key, limit as unknown as string, now.toISOString(), expiresAt.toISOString())).rows;
      return row !== undefined && limit >= 1;
    },
    async giveBack(key, now) {
      await write(db, async (on) => void (await giveBackUnit(on, key, now.toISOString())));
    },
  };
}

function redisCounter(fields: Record<string, string>): CounterState | null {
  if (!fields.count || (Number(fields.count) === 0 && !fields.lockedUntil)) return null;
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
    async acquire(key, now, until) {
      const owner = newOwner();
      const result = (await redis.eval(ACQUIRE, 1, prefix + key, owner, String(now.getTime()), String(until.getTime()))) as [string | null, string | null] | null;
      if (!result) return null;
      const [count, lockedUntil] = result;
      return { lease: { key, owner }, counter: redisCounter({ count: count ?? '0', ...(lockedUntil ? { lockedUntil } : {}) }) };
    },
    async acquireWithBudget(key, now, until, budget) {
      // Two keys, which a Redis cluster may hold in two slots: one script each, one after the other.
      const held = await this.acquire(key, now, until);
      return { held, taken: held && !isLockedAt(held.counter, now) ? await this.take(budget.key, budget.limit, now, budget.expiresAt) : false };
    },
    async fail(lease, failure) {
      const count = Number(await redis.eval(FAIL, 1, prefix + lease.key, lease.owner, String(failure.expiresAt.getTime()), String(failure.threshold)));
      if (count % failure.threshold === 0) {
        await redis.eval(LOCK_AND_RELEASE, 1, prefix + lease.key, lease.owner, String(failure.lockFor(count).getTime()));
      }
      return count;
    },
    async succeed(lease) {
      await redis.del(prefix + lease.key);
    },
    async release(lease) {
      await redis.eval(RELEASE, 1, prefix + lease.key, lease.owner);
    },
    async take(key, limit, _now, expiresAt) {
      return (await redis.eval(TAKE, 1, prefix + key, String(limit), String(expiresAt.getTime()))) === 1;
    },
    async giveBack(key) {
      await redis.eval(GIVE_BACK, 1, prefix + key);
    },
  };
}

// Each script touches one key, so each is atomic on its own (and a cluster slot holds it whole).
const ACQUIRE = `
local owner = redis.call('hget', KEYS[1], 'leaseOwner')
local untilMs = tonumber(redis.call('hget', KEYS[1], 'leaseUntil') or '0')
if owner and untilMs > tonumber(ARGV[2]) then return false end
redis.call('hset', KEYS[1], 'leaseOwner', ARGV[1], 'leaseUntil', ARGV[3])
if redis.call('hexists', KEYS[1], 'count') == 0 then redis.call('hset', KEYS[1], 'count', 0) end
local left = redis.call('pttl', KEYS[1])
if left < 0 or left < tonumber(ARGV[3]) - tonumber(ARGV[2]) then redis.call('pexpireat', KEYS[1], ARGV[3]) end
local fields = redis.call('hmget', KEYS[1], 'count', 'lockedUntil')
return { fields[1] or '0', fields[2] or false }
`;
const FAIL = `
local count = redis.call('hincrby', KEYS[1], 'count', 1)
redis.call('pexpireat', KEYS[1], ARGV[2])
if count % tonumber(ARGV[3]) ~= 0 and redis.call('hget', KEYS[1], 'leaseOwner') == ARGV[1] then redis.call('hdel', KEYS[1], 'leaseOwner', 'leaseUntil') end
return count
`;
const LOCK_AND_RELEASE = `
redis.call('hset', KEYS[1], 'lockedUntil', ARGV[2])
if redis.call('hget', KEYS[1], 'leaseOwner') == ARGV[1] then redis.call('hdel', KEYS[1], 'leaseOwner', 'leaseUntil') end
return 1
`;
const RELEASE = `
if redis.call('hget', KEYS[1], 'leaseOwner') == ARGV[1] then redis.call('hdel', KEYS[1], 'leaseOwner', 'leaseUntil') end
return 1
`;
const TAKE = `
local count = tonumber(redis.call('hget', KEYS[1], 'count') or '0')
if count >= tonumber(ARGV[1]) then return 0 end
redis.call('hincrby', KEYS[1], 'count', 1)
redis.call('pexpireat', KEYS[1], ARGV[2])
return 1
`;
const GIVE_BACK = `
local count = tonumber(redis.call('hget', KEYS[1], 'count') or '0')
if count > 0 then redis.call('hincrby', KEYS[1], 'count', -1) end
return 1
`;

/**
 * oidc-provider's storage (its `adapter` option; docs/oidc.md#storage): one adapter class for every
 * model, so any node can finish any flow.
 *
 * Everything goes to the `oidc_artefacts` table, keyed by (model, id), on SQLite or PostgreSQL. With
 * REDIS_URL, the short-lived, one-flow artefacts (`REDIS_MODELS`) go to Redis instead, which expires
 * them itself; what must outlive a Redis restart (sessions, grants, refresh tokens, clients) stays in
 * the database.
 *
 * Two things oidc-provider leaves to the adapter are made strict here:
 * - `consume` is a compare-and-set: only the first caller marks an artefact consumed. oidc-provider reads
 *   an authorization code, checks `consumed`, then consumes it; two token requests racing with one code
 *   would both pass the check. The loser gets `alreadyConsumed()` thrown (the server passes
 *   oidc-provider's InvalidGrant), so a code is redeemed once (RFC 6749 §4.1.2, §10.5).
 * - `revokeByGrantId` removes every artefact of the grant, whichever model's adapter it is called on and
 *   in both stores (oidc-provider calls it once per model, for codes, access and refresh tokens).
 */
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { prepared } from './prepared.js';
import { deferWrite } from './write-unit.js';
import type { DatabaseSchema } from './schema.js';

/**
 * Models kept in Redis when it is configured: each lives for one flow (minutes to an hour), is read on
 * nearly every protocol request, and losing it only makes a user or client start that flow again.
 * Session, Grant, RefreshToken, Client, InitialAccessToken and RegistrationAccessToken stay in the
 * database: they last days, and losing them would sign everyone out or break clients.
 */
export const REDIS_MODELS: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'BackchannelAuthenticationRequest',
  'ClientCredentials',
  'DeviceCode',
  'Interaction',
  'PushedAuthorizationRequest',
  'ReplayDetection',
]);

export interface OidcAdapterOptions {
  db: Kysely<DatabaseSchema>;
  /** When set, the models in REDIS_MODELS are kept here. */
  redis: Redis | null;
  clock: () => Date;
  /** Thrown by `consume` when the artefact was consumed already (or is gone): the request lost a race. */
  alreadyConsumed: () => Error;
  /** Redis key prefix (tests use their own). */
  redisPrefix?: string;
}

type Stored = AdapterPayload & { consumed?: number };

const epochSeconds = (date: Date): number => Math.floor(date.getTime() / 1000);

/** HSETNX would create a missing hash: mark consumed only if it exists and was not consumed yet. */
const CONSUME = `
if redis.call('exists', KEYS[1]) == 1 and redis.call('hsetnx', KEYS[1], 'consumed', ARGV[1]) == 1 then return 1 end
return 0`;

/** Adds a member to the grant's set and keeps the set alive as long as its longest-lived member. */
const INDEX_GRANT = `
redis.call('sadd', KEYS[1], ARGV[1])
local ttl = redis.call('pttl', KEYS[1])
if ttl >= 0 and ttl < tonumber(ARGV[2]) then redis.call('pexpire', KEYS[1], ARGV[2]) end
if ttl == -2 then redis.call('pexpire', KEYS[1], ARGV[2]) end
return 1`;

/**
 * The queries every token request runs (a refresh grant runs five of them), compiled once per database
 * (src/store/prepared.ts): building and compiling the same Kysely tree on each call was about a tenth of
 * a refresh grant's CPU (docs/performance.md#npm-run-benchoidc).
 */
const upsertArtefact = prepared(9, (db, model, id, payload, grantId, userCode, uid, accountId, clientId, expiresAt) =>
  db
    .insertInto('oidc_artefacts')
    .values({ model, id, payload, grant_id: grantId, user_code: userCode, uid, account_id: accountId, client_id: clientId, expires_at: expiresAt, consumed_at: null })
    // consumed_at is kept: saving an artefact again never makes it redeemable again.
    .onConflict((oc) =>
      oc.columns(['model', 'id']).doUpdateSet((eb) => ({
        payload: eb.ref('excluded.payload'),
        grant_id: eb.ref('excluded.grant_id'),
        user_code: eb.ref('excluded.user_code'),
        uid: eb.ref('excluded.uid'),
        account_id: eb.ref('excluded.account_id'),
        client_id: eb.ref('excluded.client_id'),
        expires_at: eb.ref('excluded.expires_at'),
      })),
    ),
);
/** A row of this model that has not expired: an expired row waits for `deleteExpiredOidcArtefacts`. */
const findArtefact = prepared(3, (db, model, id, now) =>
  db
    .selectFrom('oidc_artefacts')
    .select(['payload', 'consumed_at'])
    .where('model', '=', model)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .where('id', '=', id),
);
/** The compare-and-set: only a live artefact not consumed yet is marked. */
const consumeArtefact = prepared(3, (db, model, id, now) =>
  db
    .updateTable('oidc_artefacts')
    .set({ consumed_at: now })
    .where('model', '=', model)
    .where('id', '=', id)
    .where('consumed_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)])),
);
const destroyArtefact = prepared(2, (db, model, id) => db.deleteFrom('oidc_artefacts').where('model', '=', model).where('id', '=', id));

export class OidcAdapter implements Adapter {
  private readonly inRedis: boolean;
  private readonly prefix: string;

  constructor(
    private readonly model: string,
    private readonly options: OidcAdapterOptions,
  ) {
    this.inRedis = options.redis !== null && REDIS_MODELS.has(model);
    this.prefix = options.redisPrefix ?? 'portcullis:oidc:';
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const now = this.options.clock();
    const expiresAt = typeof expiresIn === 'number' ? new Date(now.getTime() + expiresIn * 1000) : null;
    const grantId = typeof payload.grantId === 'string' ? payload.grantId : null;
    const userCode = typeof payload.userCode === 'string' ? payload.userCode : null;
    const uid = typeof payload.uid === 'string' ? payload.uid : null;
    const accountId = typeof payload.accountId === 'string' ? payload.accountId : null;
    // Grants only (migration 0012): who uses which application, for the policy's application requirements.
    const clientId = this.model === 'Grant' && typeof payload.clientId === 'string' ? payload.clientId : null;
    if (this.inRedis) return this.upsertRedis(this.options.redis!, id, payload, expiresIn, grantId, userCode, uid);
    const values = [this.model, id, JSON.stringify(payload), grantId, userCode, uid, accountId, clientId, expiresAt?.toISOString() ?? null] as const;
    const write = async (db: Kysely<DatabaseSchema>) => void (await upsertArtefact(db, ...values));
    if (!deferWrite(this.options.db, write)) await write(this.options.db);
  }

  async find(id: string): Promise<Stored | undefined> {
    if (this.inRedis) return this.findRedis(this.key(id));
    const [row] = (await findArtefact(this.options.db, this.model, id, this.options.clock().toISOString())).rows;
    return row ? this.toStored(row) : undefined;
  }

  async findByUserCode(userCode: string): Promise<Stored | undefined> {
    if (this.inRedis) {
      const id = await this.options.redis!.get(this.userCodeKey(userCode));
      return id ? this.find(id) : undefined;
    }
    const row = await this.live().select(['payload', 'consumed_at']).where('user_code', '=', userCode).executeTakeFirst();
    return row ? this.toStored(row) : undefined;
  }

  async findByUid(uid: string): Promise<Stored | undefined> {
    if (this.inRedis) {
      const id = await this.options.redis!.get(this.uidKey(uid));
      return id ? this.find(id) : undefined;
    }
    const row = await this.live().select(['payload', 'consumed_at']).where('uid', '=', uid).executeTakeFirst();
    return row ? this.toStored(row) : undefined;
  }

  async consume(id: string): Promise<void> {
    const now = this.options.clock();
    if (this.inRedis) {
      const marked = Number(await this.options.redis!.eval(CONSUME, 1, this.key(id), String(epochSeconds(now))));
      if (marked !== 1) throw this.options.alreadyConsumed();
      return;
    }
    const consume = async (db: Kysely<DatabaseSchema>) => {
      const result = await consumeArtefact(db, this.model, id, now.toISOString());
      if (Number(result.numAffectedRows ?? 0) !== 1) throw this.options.alreadyConsumed();
    };
    // In a token request's unit (src/store/write-unit.ts) the compare-and-set runs with the writes it
    // allows: a lost race rolls them all back and the request is refused.
    if (!deferWrite(this.options.db, consume)) await consume(this.options.db);
  }

  async destroy(id: string): Promise<void> {
    if (this.inRedis) {
      await this.options.redis!.del(this.key(id));
      return;
    }
    await destroyArtefact(this.options.db, this.model, id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const { redis } = this.options;
    if (redis) {
      const grantKey = this.grantKey(grantId);
      const members = await redis.smembers(grantKey);
      await redis.del(grantKey, ...members);
    }
    await this.options.db.deleteFrom('oidc_artefacts').where('grant_id', '=', grantId).execute();
  }

  /** Rows of this model that have not expired: an expired row waits for `deleteExpiredOidcArtefacts`. */
  private live() {
    const now = this.options.clock().toISOString();
    return this.options.db
      .selectFrom('oidc_artefacts')
      .where('model', '=', this.model)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]));
  }

  private toStored(row: { payload: string; consumed_at: string | null }): Stored {
    const payload = JSON.parse(row.payload) as Stored;
    return row.consumed_at ? { ...payload, consumed: epochSeconds(new Date(row.consumed_at)) } : payload;
  }

  private async upsertRedis(
    redis: Redis,
    id: string,
    payload: AdapterPayload,
    expiresIn: number | undefined,
    grantId: string | null,
    userCode: string | null,
    uid: string | null,
  ): Promise<void> {
    const key = this.key(id);
    const ttlMs = typeof expiresIn === 'number' ? Math.max(1, expiresIn * 1000) : null;
    // HSET keeps a `consumed` field already there, as the database keeps consumed_at.
    const multi = redis.multi().hset(key, 'payload', JSON.stringify(payload));
    if (ttlMs) multi.pexpire(key, ttlMs);
    else multi.persist(key);
    if (userCode) {
      multi.set(this.userCodeKey(userCode), id);
      if (ttlMs) multi.pexpire(this.userCodeKey(userCode), ttlMs);
    }
    if (uid) {
      multi.set(this.uidKey(uid), id);
      if (ttlMs) multi.pexpire(this.uidKey(uid), ttlMs);
    }
    if (grantId) multi.eval(INDEX_GRANT, 1, this.grantKey(grantId), key, String(ttlMs ?? 14 * 24 * 3600 * 1000));
    const results = (await multi.exec()) ?? [];
    for (const [error] of results) if (error) throw error;
  }

  private async findRedis(key: string): Promise<Stored | undefined> {
    const fields = await this.options.redis!.hgetall(key);
    if (!fields.payload) return undefined;
    const payload = JSON.parse(fields.payload) as Stored;
    return fields.consumed ? { ...payload, consumed: Number(fields.consumed) } : payload;
  }

  private key(id: string): string {
    return `${this.prefix}${this.model}:${id}`;
  }
  private grantKey(grantId: string): string {
    return `${this.prefix}grant:${grantId}`;
  }
  private userCodeKey(userCode: string): string {
    return `${this.prefix}${this.model}:user-code:${userCode}`;
  }
  private uidKey(uid: string): string {
    return `${this.prefix}${this.model}:uid:${uid}`;
  }
}

/** The `adapter` option for oidc-provider: one OidcAdapter per model name. */
export function createOidcAdapterFactory(options: OidcAdapterOptions): (model: string) => OidcAdapter {
  return (model) => new OidcAdapter(model, options);
}

/** Housekeeping (src/app/housekeeping.ts): expired artefacts in the database; Redis expires its own. */
export async function deleteExpiredOidcArtefacts(db: Kysely<DatabaseSchema>, now: Date): Promise<number> {
  const result = await db.deleteFrom('oidc_artefacts').where('expires_at', '<=', now.toISOString()).executeTakeFirst();
  return Number(result.numDeletedRows);
}

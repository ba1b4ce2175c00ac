/**
 * Server-side sessions (OWASP ASVS 5 V7): a random 256-bit token in the cookie, its SHA-256 in the
 * database, a new token at every sign-in, idle and absolute timeouts decided by the core.
 */
import type { MethodUse } from '../core/methods.js';
import { assessSession, sessionExpiry, type SessionRestriction } from '../core/session.js';
import { hashToken, randomToken } from '../crypto/tokens.js';
import type { SessionRow, UserRow } from '../store/schema.js';
import type { AppContext } from './context.js';

export interface ActiveSession {
  id: string;
  user: UserRow;
  createdAt: Date;
  methods: MethodUse[];
  restricted: SessionRestriction | null;
  /** Until when this session may register a first second method without MFA (null: not allowed). */
  registrationGrantUntil: Date | null;
}

export interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
  /** A coarse location (a country or city) when the proxy in front supplies one (LOCATION_HEADER). */
  location?: string | null;
}

/** How long after the password a user with no second method may register their first without MFA. */
export const REGISTRATION_GRANT_SECONDS = 10 * 60;

export async function startSession(
  ctx: AppContext,
  input: {
    userId: string;
    methods: MethodUse[];
    restricted: SessionRestriction | null;
    client: ClientInfo;
    registrationGrant?: boolean;
    /** Keep an earlier sign-in's start (a step-up renews the id, not the absolute timeout). */
    createdAt?: Date;
  },
): Promise<string> {
  const token = randomToken(32);
  const now = ctx.clock();
  const createdAt = input.createdAt ?? now;
  await ctx.store.sessions.insert({
    id: hashToken(token),
    userId: input.userId,
    now,
    createdAt,
    expiresAt: sessionExpiry({ createdAt, lastSeenAt: now }, ctx.config.sessions),
    methods: input.methods,
    restricted: input.restricted,
    ip: input.client.ip,
    userAgent: input.client.userAgent,
    registrationGrantUntil: input.registrationGrant ? new Date(now.getTime() + REGISTRATION_GRANT_SECONDS * 1000) : null,
  });
  return token;
}

/**
 * After a step-up: the session gets a new id (OWASP ASVS 5 V7.2.4: a new session token on every
 * authentication) and the second factor joins its methods; the absolute timeout still runs from the
 * original sign-in.
 */
export async function renewSession(
  ctx: AppContext,
  session: ActiveSession,
  methods: MethodUse[],
  client: ClientInfo,
  options: { restricted?: SessionRestriction | null } = {},
): Promise<string> {
  const token = await startSession(ctx, {
    userId: session.user.id,
    methods,
    restricted: options.restricted === undefined ? session.restricted : options.restricted,
    client,
    createdAt: session.createdAt,
  });
  await ctx.store.sessions.delete(session.id);
  return token;
}

/** The last time a second factor (anything but the password) was used in this session, if ever. */
export function lastSecondFactorAt(session: Pick<ActiveSession, 'methods'>): Date | null {
  const times = session.methods.filter((m) => m.method !== 'password').map((m) => Date.parse(m.at));
  return times.length ? new Date(Math.max(...times)) : null;
}

function snapshot(row: SessionRow) {
  return {
    createdAt: new Date(row.created_at),
    lastSeenAt: new Date(row.last_seen_at),
    methods: JSON.parse(row.methods) as MethodUse[],
    restricted: row.restricted as SessionRestriction | null,
    registrationGrantUntil: row.registration_grant_until ? new Date(row.registration_grant_until) : null,
  };
}

/** The live session for a cookie token, or null; an expired session is deleted as it is found. */
export async function resolveSession(ctx: AppContext, token: string): Promise<ActiveSession | null> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
  const id = hashToken(token);
  const row = await ctx.store.sessions.find(id);
  if (!row) return null;
  const now = ctx.clock();
  const session = snapshot(row);
  const assessment = assessSession(session, now, ctx.config.sessions);
  if (!assessment.valid) {
    await ctx.store.sessions.delete(id);
    return null;
  }
  const user = await ctx.store.users.findById(row.user_id);
  if (!user || user.status !== 'active') {
    await ctx.store.sessions.delete(id);
    return null;
  }
  if (assessment.touch) {
    await ctx.store.sessions.touch(id, now, sessionExpiry({ createdAt: session.createdAt, lastSeenAt: now }, ctx.config.sessions));
  }
  return {
    id,
    user,
    createdAt: session.createdAt,
    methods: session.methods,
    restricted: session.restricted,
    registrationGrantUntil: session.registrationGrantUntil,
  };
}

export async function endSession(ctx: AppContext, session: ActiveSession, client: ClientInfo): Promise<void> {
  await ctx.store.sessions.delete(session.id);
  await ctx.store.audit.append({
    type: 'sign-out',
    at: ctx.clock(),
    actor: { kind: 'user', userId: session.user.id },
    subjectUserId: session.user.id,
    ip: client.ip,
    details: {},
  });
}

/** Ends a session without a sign-out of its own (a new sign-in in the same browser replaces it). */
export async function dropSession(ctx: AppContext, sessionId: string): Promise<void> {
  await ctx.store.sessions.delete(sessionId);
}

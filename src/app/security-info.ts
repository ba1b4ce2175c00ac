/**
 * Security info use cases: list a user's methods, add one (through its strategy), make one the
 * default, delete one, change the password, sign out everywhere. Every change is audited and emailed;
 * every change needs a recent second factor (or, for a first method, the grant right after the password).
 */
import { describeDuration } from '../core/duration.js';
import { PortcullisError } from '../core/errors.js';
import { labelMethod, methodDefinitions, orderMethods, type SecondFactorKind } from '../core/methods/registry.js';
import { decideChangeAccess, type ChangeAccess } from '../core/security-info.js';
import type { CodeVerification } from '../core/sign-in/flow.js';
import type { MethodRow } from '../store/schema.js';
import type { AppContext } from './context.js';
import { strategyFor, strategyOf } from './methods/index.js';
import type { EnrolmentStart } from './methods/strategy.js';
import { notifyUser } from './notifications.js';
import { assertAcceptablePassword } from './passwords.js';
import { assertMayBeDefault, assertMayRegister, signInPolicy } from './policy.js';
import { lastSecondFactorAt, renewSession, type ActiveSession, type ClientInfo } from './sessions.js';
import { beginPasswordAttempt } from './sign-in-attempts.js';
import { removeMethod } from './method-removal.js';
import { signOutOfApplications } from './oidc/sign-out.js';
import type { MethodUse } from '../core/methods.js';

export interface MethodListing {
  id: string;
  kind: SecondFactorKind;
  name: string;
  detail: string;
  addedAt: Date;
  lastUsedAt: Date | null;
  isDefault: boolean;
}

export function describeMethod(method: MethodRow): string {
  const strategy = strategyOf(method);
  return labelMethod(strategy.definition.name, strategy.detail(method));
}

export async function listMethods(ctx: AppContext, userId: string, defaultMethodId: string | null): Promise<MethodListing[]> {
  const rows = await ctx.store.methods.activeForUser(userId);
  const listings = rows.flatMap((row) => {
    const strategy = strategyFor(row.kind);
    if (!strategy) return [];
    return [
      {
        id: row.id,
        kind: strategy.definition.kind,
        name: strategy.definition.name,
        detail: strategy.detail(row),
        addedAt: new Date(row.activated_at ?? row.created_at),
        lastUsedAt: row.last_used_at ? new Date(row.last_used_at) : null,
        isDefault: false,
      },
    ];
  });
  // The effective default: the chosen one, or the one sign-in would prompt (system-preferred).
  const ordered = orderMethods(listings, defaultMethodId);
  const effective = ordered[0]?.id ?? null;
  return listings.map((l) => ({ ...l, isDefault: l.id === effective }));
}

export async function changeAccess(ctx: AppContext, session: ActiveSession, action: 'add-method' | 'change'): Promise<ChangeAccess> {
  return decideChangeAccess({
    action,
    lastSecondFactorAt: lastSecondFactorAt(session),
    activeMethodCount: await ctx.store.methods.countActive(session.user.id),
    registrationGrantUntil: session.registrationGrantUntil,
    now: ctx.clock(),
    freshnessSeconds: ctx.config.secondFactors.freshnessSeconds,
  });
}

async function requireAccess(ctx: AppContext, session: ActiveSession, action: 'add-method' | 'change'): Promise<ChangeAccess & { allowed: true }> {
  const access = await changeAccess(ctx, session, action);
  if (!access.allowed) throw new PortcullisError('mfa-required');
  return access;
}

export async function beginEnrolment(
  ctx: AppContext,
  session: ActiveSession,
  kind: string,
  form: Record<string, string>,
  client: ClientInfo & { ip: string },
): Promise<EnrolmentStart> {
  await requireAccess(ctx, session, 'add-method');
  const strategy = strategyFor(kind);
  if (!strategy?.beginEnrolment) throw new PortcullisError('method-not-found');
  await assertMayRegister(ctx, session.user, session.restricted !== null, strategy.definition.kind);
  if ((await ctx.store.methods.countActive(session.user.id, kind)) >= strategy.definition.maxPerUser) {
    throw new PortcullisError('method-limit', { max: strategy.definition.maxPerUser });
  }
  return strategy.beginEnrolment(ctx, session.user, form, { purpose: 'enrolment', binding: 'enrolment', ip: client.ip });
}

export async function pendingMethod(ctx: AppContext, session: ActiveSession, methodId: string): Promise<MethodRow> {
  const method = await ctx.store.methods.findForUser(session.user.id, methodId);
  if (!method || method.status !== 'pending' || !method.pending_expires_at || Date.parse(method.pending_expires_at) <= ctx.clock().getTime()) {
    throw new PortcullisError('enrolment-expired');
  }
  return method;
}

export async function finishEnrolment(
  ctx: AppContext,
  session: ActiveSession,
  methodId: string,
  challengeId: string | null,
  code: string,
  client: ClientInfo & { ip: string },
): Promise<CodeVerification & { makeDefaultOffer?: boolean }> {
  const access = await requireAccess(ctx, session, 'add-method');
  const method = await pendingMethod(ctx, session, methodId);
  const strategy = strategyOf(method);
  if (!strategy.finishEnrolment) throw new PortcullisError('enrolment-expired');
  const withoutSecondFactor = access.via === 'registration-grant';
  // Activation, the end of the registration grant, the audit event and the email in one transaction
  // (issue #17): a crash leaves either an active method with its event and notice, or none of them —
  // never a method in use that the audit log and its owner were not told of.
  return ctx.store.transaction(async (repos, trx) => {
    const inTransaction: AppContext = { ...ctx, store: { ...ctx.store, ...repos } };
    const result = await strategy.finishEnrolment!(inTransaction, session.user, method, challengeId, code, { purpose: 'enrolment', binding: `enrolment:${method.id}`, ip: client.ip });
    if (!result.ok) return result;
    const now = ctx.clock();
    if (withoutSecondFactor) await repos.sessions.endRegistrationGrant(session.id);
    await repos.audit.append({
      type: 'method.added',
      at: now,
      actor: { kind: 'user', userId: session.user.id },
      subjectUserId: session.user.id,
      ip: client.ip,
      details: { methodId: method.id, kind: method.kind, via: access.via },
    });
    await notifyUser(ctx, session.user, { kind: 'method-added', method: describeMethod(method), withoutSecondFactor }, trx);
    return { ok: true };
  });
}

export async function setDefaultMethod(ctx: AppContext, session: ActiveSession, methodId: string, client: ClientInfo): Promise<MethodRow> {
  await requireAccess(ctx, session, 'change');
  const method = await ctx.store.methods.findForUser(session.user.id, methodId);
  if (!method || method.status !== 'active' || !strategyFor(method.kind)) throw new PortcullisError('method-choice-missing');
  const strategy = strategyOf(method);
  await assertMayBeDefault(ctx, session.user, { id: method.id, kind: strategy.definition.kind, detail: strategy.detail(method) }, describeMethod(method));
  const now = ctx.clock();
  // The change and its audit event together, as for a deletion.
  await ctx.store.transaction(async (repos) => {
    await repos.users.setDefaultMethod(session.user.id, method.id, now);
    await repos.audit.append({
      type: 'method.default-changed',
      at: now,
      actor: { kind: 'user', userId: session.user.id },
      subjectUserId: session.user.id,
      ip: client.ip,
      details: { methodId: method.id, kind: method.kind },
    });
  });
  await notifyUser(ctx, session.user, { kind: 'default-changed', method: describeMethod(method) });
  return method;
}

export async function deleteMethod(ctx: AppContext, session: ActiveSession, methodId: string, client: ClientInfo): Promise<MethodRow> {
  await requireAccess(ctx, session, 'change');
  const method = await ctx.store.methods.findForUser(session.user.id, methodId);
  if (!method || method.status !== 'active') throw new PortcullisError('method-not-found');
  await removeMethod(ctx, session.user, method, { label: describeMethod(method), ip: client.ip });
  return method;
}

/** Current password and a recent second factor; every other session ends (OWASP ASVS 5 V7.4.3). */
export async function changePassword(
  ctx: AppContext,
  session: ActiveSession,
  input: { current: string; next: string },
  client: ClientInfo & { ip: string },
): Promise<void> {
  await requireAccess(ctx, session, 'change');
  // The current password is a password attempt like the sign-in's: the same reservation, the same
  // lockout, and a wrong one is audited (issue #12: guessing here must not be free).
  const started = await beginPasswordAttempt(ctx, { email: session.user.email_normalised, ip: client.ip });
  if (!started.granted) {
    const { reason, retryAfterSeconds } = started.throttle;
    throw new PortcullisError(reason === 'attempt-in-progress' ? 'attempt-in-progress' : 'sign-in-throttled', { wait: describeDuration(retryAfterSeconds) });
  }
  const { attempt } = started;
  try {
    const hash = session.user.password_hash;
    let correct = false;
    if (hash) correct = await ctx.hasher.verify(hash, input.current);
    else await ctx.hasher.verifyDummy(input.current);
    ctx.metrics.passwordVerifications.inc();
    if (!correct) {
      await attempt.fail(session.user.id);
      await ctx.store.audit.append({
        type: 'user.password-change-refused',
        at: ctx.clock(),
        actor: { kind: 'user', userId: session.user.id },
        subjectUserId: session.user.id,
        ip: client.ip,
        details: { reason: 'password-incorrect' },
      });
      throw new PortcullisError('current-password-incorrect');
    }
    await attempt.succeed();
  } finally {
    await attempt.end();
  }
  assertAcceptablePassword(input.next, ctx.config, session.user.email);
  const nextHash = await ctx.hasher.hash(input.next);
  const now = ctx.clock();
  const ended = await ctx.store.transaction(async (repos) => {
    await repos.users.setPasswordHash(session.user.id, nextHash, now, true);
    const count = await repos.sessions.deleteOthersForUser(session.user.id, session.id);
    await repos.audit.append({
      type: 'user.password-changed',
      at: now,
      actor: { kind: 'user', userId: session.user.id },
      subjectUserId: session.user.id,
      ip: client.ip,
      details: { sessionsEnded: count },
    });
    return count;
  });
  ctx.logger.info({ userId: session.user.id, sessionsEnded: ended }, 'password changed');
  await notifyUser(ctx, session.user, { kind: 'password-changed' });
}

/**
 * Ends every session, this one included. It needs no recent second factor: it only takes access away,
 * and someone who fears their account is in use elsewhere must be able to do it at once.
 */
export async function signOutEverywhere(ctx: AppContext, session: ActiveSession, client: ClientInfo): Promise<number> {
  const now = ctx.clock();
  const ended = await ctx.store.sessions.deleteAllForUser(session.user.id);
  // Applications too (docs/oidc.md#signing-out-of-applications); the back-channel logouts finish after the response.
  void (await signOutOfApplications(ctx, session.user.id, 'signed-out-everywhere')).deliveries;
  await ctx.store.audit.append({
    type: 'sessions.ended-everywhere',
    at: now,
    actor: { kind: 'user', userId: session.user.id },
    subjectUserId: session.user.id,
    ip: client.ip,
    details: { sessionsEnded: ended },
  });
  await notifyUser(ctx, session.user, { kind: 'signed-out-everywhere' });
  return ended;
}

export function methodName(kind: SecondFactorKind): string {
  return methodDefinitions[kind].name;
}

/**
 * A new method was just proved in this session (its first code, or the phone's approval of the test
 * request): the session gets a new id with the method among its methods and, when it was restricted
 * to registering and the policy now lets the person sign in fully, the restriction is lifted — as
 * registering during sign-in completes the sign-in in Microsoft Entra.
 */
export async function renewAfterRegistration(ctx: AppContext, session: ActiveSession, proved: MethodUse, client: ClientInfo): Promise<string> {
  let restricted = session.restricted;
  if (restricted) {
    const user = (await ctx.store.users.findById(session.user.id)) ?? session.user;
    const allowed = await signInPolicy(ctx, user);
    if (allowed.policy.session === 'full') {
      restricted = null;
      await ctx.store.audit.append({
        type: 'session.restriction-lifted',
        at: ctx.clock(),
        actor: { kind: 'user', userId: user.id },
        subjectUserId: user.id,
        ip: client.ip,
        details: { method: proved.method },
      });
    }
  }
  return renewSession(ctx, session, [...session.methods, proved], client, { restricted });
}

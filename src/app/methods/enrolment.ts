/**
 * Setting up a method, whichever it is: the access it needs (a second factor in the last 10 minutes,
 * or the registration grant right after the password for a first method), the policy's say, the
 * quota, and the activation with its audit event and email in one transaction. Each unit's set-up
 * steps (src/app/methods/<unit>/) call these with their own strategy.
 */
import { PortcullisError } from '../../core/errors.js';
import { labelMethod } from '../../core/methods/registry.js';
import { decideChangeAccess, type ChangeAccess } from '../../core/security-info.js';
import type { CodeVerification } from '../../core/sign-in/flow.js';
import type { MethodRow } from '../../store/schema.js';
import type { AppContext } from '../context.js';
import { notifyUser } from '../notifications.js';
import { assertMayRegister } from '../policy.js';
import { lastSecondFactorAt, type ActiveSession, type ClientInfo } from '../sessions.js';
import type { ChallengeResponse, EnrolmentStart, MethodStrategy } from './strategy.js';

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

export async function requireAccess(ctx: AppContext, session: ActiveSession, action: 'add-method' | 'change'): Promise<ChangeAccess & { allowed: true }> {
  const access = await changeAccess(ctx, session, action);
  if (!access.allowed) throw new PortcullisError('mfa-required');
  return access;
}

export async function beginEnrolment(
  ctx: AppContext,
  session: ActiveSession,
  strategy: MethodStrategy,
  form: Record<string, string>,
  client: ClientInfo & { ip: string },
): Promise<EnrolmentStart> {
  await requireAccess(ctx, session, 'add-method');
  if (!strategy.beginEnrolment) throw new PortcullisError('method-not-found');
  await assertMayRegister(ctx, session.user, session.restricted !== null, strategy.definition.kind);
  const kind = strategy.definition.kind;
  if (!strategy.replacesExisting && (await ctx.store.methods.countActive(session.user.id, kind)) >= strategy.definition.maxPerUser) {
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
  strategy: MethodStrategy,
  methodId: string,
  challengeId: string | null,
  response: ChallengeResponse,
  client: ClientInfo & { ip: string },
): Promise<CodeVerification> {
  const access = await requireAccess(ctx, session, 'add-method');
  const method = await pendingMethod(ctx, session, methodId);
  if (method.kind !== strategy.definition.kind || !strategy.finishEnrolment) throw new PortcullisError('enrolment-expired');
  const withoutSecondFactor = access.via === 'registration-grant';
  // Activation, the end of the registration grant, the audit event and the email in one transaction
  // (issue #17): a crash leaves either an active method with its event and notice, or none of them —
  // never a method in use that the audit log and its owner were not told of.
  return ctx.store.transaction(async (repos, trx) => {
    const inTransaction: AppContext = { ...ctx, store: { ...ctx.store, ...repos } };
    const result = await strategy.finishEnrolment!(inTransaction, session.user, method, challengeId, response, { purpose: 'enrolment', binding: `enrolment:${method.id}`, ip: client.ip });
    if (!result.ok) return result;
    const now = ctx.clock();
    if (withoutSecondFactor) await repos.sessions.endRegistrationGrant(session.id);
    // A new set replaces the old one (recovery codes): the old stops working in the same transaction.
    if (strategy.replacesExisting) {
      for (const old of await repos.methods.activeForUser(session.user.id)) {
        if (old.kind === method.kind && old.id !== method.id) await repos.methods.delete(session.user.id, old.id);
      }
    }
    await repos.audit.append({
      type: 'method.added',
      at: now,
      actor: { kind: 'user', userId: session.user.id },
      subjectUserId: session.user.id,
      ip: client.ip,
      details: { methodId: method.id, kind: method.kind, via: access.via },
    });
    await notifyUser(ctx, session.user, { kind: 'method-added', method: labelMethod(strategy.definition.name, strategy.detail(method)), withoutSecondFactor }, trx);
    return { ok: true };
  });
}

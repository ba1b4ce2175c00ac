/**
 * Drives the core's sign-in state machine: loads and saves the flow, performs the effects the reducer
 * asks for (verify a password, count a failure, write audit events) and feeds their results back in.
 * Shared by the sign-in pages and, later, the OpenID Connect interaction.
 */
import { reduceSignIn, type SignInEffect, type SignInError, type SignInEvent, type SignInState } from '../core/sign-in/flow.js';
import { accountCounterLifetimeSeconds, assessSignInThrottle, ipWindow, lockoutAfterFailure } from '../core/throttle.js';
import { hashToken, hmac, randomToken } from '../crypto/tokens.js';
import type { AppContext } from './context.js';
import type { ClientInfo } from './sessions.js';

/** How long a sign-in may take from the email step to the last step. */
export const SIGN_IN_FLOW_SECONDS = 15 * 60;

export interface SignInOutcome {
  state: SignInState;
  error: SignInError | null;
}

function emailKey(ctx: AppContext, email: string): string {
  return `sign-in:email:${hmac(ctx.keys.lookupHash, email)}`;
}

function ipKey(ctx: AppContext, ip: string, now: Date): string {
  return `sign-in:ip:${ip}:${ipWindow(now, ctx.config.signIn).start.getTime()}`;
}

export async function createSignInFlow(ctx: AppContext, state: SignInState): Promise<{ token: string; state: SignInState }> {
  const token = randomToken(32);
  const now = ctx.clock();
  await ctx.store.signInFlows.insert(hashToken(token), state, now, new Date(now.getTime() + SIGN_IN_FLOW_SECONDS * 1000));
  return { token, state };
}

export async function loadSignInFlow(ctx: AppContext, token: string | undefined): Promise<SignInState | undefined> {
  if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
  return ctx.store.signInFlows.find(hashToken(token), ctx.clock());
}

export async function finishSignInFlow(ctx: AppContext, token: string): Promise<void> {
  await ctx.store.signInFlows.delete(hashToken(token));
}

export async function assessThrottle(ctx: AppContext, email: string, ip: string, now: Date) {
  const [account, address] = await Promise.all([ctx.throttles.get(emailKey(ctx, email), now), ctx.throttles.get(ipKey(ctx, ip, now), now)]);
  return assessSignInThrottle(account, address, now, ctx.config.signIn);
}

/**
 * Applies one event to the flow named by `token`, performing effects until none is left, and saves the
 * new state. The password, when there is one, lives only in this call.
 */
export async function advanceSignIn(
  ctx: AppContext,
  token: string,
  state: SignInState,
  event: SignInEvent,
  client: ClientInfo & { ip: string },
  password?: string,
): Promise<SignInOutcome> {
  const now = ctx.clock();
  let result = reduceSignIn(state, event, now);
  let error = result.error;
  const pending: SignInEffect[] = [...result.effects];
  let verifiedHash: { userId: string; hash: string } | null = null;

  while (pending.length) {
    const effect = pending.shift()!;
    switch (effect.type) {
      case 'verify-password': {
        const user = await ctx.store.users.findByEmail(effect.email);
        let correct = false;
        if (user?.password_hash && password !== undefined) {
          correct = await ctx.hasher.verify(user.password_hash, password);
          if (correct) verifiedHash = { userId: user.id, hash: user.password_hash };
        } else {
          await ctx.hasher.verifyDummy(password ?? '');
        }
        ctx.metrics.passwordVerifications.inc();
        const next = reduceSignIn(
          result.state,
          {
            type: 'password-verified',
            account: user ? { id: user.id, email: user.email, status: user.status, hasPassword: user.password_hash !== null } : null,
            passwordCorrect: correct,
            needsRehash: correct && user?.password_hash ? ctx.hasher.needsRehash(user.password_hash) : false,
          },
          now,
        );
        result = next;
        error = next.error;
        pending.push(...next.effects);
        break;
      }
      case 'record-password-failure': {
        const key = emailKey(ctx, effect.email);
        const lifetime = accountCounterLifetimeSeconds(ctx.config.signIn);
        const failures = await ctx.throttles.increment(key, now, new Date(now.getTime() + lifetime * 1000));
        await ctx.throttles.increment(ipKey(ctx, client.ip, now), now, ipWindow(now, ctx.config.signIn).end);
        const lockout = lockoutAfterFailure(failures, now, ctx.config.signIn);
        if (lockout) {
          await ctx.throttles.lock(key, lockout.lockedUntil);
          ctx.metrics.lockouts.inc();
          const user = await ctx.store.users.findByEmail(effect.email);
          ctx.logger.warn(
            { event: 'sign-in.locked-out', userId: user?.id ?? null, ip: client.ip, lockoutNumber: lockout.lockoutNumber, seconds: lockout.seconds },
            'sign-in locked after repeated failures',
          );
          await ctx.store.audit.append({
            type: 'sign-in.locked-out',
            at: now,
            actor: { kind: 'system' },
            subjectUserId: user?.id ?? null,
            ip: client.ip,
            details: { email: effect.email, failures, lockoutNumber: lockout.lockoutNumber, until: lockout.lockedUntil.toISOString() },
          });
        }
        break;
      }
      case 'clear-password-failures':
        await ctx.throttles.clear(emailKey(ctx, effect.email));
        break;
      case 'rehash-password':
        if (password !== undefined && verifiedHash?.userId === effect.userId) {
          const next = await ctx.hasher.hash(password);
          await ctx.store.users.replacePasswordHash(effect.userId, verifiedHash.hash, next);
          ctx.logger.info({ userId: effect.userId }, 'password hash upgraded to the current parameters');
        }
        break;
      case 'audit':
        await ctx.store.audit.append({ ...effect.event, ip: client.ip });
        break;
      case 'count-sign-in':
        ctx.metrics.signIns.inc({ outcome: effect.reason === 'success' ? 'success' : 'failure', reason: effect.reason });
        break;
    }
  }

  if (result.state.step !== 'complete' && result.state !== state) {
    await ctx.store.signInFlows.update(hashToken(token), result.state);
  }
  return { state: result.state, error };
}

/**
 * "Forgot your password?": self-service reset that never bypasses MFA (NIST SP 800-63B §6.1.2.3 allows
 * a reset only with the remaining factors). A code goes to the user's mailbox, then one of their second
 * methods is checked on the same pages as sign-in, then a new password (blocklist applies) ends every
 * session. An unknown address gets the same pages and nearly the same work (a challenge is made whose
 * code is never sent, so no code satisfies it; only the queued email is missing); requests are limited
 * per address and per client.
 */
import { isValidEmail, normaliseEmail } from '../core/email.js';
import { PortcullisError } from '../core/errors.js';
import { describeDuration } from '../core/duration.js';
import type { SignInState } from '../core/sign-in/flow.js';
import { hashToken, hmac } from '../crypto/tokens.js';
import type { AppContext } from './context.js';
import { createCodeChallenge, verifyCodeChallenge } from './methods/codes.js';
import { notifyUser } from './notifications.js';
import { assertAcceptablePassword } from './passwords.js';
import type { ClientInfo } from './sessions.js';
import { signInPolicy, stepUpOptions } from './policy.js';
import { advanceSignIn, createSignInFlow, flowBinding, type SignInOutcome } from './sign-in.js';

async function checkResetQuota(ctx: AppContext, email: string, ip: string): Promise<void> {
  const now = ctx.clock();
  const hour = Math.floor(now.getTime() / 3_600_000);
  const end = new Date((hour + 1) * 3_600_000);
  const wait = describeDuration(Math.ceil((end.getTime() - now.getTime()) / 1000));
  const perEmail = await ctx.throttles.increment(`reset:email:${hmac(ctx.keys.lookupHash, email)}:${hour}`, now, end);
  const perAddress = await ctx.throttles.increment(`reset:address:${ip}:${hour}`, now, end);
  if (perEmail > ctx.config.passwordReset.perEmailPerHour || perAddress > ctx.config.passwordReset.perAddressPerHour) {
    throw new PortcullisError('reset-throttled', { wait });
  }
}

/**
 * Starts a reset for an address: returns the new flow's cookie token. Throws for a malformed address or
 * when the request limits are reached — the same for every address, known or not.
 */
export async function requestPasswordReset(ctx: AppContext, emailTyped: string, client: ClientInfo & { ip: string }, returnTo: string): Promise<{ token: string }> {
  const typed = emailTyped.trim();
  if (typed === '') throw new PortcullisError('email-missing');
  if (!isValidEmail(typed)) throw new PortcullisError('email-invalid');
  const email = normaliseEmail(typed);
  await checkResetQuota(ctx, email, client.ip);
  const user = await ctx.store.users.findByEmail(email);
  const active = user && user.status === 'active' ? user : null;

  // The flow is made first so the challenge can be bound to it.
  const placeholder: SignInState = { step: 'reset-email-code', email, challengeId: '', returnTo };
  const { token } = await createSignInFlow(ctx, placeholder);
  const { challengeId, code } = await createCodeChallenge(ctx, {
    userId: active?.id ?? null,
    methodId: null,
    kind: 'email',
    context: { purpose: 'reset', binding: flowBinding(token), ip: client.ip },
  });
  if (active) {
    // Its own message, as the only email that carries a code (security notices never do).
    await ctx.delivery.enqueue({
      channel: 'email',
      to: active.email,
      purpose: 'password-reset-code',
      subject: `Your ${ctx.config.organisationName} password reset code`,
      text: [
        `Dear ${active.display_name},`,
        '',
        `Your code to reset your ${ctx.config.organisationName} password is ${code}`,
        '',
        'It expires in 10 minutes. Do not share it with anyone: nobody from the helpdesk will ever ask for it.',
        '',
        'If you did not ask to reset your password, you do not need to do anything. Your password has not been changed.',
      ].join('\n'),
      code,
    });
  }
  await ctx.store.signInFlows.update(hashToken(token), { ...placeholder, challengeId });
  await ctx.store.audit.append({
    type: 'user.password-reset-requested',
    at: ctx.clock(),
    actor: { kind: 'anonymous' },
    subjectUserId: active?.id ?? null,
    ip: client.ip,
    details: { email, accountFound: Boolean(active) },
  });
  return { token };
}

/** Checks the emailed code; when right, moves the flow to the second factor (and starts its challenge). */
export async function verifyResetEmailCode(
  ctx: AppContext,
  token: string,
  state: Extract<SignInState, { step: 'reset-email-code' }>,
  code: string,
  client: ClientInfo & { ip: string },
): Promise<SignInOutcome> {
  if (code.trim() === '') return { state, error: { code: 'code-missing', params: {}, field: 'code' } };
  const result = await verifyCodeChallenge(ctx, state.challengeId, code, { purpose: 'reset', binding: flowBinding(token), ip: client.ip });
  let account = null;
  if (result.ok) {
    const user = await ctx.store.users.findByEmail(state.email);
    if (user && user.status === 'active') {
      account = { id: user.id, options: stepUpOptions(await signInPolicy(ctx, user), false), defaultMethodId: user.default_method_id };
    }
  }
  return advanceSignIn(ctx, { token, state, event: { type: 'reset-email-code-verified', result, account }, client });
}

/** Sets the new password after both factors: every session ends, and the user is told by email. */
export async function completePasswordReset(
  ctx: AppContext,
  token: string,
  state: Extract<SignInState, { step: 'reset-new-password' }>,
  password: string,
  client: ClientInfo & { ip: string },
): Promise<void> {
  const user = await ctx.store.users.findById(state.userId);
  if (!user || user.status !== 'active') throw new PortcullisError('sign-in-expired');
  assertAcceptablePassword(password, ctx.config, user.email);
  const hash = await ctx.hasher.hash(password);
  const now = ctx.clock();
  await ctx.store.transaction(async (repos) => {
    await repos.users.setPasswordHash(user.id, hash, now, true);
    const ended = await repos.sessions.deleteAllForUser(user.id);
    await repos.signInFlows.delete(hashToken(token));
    await repos.audit.append({
      type: 'user.password-reset',
      at: now,
      actor: { kind: 'user', userId: user.id },
      subjectUserId: user.id,
      ip: client.ip,
      details: { sessionsEnded: ended },
    });
  });
  // The old password's failures no longer matter.
  await ctx.throttles.clear(`sign-in:email:${hmac(ctx.keys.lookupHash, user.email_normalised)}`);
  await notifyUser(ctx, user, { kind: 'password-reset' });
}

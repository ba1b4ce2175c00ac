/**
 * Temporary Access Pass: a time-limited pass an administrator issues (`portcullis tap issue`), shown
 * once and stored only as a keyed hash, one per user (a new one replaces the old), one-time and 1 hour
 * by default. It is a bootstrap credential outside the strength order: when a user has a live one it is
 * offered first at sign-in, and it opens a session restricted to Security info (unless the policy's
 * `tap.settings.fullSession` allows a full one, for onboarding). Every issue and use is audited and
 * emailed to the user — without the pass.
 */
import type { Actor } from '../core/audit.js';
import { PortcullisError } from '../core/errors.js';
import { methodDefinitions } from '../core/methods/registry.js';
import type { CodeVerification } from '../core/sign-in/flow.js';
import { hmac, safeEqual, secureRandomBytes } from '../crypto/tokens.js';
import type { MethodRow } from '../store/schema.js';
import type { AppContext } from './context.js';
import type { MethodStrategy } from './methods/strategy.js';
import { notifyUser } from './notifications.js';
import { actorName, evaluateUser } from './policy.js';

/** The pseudo method id a pass takes in a sign-in's list of methods. */
export const TAP_METHOD_ID = 'tap';
export const TAP_MIN_SECONDS = 600;
export const TAP_MAX_SECONDS = 30 * 86_400;
/** No 0/O, 1/I/L: a pass is read out over the phone by a helpdesk. */
const ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const TAP_LENGTH = 16;

export function generatePass(length = TAP_LENGTH): string {
  const out: string[] = [];
  const ceiling = 256 - (256 % ALPHABET.length);
  while (out.length < length) {
    for (const byte of secureRandomBytes(length * 2)) {
      if (byte < ceiling && out.length < length) out.push(ALPHABET[byte % ALPHABET.length]!);
    }
  }
  return out.join('');
}

function hashPass(ctx: AppContext, userId: string, pass: string): string {
  return hmac(ctx.keys.codeHash, `tap:${userId}:${pass.replace(/[\s-]+/g, '').toUpperCase()}`);
}

export async function issuePass(
  ctx: AppContext,
  email: string,
  options: { lifetimeSeconds: number; multiUse: boolean },
  actor: Actor,
): Promise<{ pass: string; expiresAt: Date }> {
  if (options.lifetimeSeconds < TAP_MIN_SECONDS || options.lifetimeSeconds > TAP_MAX_SECONDS) throw new PortcullisError('tap-lifetime-invalid');
  const user = await ctx.store.users.findByEmail(email);
  if (!user) throw new PortcullisError('user-not-found', { email });
  if (!(await evaluateUser(ctx, user)).tapEnabled) throw new PortcullisError('tap-not-enabled', { email: user.email });
  const pass = generatePass();
  const now = ctx.clock();
  const expiresAt = new Date(now.getTime() + options.lifetimeSeconds * 1000);
  await ctx.store.transaction(async (repos) => {
    await repos.policy.replacePass({
      user_id: user.id,
      pass_hash: hashPass(ctx, user.id, pass),
      multi_use: options.multiUse ? 1 : 0,
      created_by: actorName(actor),
      created_at: now.toISOString(),
      expires_at: expiresAt.toISOString(),
      used_at: null,
    });
    await repos.audit.append({ type: 'tap.issued', at: now, actor, subjectUserId: user.id, ip: null, details: { expiresAt: expiresAt.toISOString(), multiUse: options.multiUse } });
  });
  await notifyUser(ctx, user, { kind: 'tap-issued', expiresAt, multiUse: options.multiUse });
  return { pass, expiresAt };
}

/** The pseudo method row for a pass in a sign-in (there is no `methods` row for it). */
export function passMethodRow(userId: string): MethodRow {
  return {
    id: TAP_METHOD_ID,
    user_id: userId,
    kind: 'tap',
    status: 'active',
    label: 'Temporary Access Pass',
    phone_e164: null,
    secret_sealed: null,
    totp_last_step: null,
    created_at: new Date(0).toISOString(),
    activated_at: null,
    last_used_at: null,
    pending_expires_at: null,
  };
}

export const tapStrategy: MethodStrategy = {
  definition: methodDefinitions.tap,
  detail: () => 'Temporary Access Pass',
  async beginChallenge() {
    return { challengeId: null };
  },
  async verify(ctx, user, _method, _challengeId, code, context): Promise<CodeVerification> {
    const typed = code.replace(/[\s-]+/g, '').toUpperCase();
    if (!/^[A-Z0-9]{8,48}$/.test(typed)) return { ok: false, reason: 'code-incorrect' };
    const row = await ctx.store.policy.pass(user.id);
    const now = ctx.clock();
    if (!row) return { ok: false, reason: 'code-incorrect' };
    const candidate = hashPass(ctx, user.id, typed);
    if (!safeEqual(candidate, row.pass_hash)) return { ok: false, reason: 'code-incorrect' };
    if (!(await ctx.store.policy.usePass(user.id, candidate, now))) return { ok: false, reason: 'code-expired' };
    await ctx.store.audit.append({ type: 'tap.used', at: now, actor: { kind: 'user', userId: user.id }, subjectUserId: user.id, ip: context.ip, details: { purpose: context.purpose } });
    await notifyUser(ctx, user, { kind: 'tap-used' });
    return { ok: true };
  },
};

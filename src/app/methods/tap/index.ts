/**
 * The Temporary Access Pass as a sign-in method: checked against the keyed hash of the user's one
 * pass, used once (unless issued multi-use), audited and emailed. Issuing a pass is in src/app/tap.ts.
 */
import { tapDefinition } from './definition.js';
import { codePage } from '../pages.js';
import type { MethodUnit } from '../unit.js';
import type { CodeVerification } from '../../../core/sign-in/flow.js';
import { hmac, safeEqual } from '../../../crypto/tokens.js';
import type { MethodRow } from '../../../store/schema.js';
import type { AppContext } from '../../context.js';
import { notifyUser } from '../../notifications.js';
import { typedCode, type MethodStrategy } from '../strategy.js';

/** The pseudo method id a pass takes in a sign-in's list of methods. */
export const TAP_METHOD_ID = 'tap';

/** Spaces, hyphens and case do not matter: a pass is read out over the phone. */
export function hashPass(ctx: AppContext, userId: string, pass: string): string {
  return hmac(ctx.keys.codeHash, `tap:${userId}:${pass.replace(/[\s-]+/g, '').toUpperCase()}`);
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
    data: null,
    lookup_key: null,
    model: null,
  };
}

export const tapStrategy: MethodStrategy = {
  definition: tapDefinition,
  detail: () => 'Temporary Access Pass',
  async beginChallenge() {
    return { challengeId: null };
  },
  async verify(ctx, user, _method, _challengeId, response, context): Promise<CodeVerification> {
    const typed = typedCode(response).replace(/[\s-]+/g, '').toUpperCase();
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
  challengePage: async (_ctx, input) => codePage(tapDefinition, input.detail, { canResend: false, passLike: true, label: 'Temporary Access Pass' }),
};

/** A pass is issued by an administrator (src/app/tap.ts), never set up on Security info. */
export const tapUnit: MethodUnit = { slug: 'temporary-access-pass', strategies: [tapStrategy] };

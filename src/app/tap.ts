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
import { secureRandomBytes } from '../crypto/tokens.js';
import type { AppContext } from './context.js';
import { hashPass } from './methods/tap/index.js';
import { notifyUser } from './notifications.js';
import { actorName, evaluateUser } from './policy.js';

export const TAP_MIN_SECONDS = 600;
export const TAP_MAX_SECONDS = 30 * 86_400;
/** No 0/O, 1/I/L: a pass is read out over the phone by a helpdesk. */
const ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
export const TAP_LENGTH = 16;
/** What an administrator may choose (Entra's range): 8 characters is 40 bits, enough for a one-time pass that lives an hour and is throttled. */
export const TAP_MIN_LENGTH = 8;
export const TAP_MAX_LENGTH = 48;

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

export async function issuePass(
  ctx: AppContext,
  email: string,
  options: { lifetimeSeconds: number; multiUse: boolean; length?: number },
  actor: Actor,
): Promise<{ pass: string; expiresAt: Date }> {
  if (options.lifetimeSeconds < TAP_MIN_SECONDS || options.lifetimeSeconds > TAP_MAX_SECONDS) throw new PortcullisError('tap-lifetime-invalid');
  const length = options.length ?? TAP_LENGTH;
  if (!Number.isInteger(length) || length < TAP_MIN_LENGTH || length > TAP_MAX_LENGTH) throw new PortcullisError('tap-length-invalid', { min: TAP_MIN_LENGTH, max: TAP_MAX_LENGTH });
  const user = await ctx.store.users.findByEmail(email);
  if (!user) throw new PortcullisError('user-not-found', { email });
  if (!(await evaluateUser(ctx, user)).tapEnabled) throw new PortcullisError('tap-not-enabled', { email: user.email });
  const pass = generatePass(length);
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
    await repos.audit.append({ type: 'tap.issued', at: now, actor, subjectUserId: user.id, ip: null, details: { expiresAt: expiresAt.toISOString(), multiUse: options.multiUse, length } });
  });
  await notifyUser(ctx, user, { kind: 'tap-issued', expiresAt, multiUse: options.multiUse });
  return { pass, expiresAt };
}

/**
 * One-time codes sent by text, call or email: made from a CSPRNG, stored as an HMAC bound to their
 * challenge, checked with the core's rules, used up atomically; and the quotas against SMS pumping.
 */
import { randomUUID } from 'node:crypto';
import { PortcullisError } from '../../core/errors.js';
import { describeDuration } from '../../core/duration.js';
import { codeFromRandom, decideCodeEntry, decideResend, isCodeShaped, normaliseCode, type CodeSettings } from '../../core/methods/one-time-codes.js';
import type { CodeVerification } from '../../core/sign-in/flow.js';
import { hmac, safeEqual, secureRandomBytes } from '../../crypto/tokens.js';
import type { ChallengeRow } from '../../store/schema.js';
import type { AppContext } from '../context.js';
import type { ChallengeContext } from './strategy.js';

export function codeSettings(ctx: AppContext): CodeSettings {
  return { lifetimeSeconds: ctx.config.secondFactors.codeLifetimeSeconds, maxAttempts: 5, resendAfterSeconds: 30 };
}

export function newCode(): string {
  return codeFromRandom(() => secureRandomBytes(4).readUInt32BE(0));
}

export function hashCode(ctx: AppContext, challengeId: string, code: string): string {
  return hmac(ctx.keys.codeHash, `${challengeId}:${normaliseCode(code)}`);
}

/** Creates a code challenge and returns its id and the code to send (the code is never stored). */
export async function createCodeChallenge(
  ctx: AppContext,
  input: { userId: string | null; methodId: string | null; kind: string; context: ChallengeContext },
): Promise<{ challengeId: string; code: string }> {
  const challengeId = randomUUID();
  const code = newCode();
  const now = ctx.clock();
  await ctx.store.challenges.insert({
    id: challengeId,
    userId: input.userId,
    methodId: input.methodId,
    kind: input.kind,
    purpose: input.context.purpose,
    binding: input.context.binding,
    codeHash: hashCode(ctx, challengeId, code),
    now,
    expiresAt: new Date(now.getTime() + codeSettings(ctx).lifetimeSeconds * 1000),
  });
  return { challengeId, code };
}

function stateOf(row: ChallengeRow) {
  return {
    expiresAt: new Date(row.expires_at),
    failedAttempts: row.failed_attempts,
    lastSentAt: new Date(row.last_sent_at),
    consumed: row.consumed_at !== null,
  };
}

/** A new code for an existing challenge, no sooner than the resend interval. Returns the code to send. */
export async function renewCode(ctx: AppContext, challengeId: string, context: ChallengeContext): Promise<string> {
  const row = await ctx.store.challenges.findBound(challengeId, context.binding);
  if (!row || row.consumed_at) throw new PortcullisError('enrolment-expired');
  const now = ctx.clock();
  const decision = decideResend(stateOf(row), now, codeSettings(ctx));
  if (!decision.allowed) throw new PortcullisError(decision.code, decision.code === 'code-resend-too-soon' ? { wait: decision.message } : {});
  const code = newCode();
  await ctx.store.challenges.replaceCode(challengeId, hashCode(ctx, challengeId, code), now, decision.expiresAt);
  return code;
}

/**
 * Checks a code against its challenge and, if right, uses the challenge up (once, even under races).
 * Each entry reserves one of the challenge's tries before it is compared, so entries sent together are
 * counted as they would be one after another (issue #12).
 */
export async function verifyCodeChallenge(ctx: AppContext, challengeId: string | null, code: string, context: ChallengeContext): Promise<CodeVerification> {
  if (!challengeId) return { ok: false, reason: 'code-expired' };
  const now = ctx.clock();
  const settings = codeSettings(ctx);
  const refused = async (): Promise<CodeVerification> => {
    // Nothing reserved: the core says why from the challenge as it stands (expired, used, no tries left,
    // or a malformed entry, which never costs a try).
    const row = await ctx.store.challenges.findBound(challengeId, context.binding);
    if (!row) return { ok: false, reason: 'code-expired' };
    const decision = decideCodeEntry(stateOf(row), { code, matches: false }, now, settings);
    return decision.outcome === 'reject' ? { ok: false, reason: decision.reason } : { ok: false, reason: 'code-expired' };
  };
  if (!isCodeShaped(code)) return refused();
  const reserved = await ctx.store.challenges.reserveAttempt(challengeId, context.binding, now, settings.maxAttempts);
  if (!reserved) return refused();
  const matches = reserved.codeHash !== null && safeEqual(hashCode(ctx, challengeId, code), reserved.codeHash);
  // The decision as if the tries before this one were all there were: this try is the reserved one.
  const before = { expiresAt: new Date(now.getTime() + 1), failedAttempts: reserved.failedAttempts - 1, lastSentAt: now, consumed: false };
  const decision = decideCodeEntry(before, { code, matches }, now, settings);
  if (decision.outcome === 'reject') return { ok: false, reason: decision.reason };
  if (!(await ctx.store.challenges.consume(challengeId, reserved.codeHash, now))) return { ok: false, reason: 'code-expired' };
  return { ok: true };
}

/**
 * Quotas on codes sent by text or call, against SMS pumping (toll fraud): per user, per client
 * address and per destination country, each per hour. Counted before sending; a refused request counts
 * too, so hammering does not help.
 */
export async function checkPhoneQuotas(ctx: AppContext, input: { userId: string; ip: string; country: string }): Promise<void> {
  const now = ctx.clock();
  const hour = Math.floor(now.getTime() / 3_600_000);
  const end = new Date((hour + 1) * 3_600_000);
  const wait = describeDuration(Math.ceil((end.getTime() - now.getTime()) / 1000));
  const limits = ctx.config.secondFactors;
  const checks: Array<[string, number, ConstructorParameters<typeof PortcullisError>[0]]> = [
    [`phone-codes:user:${input.userId}:${hour}`, limits.codesPerUserPerHour, 'phone-quota-user'],
    [`phone-codes:address:${input.ip}:${hour}`, limits.codesPerAddressPerHour, 'phone-quota-address'],
    [`phone-codes:country:${input.country}:${hour}`, limits.codesPerCountryPerHour, 'phone-quota-country'],
  ];
  for (const [key, limit, code] of checks) {
    const count = await ctx.throttles.increment(key, now, end);
    if (count > limit) {
      ctx.logger.warn({ event: 'phone-code-quota', quota: code, userId: input.userId, ip: input.ip, country: input.country }, 'phone code quota reached');
      throw new PortcullisError(code, { wait });
    }
  }
}

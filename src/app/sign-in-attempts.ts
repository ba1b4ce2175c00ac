/**
 * Attempts at a password or a second factor, each a reservation taken *before* the work it limits
 * (issue #12; NIST SP 800-63B-4 §3.2.2, OWASP ASVS 5 V6.3.1): the address's (or the user's) lease, so
 * one attempt is checked at a time, and a unit of the client address's failure budget. A burst of
 * guesses sent together is therefore counted as if the guesses came one after another: at most the
 * threshold is ever verified before the lock, and the others are refused without being checked.
 *
 * The decisions (locked? how long?) stay the core's (src/core/throttle.ts); the counts and leases live
 * in the shared throttle store, so the limits hold across nodes.
 */
import { accountCounterLifetimeSeconds, assessSignInThrottle, ipWindow, lockoutAfterFailure, type ThrottleAssessment } from '../core/throttle.js';
import { hmac } from '../crypto/tokens.js';
import type { Lease } from '../store/throttle-store.js';
import type { AppContext } from './context.js';

/**
 * How long an attempt may hold its lease: longer than any argon2id verify queued behind others (at most
 * one per CPU runs at once), short enough that an attempt whose node died frees the address quickly.
 */
export const ATTEMPT_LEASE_SECONDS = 30;
/** What a person who sent the same form twice is asked to wait (the first is still being checked). */
const BUSY_RETRY_SECONDS = 2;

export function passwordCounterKey(ctx: AppContext, email: string): string {
  return `sign-in:email:${hmac(ctx.keys.lookupHash, email)}`;
}

export function addressBudgetKey(ctx: AppContext, ip: string, now: Date): string {
  return `sign-in:ip:${ip}:${ipWindow(now, ctx.config.signIn).start.getTime()}`;
}

export function secondFactorCounterKey(userId: string): string {
  return `second-factor:user:${userId}`;
}

/** An attempt that holds its reservations: end it with exactly one of fail, succeed or end. */
export interface Attempt {
  /** Counts the failure (locking at the threshold; the lockout's audit event names `subjectUserId`) and ends the attempt. */
  fail(subjectUserId?: string | null): Promise<void>;
  /** Clears the failure count and gives the address's reservation back. */
  succeed(): Promise<void>;
  /** Ends an attempt that neither failed nor succeeded (gives everything back); a no-op once ended. */
  end(): Promise<void>;
}

export type AttemptStart = { granted: true; attempt: Attempt } | { granted: false; throttle: Extract<ThrottleAssessment, { allowed: false }> };

interface Lockout {
  what: 'password' | 'second-factor';
  threshold: number;
  userId: string | null;
  email?: string;
  ip: string;
}

/** The lockout's log line, metric and audit event, once the count reached a multiple of the threshold. */
export async function reportLockout(ctx: AppContext, lockout: Lockout, failures: number, now: Date): Promise<void> {
  const decided = lockoutAfterFailure(failures, now, { ...ctx.config.signIn, lockoutThreshold: lockout.threshold });
  if (!decided) return;
  ctx.metrics.lockouts.inc();
  ctx.logger.warn(
    { event: 'sign-in.locked-out', userId: lockout.userId, ip: lockout.ip, factor: lockout.what, lockoutNumber: decided.lockoutNumber, seconds: decided.seconds },
    'sign-in locked after repeated failures',
  );
  await ctx.store.audit.append({
    type: 'sign-in.locked-out',
    at: now,
    actor: { kind: 'system' },
    subjectUserId: lockout.userId,
    ip: lockout.ip,
    details: { ...(lockout.email ? { email: lockout.email } : {}), factor: lockout.what, failures, lockoutNumber: decided.lockoutNumber, until: decided.lockedUntil.toISOString() },
  });
}

function failureOf(ctx: AppContext, threshold: number, now: Date) {
  return {
    now,
    threshold,
    expiresAt: new Date(now.getTime() + accountCounterLifetimeSeconds(ctx.config.signIn) * 1000),
    lockFor: (count: number) => lockoutAfterFailure(count, now, { ...ctx.config.signIn, lockoutThreshold: threshold })!.lockedUntil,
  };
}

interface Reservations {
  lease: Lease;
  budget?: string;
  lockout: Omit<Lockout, 'userId'> & { userId?: string | null };
}

function attemptOf(ctx: AppContext, held: Reservations): Attempt {
  let ended = false;
  const finish = () => {
    const first = !ended;
    ended = true;
    return first;
  };
  return {
    async fail(subjectUserId) {
      if (!finish()) return;
      const lockout: Lockout = { ...held.lockout, userId: subjectUserId ?? held.lockout.userId ?? null };
      const now = ctx.clock();
      // The address's budget keeps its reservation: this was a failure.
      const failures = await ctx.throttles.fail(held.lease, failureOf(ctx, lockout.threshold, now));
      await reportLockout(ctx, lockout, failures, now);
    },
    async succeed() {
      if (!finish()) return;
      await ctx.throttles.succeed(held.lease);
      if (held.budget) await ctx.throttles.giveBack(held.budget, ctx.clock());
    },
    async end() {
      if (!finish()) return;
      await ctx.throttles.release(held.lease);
      if (held.budget) await ctx.throttles.giveBack(held.budget, ctx.clock());
    },
  };
}

function busy(): AttemptStart {
  return { granted: false, throttle: { allowed: false, reason: 'attempt-in-progress', retryAfterSeconds: BUSY_RETRY_SECONDS } };
}

/**
 * Begins a password attempt for an address (whether or not it has an account, so nothing here tells
 * which do): the address's lease, its lockout read under that lease, then one unit of the client
 * address's failure budget for this window — the unit only if the lease was granted and the address is
 * not locked (the throttle store asks for both in one round trip where it can: `acquireWithBudget`).
 */
export async function beginPasswordAttempt(ctx: AppContext, input: { email: string; ip: string }): Promise<AttemptStart> {
  const now = ctx.clock();
  const settings = ctx.config.signIn;
  const budget = addressBudgetKey(ctx, input.ip, now);
  const { held, taken } = await ctx.throttles.acquireWithBudget(passwordCounterKey(ctx, input.email), now, new Date(now.getTime() + ATTEMPT_LEASE_SECONDS * 1000), {
    key: budget,
    limit: settings.ipFailureLimit,
    expiresAt: ipWindow(now, settings).end,
  });
  if (!held) return busy();
  const locked = assessSignInThrottle(held.counter, null, now, settings);
  if (!locked.allowed) {
    await ctx.throttles.release(held.lease);
    return { granted: false, throttle: locked };
  }
  if (!taken) {
    await ctx.throttles.release(held.lease);
    return { granted: false, throttle: assessSignInThrottle(null, { count: settings.ipFailureLimit, lockedUntil: null }, now, settings) as Extract<ThrottleAssessment, { allowed: false }> };
  }
  return {
    granted: true,
    attempt: attemptOf(ctx, {
      lease: held.lease,
      budget,
      lockout: { what: 'password', threshold: settings.lockoutThreshold, email: input.email, ip: input.ip },
    }),
  };
}

/** Begins a second-factor attempt for a user: their lease, and their second-factor lockout read under it. */
export async function beginSecondFactorAttempt(ctx: AppContext, input: { userId: string; ip: string }): Promise<AttemptStart> {
  const now = ctx.clock();
  const held = await ctx.throttles.acquire(secondFactorCounterKey(input.userId), now, new Date(now.getTime() + ATTEMPT_LEASE_SECONDS * 1000));
  if (!held) return busy();
  const locked = assessSignInThrottle(held.counter, null, now, ctx.config.signIn);
  if (!locked.allowed) {
    await ctx.throttles.release(held.lease);
    return { granted: false, throttle: { ...locked, reason: 'throttled-account' } };
  }
  return {
    granted: true,
    attempt: attemptOf(ctx, {
      lease: held.lease,
      lockout: { what: 'second-factor', threshold: ctx.config.secondFactors.lockoutThreshold, userId: input.userId, ip: input.ip },
    }),
  };
}

/**
 * Begins an attempt and, at once, the reads that go with it (one round trip, src/store/pipeline.ts). If
 * a read fails, an attempt that was granted is ended before the error is thrown, so a failed read never
 * leaves an address or a user leased.
 */
export async function beginWith<T>(begin: Promise<AttemptStart>, reads: Promise<T>): Promise<[AttemptStart, T]> {
  const [started, read] = await Promise.allSettled([begin, reads]);
  if (started.status === 'rejected') throw started.reason;
  if (read.status === 'rejected') {
    if (started.value.granted) await started.value.attempt.end().catch(() => undefined);
    throw read.reason;
  }
  return [started.value, read.value];
}

/**
 * Counts a wrong second factor that arrives outside a sign-in attempt (a denied or wrongly numbered
 * push, answered on the phone) toward the user's lockout.
 */
export async function recordSecondFactorFailure(ctx: AppContext, userId: string, ip: string): Promise<void> {
  const now = ctx.clock();
  const key = secondFactorCounterKey(userId);
  const threshold = ctx.config.secondFactors.lockoutThreshold;
  const failures = await ctx.throttles.increment(key, now, new Date(now.getTime() + accountCounterLifetimeSeconds(ctx.config.signIn) * 1000));
  const lockout = lockoutAfterFailure(failures, now, { ...ctx.config.signIn, lockoutThreshold: threshold });
  if (!lockout) return;
  await ctx.throttles.lock(key, lockout.lockedUntil);
  await reportLockout(ctx, { what: 'second-factor', threshold, userId, ip }, failures, now);
}

/**
 * Push with number matching: the rules, pure. The server shows a number on the sign-in page; the user
 * types it into their authenticator app and approves. Against push bombing (MFA fatigue): one pending
 * challenge per user, a minimum gap between pushes, an hourly cap; denials and wrong numbers count
 * toward the second-factor lockout, time-outs do not; "No, it's not me" blocks push for the user.
 * Device requests are signed (ES256) with `iat` within ±60 s and a one-time `jti`.
 */
import type { ErrorCode } from '../errors.js';

export interface PushSettings {
  /** Digits in the number shown (2 as Microsoft; 6 where NIST SP 800-63B-4 is followed). */
  numberDigits: number;
  numberDigitsElevated: number;
  challengeSeconds: number;
  minIntervalSeconds: number;
  perHour: number;
}

export type PushStatus = 'pending' | 'approved' | 'denied' | 'reported' | 'wrong-number' | 'expired' | 'used';

export interface PushHistory {
  /** The user's pending, unexpired challenge, if any, and what it is bound to. */
  pending: { id: string; binding: string } | null;
  lastSentAt: Date | null;
  sentInLastHour: number;
  blocked: boolean;
}

export type PushStart =
  | { start: 'new' }
  | { start: 'reuse'; challengeId: string }
  | { start: 'refused'; code: Extract<ErrorCode, 'push-blocked' | 'push-pending' | 'push-too-soon' | 'push-hourly-limit'>; retryAfterSeconds: number };

/** Whether a new push may be sent for `binding` (a sign-in attempt); a page reloaded reuses its own. */
export function decidePushStart(history: PushHistory, binding: string, now: Date, settings: PushSettings): PushStart {
  if (history.blocked) return { start: 'refused', code: 'push-blocked', retryAfterSeconds: 0 };
  if (history.pending) {
    if (history.pending.binding === binding) return { start: 'reuse', challengeId: history.pending.id };
    return { start: 'refused', code: 'push-pending', retryAfterSeconds: settings.challengeSeconds };
  }
  if (history.lastSentAt) {
    const wait = history.lastSentAt.getTime() + settings.minIntervalSeconds * 1000 - now.getTime();
    if (wait > 0) return { start: 'refused', code: 'push-too-soon', retryAfterSeconds: Math.ceil(wait / 1000) };
  }
  if (history.sentInLastHour >= settings.perHour) return { start: 'refused', code: 'push-hourly-limit', retryAfterSeconds: 3600 };
  return { start: 'new' };
}

export function numberDigitsFor(elevated: boolean, settings: Pick<PushSettings, 'numberDigits' | 'numberDigitsElevated'>): number {
  return elevated ? settings.numberDigitsElevated : settings.numberDigits;
}

/** A number of `digits` digits from a uniform random integer source; the first digit may be 0 only for 1 digit. */
export function numberFromRandom(digits: number, randomBelow: (limit: number) => number): string {
  if (digits === 1) return String(randomBelow(10));
  const low = 10 ** (digits - 1);
  return String(low + randomBelow(9 * low));
}

export type DecisionInput = { decision: 'approve'; number: string } | { decision: 'deny' } | { decision: 'report' };

export type DecisionOutcome =
  | { status: Exclude<PushStatus, 'pending' | 'expired' | 'used'> }
  | { refused: 'challenge-expired' | 'challenge-decided' | 'number-missing' };

/**
 * A decision on a challenge. A wrong number ends the challenge (a second guess would make the number
 * worthless against someone approving blindly).
 */
export function decidePush(challenge: { status: PushStatus; expiresAt: Date; number: string }, input: DecisionInput, now: Date): DecisionOutcome {
  if (challenge.status !== 'pending') return { refused: 'challenge-decided' };
  if (now.getTime() >= challenge.expiresAt.getTime()) return { refused: 'challenge-expired' };
  switch (input.decision) {
    case 'deny':
      return { status: 'denied' };
    case 'report':
      return { status: 'reported' };
    case 'approve': {
      const typed = input.number.replace(/\s+/g, '');
      if (typed === '') return { refused: 'number-missing' };
      return { status: typed === challenge.number ? 'approved' : 'wrong-number' };
    }
  }
}

/** What the sign-in flow makes of a challenge's status. */
export type PushVerification =
  | { ok: true }
  | { ok: false; reason: 'pending' | 'push-denied' | 'push-timeout' | 'push-fraud-reported' | 'push-wrong-number' };

export function verifyPushStatus(status: PushStatus, expiresAt: Date, now: Date): PushVerification {
  switch (status) {
    case 'approved':
      return { ok: true };
    case 'denied':
      return { ok: false, reason: 'push-denied' };
    case 'reported':
      return { ok: false, reason: 'push-fraud-reported' };
    case 'wrong-number':
      return { ok: false, reason: 'push-wrong-number' };
    case 'expired':
    case 'used':
      return { ok: false, reason: 'push-timeout' };
    case 'pending':
      return now.getTime() >= expiresAt.getTime() ? { ok: false, reason: 'push-timeout' } : { ok: false, reason: 'pending' };
  }
}

/** RFC 7519-style time check for a device request: `iat` within ±`skewSeconds` of the server's clock. */
export function checkRequestTime(iat: unknown, now: Date, skewSeconds = 60): 'ok' | 'missing' | 'skewed' {
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return 'missing';
  return Math.abs(now.getTime() / 1000 - iat) <= skewSeconds ? 'ok' : 'skewed';
}

/**
 * One-time codes sent by text message, call or email (NIST SP 800-63B §5.1.3 out-of-band and
 * §5.1.4-style single-use codes): 6 digits from a CSPRNG, stored only as a keyed hash, valid for 10
 * minutes at most, bound to one attempt (a sign-in, a set-up, a reset), 5 wrong tries per code, a new
 * code no sooner than 30 seconds after the last, and resending never resets the count of wrong tries.
 * These functions decide; the caller stores and counts atomically.
 */
import { describeDuration } from '../duration.js';

export interface CodeSettings {
  lifetimeSeconds: number;
  maxAttempts: number;
  resendAfterSeconds: number;
}

export const DEFAULT_CODE_SETTINGS: CodeSettings = { lifetimeSeconds: 600, maxAttempts: 5, resendAfterSeconds: 30 };

/** What the store holds for a code challenge. */
export interface CodeChallengeState {
  expiresAt: Date;
  /** Wrong codes entered so far, across every code sent for this challenge. */
  failedAttempts: number;
  lastSentAt: Date;
  consumed: boolean;
}

/** Six decimal digits from random bytes without modulo bias (rejection sampling over 32-bit values). */
export function codeFromRandom(randomUint32: () => number): string {
  const limit = Math.floor(0x1_0000_0000 / 1_000_000) * 1_000_000;
  for (;;) {
    const value = randomUint32();
    if (value < limit) return String(value % 1_000_000).padStart(6, '0');
  }
}

export function normaliseCode(code: string): string {
  return code.replace(/[\s-]+/g, '');
}

/** Whether an entry has the shape of a code at all: one that does not is refused without costing a try. */
export function isCodeShaped(code: string): boolean {
  return /^\d{6}$/.test(normaliseCode(code));
}

export type CodeDecision =
  | { outcome: 'accept' }
  | { outcome: 'reject'; reason: 'code-format' | 'code-incorrect' | 'code-expired' | 'code-too-many-attempts'; countsAsFailure: boolean };

/**
 * Decides a code entry. `matches` is whether the keyed hash of the entry equals the stored one; a code
 * is judged expired or exhausted before it is compared, so a right code after the limit still fails.
 */
export function decideCodeEntry(state: CodeChallengeState, input: { code: string; matches: boolean }, now: Date, settings: CodeSettings): CodeDecision {
  if (state.consumed || now.getTime() >= state.expiresAt.getTime()) return { outcome: 'reject', reason: 'code-expired', countsAsFailure: false };
  if (state.failedAttempts >= settings.maxAttempts) return { outcome: 'reject', reason: 'code-too-many-attempts', countsAsFailure: false };
  if (!isCodeShaped(input.code)) return { outcome: 'reject', reason: 'code-format', countsAsFailure: false };
  if (!input.matches) {
    const exhausted = state.failedAttempts + 1 >= settings.maxAttempts;
    return { outcome: 'reject', reason: exhausted ? 'code-too-many-attempts' : 'code-incorrect', countsAsFailure: true };
  }
  return { outcome: 'accept' };
}

export type ResendDecision =
  | { allowed: true; expiresAt: Date }
  | { allowed: false; code: 'code-resend-too-soon'; retryAfterSeconds: number; message: string }
  | { allowed: false; code: 'code-resend-exhausted' };

/**
 * A new code for the same challenge: not before `resendAfterSeconds`, and never once the wrong tries
 * are used up (a new code must not reset them). The new code gets a fresh lifetime.
 */
export function decideResend(state: CodeChallengeState, now: Date, settings: CodeSettings): ResendDecision {
  // A code that can never be accepted is not worth sending (issue #12): the tries are the challenge's.
  if (state.failedAttempts >= settings.maxAttempts) return { allowed: false, code: 'code-resend-exhausted' };
  const wait = state.lastSentAt.getTime() + settings.resendAfterSeconds * 1000 - now.getTime();
  if (wait > 0) {
    const seconds = Math.ceil(wait / 1000);
    return { allowed: false, code: 'code-resend-too-soon', retryAfterSeconds: seconds, message: describeDuration(seconds) };
  }
  return { allowed: true, expiresAt: new Date(now.getTime() + settings.lifetimeSeconds * 1000) };
}

/**
 * Throttling decisions for password sign-in (NIST SP 800-63B §5.2.2, OWASP ASVS 5 V6.3):
 * - per email address (whether or not an account exists, so no answer reveals which do): after
 *   `lockoutThreshold` consecutive failures the address is locked for a period that doubles with
 *   each further lockout, up to a maximum, and lifts by itself; a success clears the count;
 * - per client address: at most `ipFailureLimit` failures in a fixed window.
 * The counters live in a shared store; these functions only decide.
 */
import type { SignInReason } from './reasons.js';

export interface ThrottleSettings {
  lockoutThreshold: number;
  lockoutSeconds: number;
  lockoutMaxSeconds: number;
  ipFailureLimit: number;
  ipWindowSeconds: number;
}

/** What the store holds for one counter. */
export interface CounterState {
  count: number;
  lockedUntil: Date | null;
}

export type ThrottleAssessment =
  | { allowed: true }
  | { allowed: false; reason: Extract<SignInReason, 'throttled-account' | 'throttled-ip' | 'attempt-in-progress'>; retryAfterSeconds: number };

/** Fixed windows aligned to the epoch, so every node computes the same key for the same moment. */
export function ipWindow(now: Date, settings: Pick<ThrottleSettings, 'ipWindowSeconds'>): { start: Date; end: Date } {
  const size = settings.ipWindowSeconds * 1000;
  const start = Math.floor(now.getTime() / size) * size;
  return { start: new Date(start), end: new Date(start + size) };
}

/** Whether a counter is locked at `now` (the throttle store's conditional take asks the same in SQL). */
export function isLockedAt(counter: CounterState | null, now: Date): boolean {
  return Boolean(counter?.lockedUntil && counter.lockedUntil.getTime() > now.getTime());
}

export function assessSignInThrottle(
  account: CounterState | null,
  ip: CounterState | null,
  now: Date,
  settings: ThrottleSettings,
): ThrottleAssessment {
  if (account?.lockedUntil && isLockedAt(account, now)) {
    return {
      allowed: false,
      reason: 'throttled-account',
      retryAfterSeconds: Math.ceil((account.lockedUntil.getTime() - now.getTime()) / 1000),
    };
  }
  if (ip && ip.count >= settings.ipFailureLimit) {
    const { end } = ipWindow(now, settings);
    return { allowed: false, reason: 'throttled-ip', retryAfterSeconds: Math.ceil((end.getTime() - now.getTime()) / 1000) };
  }
  return { allowed: true };
}

/**
 * Called with the count the store returned from its atomic increment. Exactly one failure crosses
 * each multiple of the threshold, so concurrent nodes lock once. The k-th lockout lasts
 * lockoutSeconds × 2^(k−1), capped at lockoutMaxSeconds.
 */
export function lockoutAfterFailure(
  consecutiveFailures: number,
  now: Date,
  settings: Pick<ThrottleSettings, 'lockoutThreshold' | 'lockoutSeconds' | 'lockoutMaxSeconds'>,
): { lockedUntil: Date; lockoutNumber: number; seconds: number } | null {
  if (consecutiveFailures <= 0 || consecutiveFailures % settings.lockoutThreshold !== 0) return null;
  const lockoutNumber = consecutiveFailures / settings.lockoutThreshold;
  const seconds = Math.min(settings.lockoutMaxSeconds, settings.lockoutSeconds * 2 ** Math.min(lockoutNumber - 1, 30));
  return { lockedUntil: new Date(now.getTime() + seconds * 1000), lockoutNumber, seconds };
}

/**
 * How long an email address's failure count is kept after its last failure: long enough that a
 * lockout cannot be waited out by letting the count lapse first.
 */
export function accountCounterLifetimeSeconds(settings: Pick<ThrottleSettings, 'lockoutMaxSeconds'>): number {
  return Math.max(settings.lockoutMaxSeconds * 2, 86_400);
}

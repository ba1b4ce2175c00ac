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

// ── What a device may ask (docs/device-api.md) ──────────────────────────────────────────────────────

/** The device API's endpoints, by what they do. */
export type DeviceAction = 'list-challenges' | 'read-challenge' | 'decide-challenge' | 'events' | 'list-devices' | 'rename' | 'remove' | 'push-subscription';

/** What a challenge is for (the test request follows pairing). */
export type PushChallengePurpose = 'sign-in' | 'step-up' | 'reset' | 'test';

/**
 * Whether a device may do `action` (on a challenge of `purpose`). A device whose method is still
 * `pending` — paired with the activation code, its test request not yet approved with the number on
 * Security info — may only list, read and answer its test request: until then nothing shows that the
 * person at Security info holds it (the QR code may have been seen over a shoulder), so it may not
 * learn the account's other devices, rename or remove itself, give a push endpoint, or hold a stream.
 * As NIST SP 800-63B-4 has it for binding an authenticator, the new one counts only once the subscriber
 * has shown, in the session that asked for it, that they hold it: the approved test request.
 */
export function deviceMay(methodStatus: 'pending' | 'active', action: DeviceAction, purpose?: PushChallengePurpose): boolean {
  if (methodStatus === 'active') return true;
  switch (action) {
    case 'list-challenges':
      return true; // the list itself holds only what `read-challenge` allows
    case 'read-challenge':
    case 'decide-challenge':
      return purpose === 'test';
    default:
      return false;
  }
}

/** A decision's fields as the device sent them, read, or why not (naming the field). */
export type DecisionRequest = DecisionInput | { refused: Extract<ErrorCode, 'request-invalid' | 'number-missing' | 'number-invalid'>; field: 'decision' | 'number' };

/**
 * Reads `decision` and `number` from a device's request. `number` is a string of digits (leading zeros
 * matter, docs/device-api.md), spaces allowed as people type "4 7"; any other JSON value is refused
 * rather than turned into text (a JSON number loses its leading zeros). It is read only to approve:
 * a denial or a report is never refused for a field it does not need.
 */
export function readDecision(fields: { decision?: unknown; number?: unknown }): DecisionRequest {
  const { decision, number } = fields;
  if (decision === 'deny' || decision === 'report') return { decision };
  if (decision !== 'approve') return { refused: 'request-invalid', field: 'decision' };
  if (number === undefined) return { refused: 'number-missing', field: 'number' };
  if (typeof number !== 'string') return { refused: 'number-invalid', field: 'number' };
  const digits = number.replace(/\s+/g, '');
  if (digits === '') return { refused: 'number-missing', field: 'number' };
  if (!/^\d{1,64}$/.test(digits)) return { refused: 'number-invalid', field: 'number' };
  return { decision: 'approve', number };
}

/**
 * A device's name as Security info will show it: 1 to 60 characters once trimmed, with no control
 * characters (a NUL cannot even be stored in PostgreSQL text); null when it is not one.
 */
export function readDeviceName(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const name = value.trim();
  return name.length >= 1 && name.length <= 60 && !/[\u0000-\u001f\u007f]/.test(name) ? name : null;
}

/** An id as the server makes them (UUIDs) or a client may send them: the shape checked before any lookup. */
export function isWellFormedId(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(value);
}

/**
 * The fixed one-minute window a device's request counts in (the device API's request allowance):
 * the counter's key suffix, when the window ends, and the whole seconds until then for Retry-After
 * (RFC 9110 §10.2.3), never less than 1.
 */
export function deviceRequestWindow(now: Date, windowSeconds = 60): { key: string; endsAt: Date; retryAfterSeconds: number } {
  const length = windowSeconds * 1000;
  const start = Math.floor(now.getTime() / length) * length;
  const endsAt = new Date(start + length);
  return { key: String(start), endsAt, retryAfterSeconds: Math.max(1, Math.ceil((endsAt.getTime() - now.getTime()) / 1000)) };
}

/** RFC 7519-style time check for a device request: `iat` within ±`skewSeconds` of the server's clock. */
export function checkRequestTime(iat: unknown, now: Date, skewSeconds = 60): 'ok' | 'missing' | 'skewed' {
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return 'missing';
  return Math.abs(now.getTime() / 1000 - iat) <= skewSeconds ? 'ok' : 'skewed';
}

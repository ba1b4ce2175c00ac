import { describe, expect, it } from 'vitest';
import {
  checkRequestTime,
  decidePush,
  decidePushStart,
  deviceMay,
  deviceRequestWindow,
  isWellFormedId,
  numberDigitsFor,
  numberFromRandom,
  readDecision,
  readDeviceName,
  verifyPushStatus,
  type DeviceAction,
  type PushHistory,
} from './push.js';

const now = new Date('2026-11-28T12:00:00Z');
const settings = { numberDigits: 2, numberDigitsElevated: 6, challengeSeconds: 60, minIntervalSeconds: 10, perHour: 10 };
const quiet: PushHistory = { pending: null, lastSentAt: null, sentInLastHour: 0, blocked: false };
const ago = (s: number) => new Date(now.getTime() - s * 1000);

describe('decidePushStart (against push bombing)', () => {
  it.each([
    ['nothing sent lately', quiet, { start: 'new' }],
    ['a reload of the same sign-in', { ...quiet, pending: { id: 'c1', binding: 'flow:a' } }, { start: 'reuse', challengeId: 'c1' }],
    ['another sign-in while one is pending', { ...quiet, pending: { id: 'c1', binding: 'flow:b' } }, { start: 'refused', code: 'push-pending', retryAfterSeconds: 60 }],
    ['4 seconds after the last push', { ...quiet, lastSentAt: ago(4) }, { start: 'refused', code: 'push-too-soon', retryAfterSeconds: 6 }],
    ['10 seconds after the last push', { ...quiet, lastSentAt: ago(10) }, { start: 'new' }],
    ['the tenth push this hour', { ...quiet, sentInLastHour: 9 }, { start: 'new' }],
    ['the eleventh push this hour', { ...quiet, sentInLastHour: 10 }, { start: 'refused', code: 'push-hourly-limit', retryAfterSeconds: 3600 }],
    ['push blocked after a fraud report', { ...quiet, blocked: true, pending: { id: 'c1', binding: 'flow:a' } }, { start: 'refused', code: 'push-blocked', retryAfterSeconds: 0 }],
  ] as const)('%s', (_name, history, expected) => {
    expect(decidePushStart(history, 'flow:a', now, settings)).toEqual(expected);
  });
});

describe('decidePush (number matching)', () => {
  const live = { status: 'pending' as const, expiresAt: new Date(now.getTime() + 30_000), number: '42' };
  it.each([
    ['approve with the number', live, { decision: 'approve', number: '42' }, { status: 'approved' }],
    ['approve with spaces around the digits', live, { decision: 'approve', number: ' 4 2 ' }, { status: 'approved' }],
    ['approve with another number', live, { decision: 'approve', number: '24' }, { status: 'wrong-number' }],
    ['approve without a number', live, { decision: 'approve', number: '' }, { refused: 'number-missing' }],
    ['deny', live, { decision: 'deny' }, { status: 'denied' }],
    ['report', live, { decision: 'report' }, { status: 'reported' }],
    ['answer after expiry', { ...live, expiresAt: now }, { decision: 'approve', number: '42' }, { refused: 'challenge-expired' }],
    ['answer twice', { ...live, status: 'denied' as const }, { decision: 'approve', number: '42' }, { refused: 'challenge-decided' }],
  ] as const)('%s', (_name, challenge, input, expected) => {
    expect(decidePush(challenge, input, now)).toEqual(expected);
  });
});

describe('verifyPushStatus (what the sign-in makes of it)', () => {
  const later = new Date(now.getTime() + 1000);
  it.each([
    ['approved', later, { ok: true }],
    ['pending', later, { ok: false, reason: 'pending' }],
    ['pending', now, { ok: false, reason: 'push-timeout' }],
    ['expired', later, { ok: false, reason: 'push-timeout' }],
    ['used', later, { ok: false, reason: 'push-timeout' }],
    ['denied', later, { ok: false, reason: 'push-denied' }],
    ['reported', later, { ok: false, reason: 'push-fraud-reported' }],
    ['wrong-number', later, { ok: false, reason: 'push-wrong-number' }],
  ] as const)('%s', (status, expiresAt, expected) => {
    expect(verifyPushStatus(status, expiresAt, now)).toEqual(expected);
  });
});

describe('numbers and clocks', () => {
  it('makes numbers of the configured length, never with a leading zero', () => {
    expect(numberFromRandom(2, () => 0)).toBe('10');
    expect(numberFromRandom(2, (limit) => limit - 1)).toBe('99');
    expect(numberFromRandom(6, () => 0)).toBe('100000');
    expect(numberFromRandom(6, (limit) => limit - 1)).toBe('999999');
  });
  it('uses more digits for elevated roles when configured', () => {
    expect(numberDigitsFor(false, settings)).toBe(2);
    expect(numberDigitsFor(true, settings)).toBe(6);
  });
  it.each([
    [now.getTime() / 1000, 'ok'],
    [now.getTime() / 1000 - 60, 'ok'],
    [now.getTime() / 1000 + 60, 'ok'],
    [now.getTime() / 1000 - 61, 'skewed'],
    [now.getTime() / 1000 + 61, 'skewed'],
    ['1700000000', 'missing'],
    [undefined, 'missing'],
  ])('iat %s → %s (±60 s)', (iat, expected) => {
    expect(checkRequestTime(iat, now)).toBe(expected);
  });
});

describe('deviceMay (what a device whose pairing is not confirmed may do, issue #12)', () => {
  const actions: DeviceAction[] = ['list-challenges', 'read-challenge', 'decide-challenge', 'events', 'list-devices', 'rename', 'remove', 'push-subscription'];
  it.each(actions)('an active device may %s', (action) => {
    expect(deviceMay('active', action)).toBe(true);
    expect(deviceMay('active', action, 'sign-in')).toBe(true);
  });
  it.each([
    ['list-challenges', undefined, true],
    ['read-challenge', 'test', true],
    ['decide-challenge', 'test', true],
    // Only its own test request: no sign-in, step-up or reset request, even were one started for it.
    ['read-challenge', 'sign-in', false],
    ['decide-challenge', 'sign-in', false],
    ['decide-challenge', 'step-up', false],
    ['decide-challenge', 'reset', false],
    ['read-challenge', undefined, false],
    ['events', undefined, false],
    ['list-devices', undefined, false],
    ['rename', undefined, false],
    ['remove', undefined, false],
    ['push-subscription', undefined, false],
  ] as const)('a pending device: %s of a %s request → %s', (action, purpose, expected) => {
    expect(deviceMay('pending', action, purpose)).toBe(expected);
  });
});

describe('readDecision (the decision fields of a device request, issue #12 point 5)', () => {
  it.each([
    ['approve with digits', { decision: 'approve', number: '07' }, { decision: 'approve', number: '07' }],
    ['approve with spaces between digits', { decision: 'approve', number: ' 4 7 ' }, { decision: 'approve', number: ' 4 7 ' }],
    ['deny', { decision: 'deny' }, { decision: 'deny' }],
    // A number that is not needed is not read: a person denying a stranger's sign-in is never refused.
    ['deny with a stray number', { decision: 'deny', number: 47 }, { decision: 'deny' }],
    ['report', { decision: 'report', number: null }, { decision: 'report' }],
    ['approve without a number', { decision: 'approve' }, { refused: 'number-missing', field: 'number' }],
    ['approve with an empty number', { decision: 'approve', number: '  ' }, { refused: 'number-missing', field: 'number' }],
    // The number is a string so that leading zeros survive; anything else is refused, not guessed at.
    ['approve with a JSON number', { decision: 'approve', number: 47 }, { refused: 'number-invalid', field: 'number' }],
    ['approve with null', { decision: 'approve', number: null }, { refused: 'number-invalid', field: 'number' }],
    ['approve with an object', { decision: 'approve', number: { toString: 1 } }, { refused: 'number-invalid', field: 'number' }],
    ['approve with an array', { decision: 'approve', number: ['4', '7'] }, { refused: 'number-invalid', field: 'number' }],
    ['approve with a boolean', { decision: 'approve', number: true }, { refused: 'number-invalid', field: 'number' }],
    ['approve with letters', { decision: 'approve', number: '4a' }, { refused: 'number-invalid', field: 'number' }],
    ['approve with a very long number', { decision: 'approve', number: '1'.repeat(65) }, { refused: 'number-invalid', field: 'number' }],
    ['no decision', {}, { refused: 'request-invalid', field: 'decision' }],
    ['another word', { decision: 'allow' }, { refused: 'request-invalid', field: 'decision' }],
    ['a decision that is not a string', { decision: ['approve'] }, { refused: 'request-invalid', field: 'decision' }],
  ] as const)('%s', (_name, fields, expected) => {
    expect(readDecision(fields)).toEqual(expected);
  });
});

describe('deviceRequestWindow (the per-device request allowance, issue #12)', () => {
  it.each([
    ['at the start of a minute', '2026-11-28T12:00:00.000Z', 60],
    ['part way through', '2026-11-28T12:00:41.200Z', 19],
    ['in its last moment', '2026-11-28T12:00:59.999Z', 1],
  ])('%s: the window ends on the minute, %s s away', (_name, at, retryAfterSeconds) => {
    const window = deviceRequestWindow(new Date(at));
    expect(window.endsAt.toISOString()).toBe('2026-11-28T12:01:00.000Z');
    expect(window.retryAfterSeconds).toBe(retryAfterSeconds);
    // One counter per window: the same minute shares it, the next minute starts afresh.
    expect(deviceRequestWindow(new Date('2026-11-28T12:00:30.000Z')).key).toBe(window.key);
    expect(deviceRequestWindow(new Date('2026-11-28T12:01:00.000Z')).key).not.toBe(window.key);
  });
});

describe('readDeviceName and isWellFormedId (fields refused before any lookup, issue #12 point 5)', () => {
  it.each([
    ['Work phone', 'Work phone'],
    ['  Alex’s phone  ', 'Alex’s phone'],
    ['x'.repeat(60), 'x'.repeat(60)],
    ['x'.repeat(61), null],
    ['   ', null],
    ['a\u0000b', null], // PostgreSQL text cannot hold a NUL
    ['line\nbreak', null],
    [42, null],
    [null, null],
  ])('%j → %j', (value, expected) => {
    expect(readDeviceName(value)).toBe(expected);
  });

  it.each([
    ['0f8c5d0e-8d7a-4b7e-9d51-6a2f3c1e9b40', true],
    ['no-such-device', true],
    ['', false],
    ['a\u0000b', false],
    ['../x', false],
    ['x'.repeat(129), false],
    [7, false],
  ])('%j well formed: %s', (value, expected) => {
    expect(isWellFormedId(value)).toBe(expected);
  });
});

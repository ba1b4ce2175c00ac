import { describe, expect, it } from 'vitest';
import { checkRequestTime, decidePush, decidePushStart, numberDigitsFor, numberFromRandom, verifyPushStatus, type PushHistory } from './push.js';

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

import { describe, expect, it } from 'vitest';
import { codeFromRandom, decideCodeEntry, decideResend, DEFAULT_CODE_SETTINGS, type CodeChallengeState } from './one-time-codes.js';

const now = new Date('2026-11-28T10:00:00Z');
const seconds = (s: number) => new Date(now.getTime() + s * 1000);
const fresh: CodeChallengeState = { expiresAt: seconds(600), failedAttempts: 0, lastSentAt: now, consumed: false };

describe('decideCodeEntry', () => {
  it.each([
    ['the right code in time', fresh, true, '123456', { outcome: 'accept' }],
    ['a wrong code', fresh, false, '123456', { outcome: 'reject', reason: 'code-incorrect', countsAsFailure: true }],
    ['the fifth wrong code', { ...fresh, failedAttempts: 4 }, false, '123456', { outcome: 'reject', reason: 'code-too-many-attempts', countsAsFailure: true }],
    ['the right code after five wrong ones', { ...fresh, failedAttempts: 5 }, true, '123456', { outcome: 'reject', reason: 'code-too-many-attempts', countsAsFailure: false }],
    ['the right code after 10 minutes', { ...fresh, expiresAt: now }, true, '123456', { outcome: 'reject', reason: 'code-expired', countsAsFailure: false }],
    ['a code already used', { ...fresh, consumed: true }, true, '123456', { outcome: 'reject', reason: 'code-expired', countsAsFailure: false }],
    ['letters', fresh, false, 'abc123', { outcome: 'reject', reason: 'code-format', countsAsFailure: false }],
    ['spaces and dashes around the digits', fresh, true, '123 - 456', { outcome: 'accept' }],
  ] as const)('%s', (_name, state, matches, code, expected) => {
    expect(decideCodeEntry(state, { code, matches }, now, DEFAULT_CODE_SETTINGS)).toEqual(expected);
  });
});

describe('decideResend', () => {
  it('waits 30 seconds between codes', () => {
    expect(decideResend(fresh, seconds(10), DEFAULT_CODE_SETTINGS)).toEqual({ allowed: false, code: 'code-resend-too-soon', retryAfterSeconds: 20, message: '20 seconds' });
    expect(decideResend(fresh, seconds(30), DEFAULT_CODE_SETTINGS)).toEqual({ allowed: true, expiresAt: seconds(630) });
  });
  it.each([
    [4, true],
    [5, false],
    [9, false],
  ])('with %i wrong tries used, a new code is %s (issue #12: never send a code that can never work)', (failedAttempts, allowed) => {
    const decision = decideResend({ ...fresh, failedAttempts }, seconds(60), DEFAULT_CODE_SETTINGS);
    expect(decision.allowed).toBe(allowed);
    if (!decision.allowed) expect(decision).toEqual({ allowed: false, code: 'code-resend-exhausted' });
  });
});

describe('codeFromRandom', () => {
  it('gives six digits, zero-padded', () => {
    expect(codeFromRandom(() => 42)).toBe('000042');
    expect(codeFromRandom(() => 4_293_999_999)).toBe('999999');
  });
  it('rejects values that would bias the result (rejection sampling)', () => {
    const values = [4_294_967_295, 4_294_000_000, 7];
    expect(codeFromRandom(() => values.shift()!)).toBe('000007');
  });
});

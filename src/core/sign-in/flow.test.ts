import { describe, expect, it } from 'vitest';
import { reduceSignIn, startSignIn, type AccountSnapshot, type SignInState } from './flow.js';

const now = new Date('2026-11-28T09:00:00Z');
const passwordStep: SignInState = { step: 'password', email: 'alex@example.org', returnTo: '/account' };
const account: AccountSnapshot = { id: 'u1', email: 'alex@example.org', status: 'active', hasPassword: true };
const allowed = { allowed: true } as const;

describe('reduceSignIn: the email step', () => {
  it('moves a well-formed address, normalised, to the password step', () => {
    const result = reduceSignIn(startSignIn('/x'), { type: 'email-submitted', email: '  Alex@Example.ORG ' }, now);
    expect(result).toEqual({ state: { step: 'password', email: 'alex@example.org', returnTo: '/x' }, effects: [], error: null });
  });

  it.each([
    ['', 'email-missing'],
    ['   ', 'email-missing'],
    ['alex', 'email-invalid'],
  ])('keeps %j at the email step with %s', (email, code) => {
    const result = reduceSignIn(startSignIn('/account'), { type: 'email-submitted', email }, now);
    expect(result.state.step).toBe('identify');
    expect(result.error).toMatchObject({ code, field: 'email' });
    expect(result.effects).toEqual([]);
  });

  it('never looks the address up: no effect reveals whether an account exists', () => {
    expect(reduceSignIn(startSignIn('/account'), { type: 'email-submitted', email: 'anyone@example.org' }, now).effects).toEqual([]);
  });
});

describe('reduceSignIn: the password step', () => {
  it('asks for a password when none was typed, without verifying', () => {
    const result = reduceSignIn(passwordStep, { type: 'password-submitted', passwordGiven: false, throttle: allowed }, now);
    expect(result.error).toMatchObject({ code: 'password-missing' });
    expect(result.effects).toEqual([]);
  });

  it('asks the server to verify when the address is not throttled', () => {
    const result = reduceSignIn(passwordStep, { type: 'password-submitted', passwordGiven: true, throttle: allowed }, now);
    expect(result.effects).toEqual([{ type: 'verify-password', email: 'alex@example.org' }]);
    expect(result.error).toBeNull();
  });

  it('refuses a throttled attempt without verifying, with the wait, and audits it', () => {
    const result = reduceSignIn(
      passwordStep,
      { type: 'password-submitted', passwordGiven: true, throttle: { allowed: false, reason: 'throttled-account', retryAfterSeconds: 90 } },
      now,
    );
    expect(result.error).toEqual({ code: 'sign-in-throttled', params: { wait: '2 minutes' }, field: 'password', retryAfterSeconds: 90 });
    expect(result.effects.map((e) => e.type)).toEqual(['audit', 'count-sign-in']);
    expect(result.effects).not.toContainEqual(expect.objectContaining({ type: 'verify-password' }));
    expect(result.effects).toContainEqual({ type: 'count-sign-in', reason: 'throttled-account' });
  });

  it.each([
    ['an unknown address', null, false, 'unknown-account'],
    ['an account with no password yet', { ...account, hasPassword: false }, false, 'no-password-set'],
    ['a wrong password', account, false, 'password-incorrect'],
  ] as const)('gives %s the same error and counts a failure', (_name, snapshot, correct, reason) => {
    const result = reduceSignIn(passwordStep, { type: 'password-verified', account: snapshot, passwordCorrect: correct, needsRehash: false }, now);
    expect(result.state).toBe(passwordStep);
    expect(result.error).toEqual({ code: 'credentials-incorrect', params: {}, field: 'password' });
    expect(result.effects[0]).toEqual({ type: 'record-password-failure', email: 'alex@example.org' });
    expect(result.effects).toContainEqual({ type: 'count-sign-in', reason });
    const audit = result.effects.find((e) => e.type === 'audit');
    expect(audit).toMatchObject({ event: { type: 'sign-in.failed', details: { reason, email: 'alex@example.org' } } });
  });

  it('completes with the password recorded as a method, clears failures and audits success', () => {
    const result = reduceSignIn(passwordStep, { type: 'password-verified', account, passwordCorrect: true, needsRehash: false }, now);
    expect(result.state).toEqual({
      step: 'complete',
      userId: 'u1',
      methods: [{ method: 'password', at: now.toISOString() }],
      restricted: null,
      returnTo: '/account',
    });
    expect(result.effects.map((e) => e.type)).toEqual(['clear-password-failures', 'audit', 'count-sign-in']);
  });

  it('asks for a rehash when the stored hash uses older parameters', () => {
    const result = reduceSignIn(passwordStep, { type: 'password-verified', account, passwordCorrect: true, needsRehash: true }, now);
    expect(result.effects).toContainEqual({ type: 'rehash-password', userId: 'u1' });
  });

  it('tells a disabled account only after the right password, and does not sign in', () => {
    const disabled = { ...account, status: 'disabled' as const };
    const right = reduceSignIn(passwordStep, { type: 'password-verified', account: disabled, passwordCorrect: true, needsRehash: false }, now);
    expect(right.state.step).toBe('password');
    expect(right.error?.code).toBe('account-disabled');
    const wrong = reduceSignIn(passwordStep, { type: 'password-verified', account: disabled, passwordCorrect: false, needsRehash: false }, now);
    expect(wrong.error?.code).toBe('credentials-incorrect');
  });

  it('goes back to the email step on "Change"', () => {
    expect(reduceSignIn(passwordStep, { type: 'change-email' }, now).state).toEqual(startSignIn('/account'));
  });

  it('ignores events that do not belong to the step', () => {
    expect(reduceSignIn(startSignIn('/a'), { type: 'password-verified', account, passwordCorrect: true, needsRehash: false }, now).state.step).toBe('identify');
    const complete = reduceSignIn(passwordStep, { type: 'password-verified', account, passwordCorrect: true, needsRehash: false }, now).state;
    expect(reduceSignIn(complete, { type: 'email-submitted', email: 'x@example.org' }, now)).toEqual({ state: complete, effects: [], error: null });
  });
});

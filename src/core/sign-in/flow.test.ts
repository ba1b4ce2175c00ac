import { describe, expect, it } from 'vitest';
import { reduceSignIn, startSignIn, startStepUp, UNRESTRICTED, type AccountSnapshot, type SignInPolicy, type SignInState } from './flow.js';

const now = new Date('2026-11-28T09:00:00Z');
const passwordStep: SignInState = { step: 'password', email: 'alex@example.org', returnTo: '/account' };
const account: AccountSnapshot = { id: 'u1', email: 'alex@example.org', status: 'active', hasPassword: true, secondFactors: [], defaultMethodId: null, policy: UNRESTRICTED };
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

  it('completes with the password alone when the user has no second method, offering to set one up', () => {
    const result = reduceSignIn(passwordStep, { type: 'password-verified', account, passwordCorrect: true, needsRehash: false }, now);
    expect(result.state).toEqual({
      step: 'complete',
      purpose: 'sign-in',
      userId: 'u1',
      methods: [{ method: 'password', at: now.toISOString() }],
      restricted: null,
      offerRegistration: true,
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

const totp = { id: 'm-totp', kind: 'totp' as const, detail: 'Authenticator app' };
const sms = { id: 'm-sms', kind: 'sms' as const, detail: '+44 7••• ••• 456' };
const voice = { id: 'm-voice', kind: 'voice' as const, detail: '+44 7••• ••• 789' };
const withMethods = (defaultMethodId: string | null): AccountSnapshot => ({ ...account, secondFactors: [sms, voice, totp], defaultMethodId });

describe('reduceSignIn: the second factor', () => {
  it.each([
    ['the default method', 'm-sms', 'm-sms'],
    ['the strongest method when there is no default (system-preferred)', null, 'm-totp'],
    ['the strongest method when the default is gone', 'm-deleted', 'm-totp'],
  ])('prompts %s after the password', (_name, defaultMethodId, expected) => {
    const result = reduceSignIn(passwordStep, { type: 'password-verified', account: withMethods(defaultMethodId), passwordCorrect: true, needsRehash: false }, now);
    expect(result.state.step).toBe('second-factor');
    if (result.state.step !== 'second-factor') return;
    expect(result.state.current).toEqual({ methodId: expected, kind: expected === 'm-sms' ? 'sms' : 'totp', challengeId: null });
    expect(result.state.options[0]!.id).toBe(expected);
    expect(result.effects).toContainEqual({ type: 'begin-challenge', userId: 'u1', methodId: expected, kind: expected === 'm-sms' ? 'sms' : 'totp' });
    // No session yet: nothing is audited as a success before the second factor.
    expect(result.effects.some((e) => e.type === 'audit')).toBe(false);
  });

  const second = (): Extract<SignInState, { step: 'second-factor' }> => {
    const state = reduceSignIn(passwordStep, { type: 'password-verified', account: withMethods(null), passwordCorrect: true, needsRehash: false }, now).state;
    if (state.step !== 'second-factor') throw new Error('expected the second-factor step');
    return reduceSignIn(state, { type: 'challenge-started', challengeId: 'c1' }, now).state as Extract<SignInState, { step: 'second-factor' }>;
  };

  it('asks the server to verify a typed code, with the challenge it started', () => {
    const result = reduceSignIn(second(), { type: 'code-submitted', codeGiven: true, throttle: allowed }, now);
    expect(result.effects).toEqual([{ type: 'verify-code', userId: 'u1', methodId: 'm-totp', kind: 'totp', challengeId: 'c1' }]);
  });

  it('asks for the code when none was typed', () => {
    expect(reduceSignIn(second(), { type: 'code-submitted', codeGiven: false, throttle: allowed }, now).error?.code).toBe('code-missing');
  });

  it('refuses without verifying when the user is locked after wrong codes', () => {
    const result = reduceSignIn(second(), { type: 'code-submitted', codeGiven: true, throttle: { allowed: false, reason: 'throttled-account', retryAfterSeconds: 60 } }, now);
    expect(result.error).toMatchObject({ code: 'second-factor-throttled', params: { wait: '1 minute' } });
    expect(result.effects.some((e) => e.type === 'verify-code')).toBe(false);
    expect(result.effects).toContainEqual({ type: 'count-sign-in', reason: 'throttled' });
  });

  it.each([
    ['code-incorrect', 'code-incorrect', 'code-incorrect', true],
    ['code-reused', 'code-incorrect', 'code-reused', true],
    ['code-expired', 'code-expired', 'code-expired', false],
    ['code-too-many-attempts', 'code-too-many-attempts', 'too-many-attempts', true],
  ] as const)('a verification failing with %s shows %s, logs %s', (reason, shown, logged, counts) => {
    const result = reduceSignIn(second(), { type: 'code-verified', result: { ok: false, reason } }, now);
    expect(result.state.step).toBe('second-factor');
    expect(result.error?.code).toBe(shown);
    expect(result.effects).toContainEqual({ type: 'count-sign-in', reason: logged });
    const audit = result.effects.find((e) => e.type === 'audit');
    expect(audit).toMatchObject({ event: { type: 'sign-in.failed', details: { method: 'totp', reason: logged } } });
    expect(result.effects.some((e) => e.type === 'record-second-factor-failure')).toBe(counts);
  });

  it('completes with both methods recorded when the code is right', () => {
    const later = new Date(now.getTime() + 20_000);
    const result = reduceSignIn(second(), { type: 'code-verified', result: { ok: true } }, later);
    expect(result.state).toMatchObject({
      step: 'complete',
      purpose: 'sign-in',
      offerRegistration: false,
      methods: [
        { method: 'password', at: now.toISOString() },
        { method: 'totp', at: later.toISOString() },
      ],
    });
    expect(result.effects).toContainEqual({ type: 'clear-second-factor-failures', userId: 'u1' });
    expect(result.effects).toContainEqual(expect.objectContaining({ type: 'audit', event: expect.objectContaining({ type: 'sign-in.succeeded', details: { methods: ['password', 'totp'], purpose: 'sign-in' } }) }));
  });

  it('switches to another of the user\'s methods ("Sign in another way"), and only to one of theirs', () => {
    const switched = reduceSignIn(second(), { type: 'method-chosen', methodId: 'm-voice' }, now);
    expect(switched.state).toMatchObject({ current: { methodId: 'm-voice', kind: 'voice', challengeId: null } });
    expect(switched.effects).toEqual([{ type: 'begin-challenge', userId: 'u1', methodId: 'm-voice', kind: 'voice' }]);
    const foreign = reduceSignIn(second(), { type: 'method-chosen', methodId: 'someone-elses' }, now);
    expect(foreign.error?.code).toBe('method-choice-missing');
    expect(foreign.effects).toEqual([]);
  });

  it('shows a refused challenge (a quota) and stays', () => {
    const result = reduceSignIn(second(), { type: 'challenge-refused', error: { code: 'phone-quota-user', params: { wait: '5 minutes' } } }, now);
    expect(result.error?.code).toBe('phone-quota-user');
    expect(result.state.step).toBe('second-factor');
  });

  it('completes on an outside approval only for the challenge it is waiting on', () => {
    expect(reduceSignIn(second(), { type: 'challenge-completed', challengeId: 'other' }, now).state.step).toBe('second-factor');
    expect(reduceSignIn(second(), { type: 'challenge-completed', challengeId: 'c1' }, now).state.step).toBe('complete');
  });
});

describe('startStepUp', () => {
  it('starts at the default method for someone signed in, keeping the methods already used', () => {
    const state = startStepUp({ userId: 'u1', email: 'a@example.org', options: [sms, totp], defaultMethodId: 'm-sms', methods: [{ method: 'password', at: 'x' }], returnTo: '/security-info' });
    expect(state).toMatchObject({ step: 'second-factor', purpose: 'step-up', current: { methodId: 'm-sms' }, methods: [{ method: 'password', at: 'x' }] });
  });
  it('cannot step up without a second method', () => {
    expect(startStepUp({ userId: 'u1', email: 'a@example.org', options: [], defaultMethodId: null, methods: [], returnTo: '/' })).toBeNull();
  });
});

describe('reduceSignIn: the method policy decides what is offered and the session it opens', () => {
  const signIn = (policy: SignInPolicy, secondFactors = [sms, totp]) =>
    reduceSignIn(passwordStep, { type: 'password-verified', account: { ...account, secondFactors, defaultMethodId: 'm-sms', policy }, passwordCorrect: true, needsRehash: false }, now);
  const finishWith = (state: SignInState, methodId?: string) => {
    let current = state;
    if (methodId) current = reduceSignIn(current, { type: 'method-chosen', methodId }, now).state;
    current = reduceSignIn(current, { type: 'challenge-started', challengeId: null }, now).state;
    return reduceSignIn(current, { type: 'code-verified', result: { ok: true } }, now);
  };

  it('offers only the methods the server says the policy allows: another method is neither offered nor accepted', () => {
    const result = signIn(UNRESTRICTED, [totp]);
    expect(result.state).toMatchObject({ step: 'second-factor', options: [totp], current: { methodId: 'm-totp' } });
    const refused = reduceSignIn(result.state, { type: 'method-chosen', methodId: 'm-sms' }, now);
    expect(refused.error?.code).toBe('method-choice-missing');
    expect(refused.effects).toEqual([]);
  });

  it('opens a restricted session when the allowed methods only open the registration door (in grace)', () => {
    const result = finishWith(signIn({ session: 'registration-only', tap: false, tapFullSession: false }).state);
    expect(result.state).toMatchObject({ step: 'complete', restricted: 'registration-only' });
    expect(result.effects).toContainEqual(expect.objectContaining({ type: 'audit', event: expect.objectContaining({ details: expect.objectContaining({ restricted: 'registration-only' }) }) }));
  });

  it('offers a live Temporary Access Pass first, even before the default', () => {
    const result = signIn({ session: 'full', tap: true, tapFullSession: false });
    expect(result.state).toMatchObject({ step: 'second-factor', current: { methodId: 'tap', kind: 'tap' } });
    if (result.state.step !== 'second-factor') return;
    expect(result.state.options.map((o) => o.id)).toEqual(['tap', 'm-sms', 'm-totp']);
    expect(result.effects).toContainEqual({ type: 'begin-challenge', userId: 'u1', methodId: 'tap', kind: 'tap' });
  });

  it('a pass opens a session restricted to Security info, or a full one when the policy allows it for onboarding', () => {
    expect(finishWith(signIn({ session: 'full', tap: true, tapFullSession: false }).state).state).toMatchObject({ step: 'complete', restricted: 'registration-only', methods: [{ method: 'password' }, { method: 'tap' }] });
    expect(finishWith(signIn({ session: 'full', tap: true, tapFullSession: true }).state).state).toMatchObject({ step: 'complete', restricted: null });
  });

  it('signing in another way than the pass opens the session the policy decided', () => {
    expect(finishWith(signIn({ session: 'full', tap: true, tapFullSession: false }).state, 'm-totp').state).toMatchObject({ step: 'complete', restricted: null });
  });

  it('after grace, only a pass: offered alone when there is one', () => {
    const result = signIn({ session: 'tap-only', tap: true, tapFullSession: false });
    expect(result.state).toMatchObject({ step: 'second-factor', options: [{ id: 'tap' }] });
  });

  it('after grace with no pass: refused with the reason, at the password step, the password failures cleared', () => {
    const result = signIn({ session: 'tap-only', tap: false, tapFullSession: false });
    expect(result.state.step).toBe('password');
    expect(result.error?.code).toBe('policy-needs-tap');
    expect(result.effects).toContainEqual({ type: 'clear-password-failures', email: 'alex@example.org' });
    expect(result.effects).toContainEqual({ type: 'count-sign-in', reason: 'policy-needs-tap' });
    expect(result.effects.some((e) => e.type === 'begin-challenge')).toBe(false);
  });

  it('carries a campaign due at the password to the finished sign-in, through any second factor, and only then', () => {
    const due: SignInPolicy = { ...UNRESTRICTED, campaignDue: true };
    expect(finishWith(signIn(due).state).state).toMatchObject({ step: 'complete', campaignDue: true });
    expect(finishWith(signIn(due).state, 'm-totp').state).toMatchObject({ step: 'complete', campaignDue: true });
    expect(signIn(due, []).state).toMatchObject({ step: 'complete', offerRegistration: true, campaignDue: true });
    expect(finishWith(signIn(UNRESTRICTED).state).state).not.toHaveProperty('campaignDue');
  });

  it('with no method and registration due: a restricted session that may register a first method', () => {
    expect(signIn({ session: 'registration-only', tap: false, tapFullSession: false }, []).state).toMatchObject({ step: 'complete', restricted: 'registration-only', offerRegistration: true });
    expect(signIn(UNRESTRICTED, []).state).toMatchObject({ step: 'complete', restricted: null, offerRegistration: true });
  });

  // Issue #12: the password alone, and the registration grant, are only for someone with no method at all.
  it.each<[string, SignInPolicy]>([
    ['a full session', { ...UNRESTRICTED, hasRegisteredMethod: true }],
    ['a restricted session', { session: 'registration-only', tap: false, tapFullSession: false, hasRegisteredMethod: true }],
  ])('a registered person offered nothing is refused at the password rather than given %s', (_name, policy) => {
    const result = signIn(policy, []);
    expect(result.state.step).toBe('password');
    expect(result.error?.code).toBe('policy-needs-tap');
    expect(result.effects).toContainEqual({ type: 'count-sign-in', reason: 'policy-needs-tap' });
    expect(result.effects.some((e) => e.type === 'audit' && e.event.type === 'sign-in.succeeded')).toBe(false);
    // With a method offered (their own, during grace) they go on to it as anyone would.
    expect(signIn(policy, [sms]).state).toMatchObject({ step: 'second-factor', options: [sms] });
  });
});

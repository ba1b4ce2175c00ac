import { describe, expect, it } from 'vitest';
import type { MethodKind } from '../methods.js';
import { ACR } from './acr.js';
import { decideLogin, type LoginRequest, type LoginSession } from './login.js';

const now = new Date('2025-03-01T12:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);
const request = (over: Partial<LoginRequest> = {}): LoginRequest => ({ promptLogin: false, maxAge: undefined, askedAcr: [], startedAt: minutesAgo(1), ...over });
const session = (methods: MethodKind[], signedInAt = minutesAgo(30), restricted = false): LoginSession => ({
  userId: 'u1',
  signedInAt,
  methods: methods.map((method) => ({ method, at: signedInAt.toISOString() })),
  restricted,
});

describe('decideLogin: may this Portcullis session answer the login prompt?', () => {
  it.each<[string, LoginRequest, LoginSession | null, MethodKind[], string]>([
    ['nobody signed in', request(), null, ['totp'], 'sign-in:no-session'],
    ['a session restricted by the policy', request(), session(['password'], minutesAgo(1), true), [], 'sign-in:no-session'],
    ['signed in, nothing asked', request(), session(['password', 'totp']), ['totp'], 'finish'],
    // OpenID Connect Core 1.0 §3.1.2.1 prompt=login and max_age.
    ['prompt=login, signed in before the interaction', request({ promptLogin: true }), session(['password', 'totp']), ['totp'], 'sign-in:fresh-sign-in'],
    ['prompt=login, signed in since it began', request({ promptLogin: true }), session(['password', 'totp'], minutesAgo(0.5)), ['totp'], 'finish'],
    ['max_age=0, signed in before', request({ maxAge: 0 }), session(['password', 'totp']), ['totp'], 'sign-in:fresh-sign-in'],
    ['max_age=0, signed in since it began', request({ maxAge: 0 }), session(['password', 'totp'], minutesAgo(0.5)), ['totp'], 'finish'],
    ['max_age older than the sign-in', request({ maxAge: 3600 }), session(['password', 'totp']), ['totp'], 'finish'],
    ['max_age younger than the sign-in', request({ maxAge: 600 }), session(['password', 'totp']), ['totp'], 'sign-in:fresh-sign-in'],
    // acr_values.
    ['mfa asked, password-only session, totp registered', request({ askedAcr: [ACR.mfa] }), session(['password']), ['totp'], 'step-up'],
    ['mfa asked, password-only session, nothing registered', request({ askedAcr: [ACR.mfa] }), session(['password']), [], 'unreachable'],
    ['app-push asked, totp session, push registered', request({ askedAcr: [ACR.appPush] }), session(['password', 'totp']), ['totp', 'push'], 'step-up'],
    ['app-push asked, no push registered', request({ askedAcr: [ACR.appPush] }), session(['password', 'totp']), ['totp', 'sms'], 'unreachable'],
    ['an unknown acr', request({ askedAcr: ['urn:elsewhere:loa:3'] }), session(['password', 'push']), ['push'], 'unreachable'],
    ['app-push asked, push session', request({ askedAcr: [ACR.appPush] }), session(['password', 'push']), ['push'], 'finish'],
    // Freshness first: a stale session is not asked to step up, the person signs in again.
    ['stale and too weak', request({ maxAge: 0, askedAcr: [ACR.mfa] }), session(['password']), ['totp'], 'sign-in:fresh-sign-in'],
  ])('%s', (_what, req, sess, usable, expected) => {
    const decision = decideLogin(req, sess, usable, now);
    expect(decision.action === 'sign-in' ? `sign-in:${decision.reason}` : decision.action).toBe(expected);
  });

  it('does not take a sign-in in the same second as the interaction began for a fresh one (iat has whole seconds)', () => {
    const startedAt = new Date('2025-03-01T11:59:00.000Z');
    const sameSecond = session(['password', 'totp'], new Date('2025-03-01T11:59:00.900Z'));
    expect(decideLogin(request({ maxAge: 0, startedAt }), sameSecond, ['totp'], now).action).toBe('sign-in');
    const nextSecond = session(['password', 'totp'], new Date('2025-03-01T11:59:01.000Z'));
    expect(decideLogin(request({ maxAge: 0, startedAt }), nextSecond, ['totp'], now).action).toBe('finish');
  });

  it('finishes with the acr asked, the session amr and the sign-in time', () => {
    const signedInAt = minutesAgo(5);
    const decision = decideLogin(request({ askedAcr: [ACR.mfa] }), session(['password', 'push'], signedInAt), ['push'], now);
    expect(decision).toEqual({ action: 'finish', accountId: 'u1', acr: ACR.mfa, amr: ['pwd', 'swk', 'mfa'], authTime: Math.floor(signedInAt.getTime() / 1000) });
  });
});

import { describe, expect, it } from 'vitest';
import type { MethodKind, MethodUse } from '../methods.js';
import { ACR, acrReachedBy, amrFor, askedAcrValues, decideAcr } from './acr.js';

const uses = (...methods: MethodKind[]): MethodUse[] => methods.map((method, i) => ({ method, at: `2025-01-01T00:00:0${i}Z` }));

describe('acrReachedBy: the strongest class the methods used reach', () => {
  it.each<[MethodKind[], string | null]>([
    [[], null],
    [['password'], ACR.password],
    [['password', 'totp'], ACR.mfa],
    [['password', 'sms'], ACR.mfa],
    [['password', 'voice'], ACR.mfa],
    [['password', 'tap'], ACR.mfa],
    [['password', 'push'], ACR.appPush],
    [['password', 'totp', 'push'], ACR.appPush],
    [['password', 'passkey'], ACR.phishingResistant],
    // An emailed code never counts: it only starts a reset.
    [['email'], null],
  ])('%j → %s', (methods, expected) => expect(acrReachedBy(methods)).toBe(expected));
});

describe('decideAcr: met by the first asked class reached, never a weaker one (RFC 9470 §3)', () => {
  it.each<[string, string[], string | null, string | false]>([
    ['nothing asked: the class reached', [], ACR.mfa, ACR.mfa],
    ['mfa asked, mfa reached', [ACR.mfa], ACR.mfa, ACR.mfa],
    ['mfa asked, push reached: claims what was asked', [ACR.mfa], ACR.appPush, ACR.mfa],
    ['password asked, mfa reached', [ACR.password], ACR.mfa, ACR.password],
    ['preference order: the first met wins', [ACR.appPush, ACR.mfa], ACR.mfa, ACR.mfa],
    ['preference order: the stronger first, when met', [ACR.appPush, ACR.mfa], ACR.appPush, ACR.appPush],
    // Negative cases: never a downgrade.
    ['mfa asked, password only', [ACR.mfa], ACR.password, false],
    ['app-push asked, mfa reached', [ACR.appPush], ACR.mfa, false],
    ['phishing-resistant asked, push reached', [ACR.phishingResistant], ACR.appPush, false],
    ['an unknown class is never met', ['urn:elsewhere:loa:3'], ACR.phishingResistant, false],
    ['no method at all', [], null, false],
  ])('%s', (_what, asked, reached, expected) => {
    const decision = decideAcr(asked, reached as Parameters<typeof decideAcr>[1]);
    expect(decision.met ? decision.acr : false).toBe(expected);
  });
});

describe('amrFor: RFC 8176 §2 values of the methods used', () => {
  it.each<[MethodKind[], string[]]>([
    [['password'], ['pwd']],
    [['password', 'totp'], ['pwd', 'otp', 'mfa']],
    [['password', 'sms'], ['pwd', 'sms', 'mfa']],
    [['password', 'voice'], ['pwd', 'tel', 'mfa']],
    [['password', 'push'], ['pwd', 'swk', 'mfa']],
    // One value per kind; a step-up with the same method adds nothing.
    [['password', 'totp', 'totp'], ['pwd', 'otp', 'mfa']],
    [['password', 'totp', 'push'], ['pwd', 'otp', 'swk', 'mfa']],
    // TOTP and a pass are both `otp`, but two kinds of factor beside the password.
    [['password', 'tap', 'totp'], ['pwd', 'otp', 'mfa']],
  ])('%j → %j', (methods, expected) => expect(amrFor(uses(...methods))).toEqual(expected));
});

describe('askedAcrValues', () => {
  it('splits acr_values on spaces (OpenID Connect Core 1.0 §3.1.2.1) and adds the claims request, once each', () => {
    expect(askedAcrValues(`${ACR.appPush}  ${ACR.mfa}`, [ACR.mfa, ACR.password])).toEqual([ACR.appPush, ACR.mfa, ACR.password]);
    expect(askedAcrValues(undefined)).toEqual([]);
  });

  it('leaves out voluntary classes it does not define (OpenID Connect Core 1.0 §3.1.2.1), never an essential one (§5.5.1.1)', () => {
    expect(askedAcrValues(`1 ${ACR.mfa} urn:elsewhere:loa:3`)).toEqual([ACR.mfa]);
    expect(askedAcrValues('1 2')).toEqual([]);
    expect(askedAcrValues('1', ['urn:elsewhere:loa:3'])).toEqual(['urn:elsewhere:loa:3']);
  });
});

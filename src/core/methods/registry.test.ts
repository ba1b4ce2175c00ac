/**
 * The registry read from the method units' definitions (issue #14): one list, the system-preferred
 * order with a passkey first, the strengths each kind meets, and recovery codes as a backup only.
 */
import { describe, expect, it } from 'vitest';
import { amrValues, methodKinds } from '../methods.js';
import { acrReachedBy, ACR } from '../oidc/acr.js';
import { BUILT_IN_STRENGTHS } from '../policy/document.js';
import { KIND_BITS } from '../policy/profile.js';
import { isSecondFactorKind, methodDefinitions, methodToPrompt, orderMethods, secondFactorKinds } from './registry.js';

describe('the method registry', () => {
  it('lists every kind once, with its own RFC 8176 amr', () => {
    expect(new Set(secondFactorKinds).size).toBe(secondFactorKinds.length);
    expect([...methodKinds].sort()).toEqual(['email', 'password', ...secondFactorKinds].sort());
    expect(amrValues).toMatchObject({ password: 'pwd', totp: 'otp', sms: 'sms', voice: 'tel', push: 'swk', passkey: 'hwk', 'recovery-code': 'otp' });
    expect(isSecondFactorKind('passkey')).toBe(true);
    expect(isSecondFactorKind('toString')).toBe(false);
  });

  it('puts a passkey first in the system-preferred order, then push, the app code, phones and recovery codes', () => {
    const methods = (['sms', 'recovery-code', 'totp', 'passkey', 'push'] as const).map((kind, i) => ({ id: `m${i}`, kind, detail: '' }));
    expect(orderMethods(methods, null).map((m) => m.kind)).toEqual(['passkey', 'push', 'totp', 'sms', 'recovery-code']);
    expect(methodToPrompt(methods, null)?.kind).toBe('passkey');
    // A chosen default still comes first.
    expect(methodToPrompt(methods, 'm0')?.kind).toBe('sms');
  });

  it('derives the built-in strengths from what each definition meets: passkeys meet all three, recovery codes only mfa', () => {
    expect(BUILT_IN_STRENGTHS['phishing-resistant']).toEqual(['passkey']);
    expect([...BUILT_IN_STRENGTHS['app-push']!].sort()).toEqual(['passkey', 'push']);
    expect(BUILT_IN_STRENGTHS.mfa).toContain('recovery-code');
    expect(BUILT_IN_STRENGTHS['app-push']).not.toContain('recovery-code');
    expect(BUILT_IN_STRENGTHS.mfa).not.toContain('tap');
    expect(methodDefinitions['recovery-code'].backupOnly).toBe(true);
  });

  it('reaches the acr class of the strongest strength a method meets', () => {
    expect(acrReachedBy(['password', 'passkey'])).toBe(ACR.phishingResistant);
    expect(acrReachedBy(['password', 'push'])).toBe(ACR.appPush);
    expect(acrReachedBy(['password', 'recovery-code'])).toBe(ACR.mfa);
    expect(acrReachedBy(['password', 'tap'])).toBe(ACR.mfa);
    expect(acrReachedBy(['password'])).toBe(ACR.password);
  });

  it('gives each registered kind its own profile bit, and a pass none', () => {
    expect(KIND_BITS.map(([kind]) => kind)).not.toContain('tap');
    expect(Object.fromEntries(KIND_BITS)['recovery-code']).toBe(32);
  });
});

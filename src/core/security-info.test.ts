import { describe, expect, it } from 'vitest';
import { decideChangeAccess, type ChangeAccessInput } from './security-info.js';

const now = new Date('2026-11-28T12:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000);
const base: ChangeAccessInput = { action: 'change', lastSecondFactorAt: null, activeMethodCount: 1, registrationGrantUntil: null, now, freshnessSeconds: 600 };

describe('decideChangeAccess (NIST SP 800-63B §6.1.2.1: binding needs an existing factor)', () => {
  it.each([
    ['a second factor 2 minutes ago', { lastSecondFactorAt: minutesAgo(2) }, { allowed: true, via: 'recent-second-factor' }],
    ['a second factor exactly 10 minutes ago', { lastSecondFactorAt: minutesAgo(10) }, { allowed: true, via: 'recent-second-factor' }],
    ['a second factor 11 minutes ago', { lastSecondFactorAt: minutesAgo(11) }, { allowed: false, need: 'step-up' }],
    ['only a password', {}, { allowed: false, need: 'step-up' }],
    ['a second factor dated in the future', { lastSecondFactorAt: new Date(now.getTime() + 60_000) }, { allowed: false, need: 'step-up' }],
    [
      'no method, right after the password, adding one',
      { action: 'add-method', activeMethodCount: 0, registrationGrantUntil: new Date(now.getTime() + 60_000) },
      { allowed: true, via: 'registration-grant' },
    ],
    [
      'no method, grant expired',
      { action: 'add-method', activeMethodCount: 0, registrationGrantUntil: minutesAgo(1) },
      { allowed: false, need: 'step-up' },
    ],
    [
      'a grant does not cover a second method',
      { action: 'add-method', activeMethodCount: 1, registrationGrantUntil: new Date(now.getTime() + 60_000) },
      { allowed: false, need: 'step-up' },
    ],
    [
      // Issue #12: a method the policy no longer enables still counts; they must use it (step-up) instead.
      'a grant does not cover someone whose only method the policy turned off',
      { action: 'add-method', activeMethodCount: 1, lastSecondFactorAt: null, registrationGrantUntil: new Date(now.getTime() + 60_000) },
      { allowed: false, need: 'step-up' },
    ],
    [
      'having used that method just now, they may add an allowed one',
      { action: 'add-method', activeMethodCount: 1, lastSecondFactorAt: minutesAgo(1), registrationGrantUntil: null },
      { allowed: true, via: 'recent-second-factor' },
    ],
    [
      'a grant does not cover other changes',
      { action: 'change', activeMethodCount: 0, registrationGrantUntil: new Date(now.getTime() + 60_000) },
      { allowed: false, need: 'step-up' },
    ],
  ] as const)('%s', (_name, overrides, expected) => {
    expect(decideChangeAccess({ ...base, ...overrides })).toEqual(expected);
  });
});

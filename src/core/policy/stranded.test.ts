/**
 * Who a new policy document would strand (issue #12): people whose registered methods it turns off,
 * every one. Counted per policy profile (ADR 0006), by role.
 */
import { describe, expect, it } from 'vitest';
import type { SecondFactorKind } from '../methods/registry.js';
import { countStranded, NO_ROLE, strands } from './stranded.js';
import { compile, example } from '../../../test/helpers/policy.js';

const ELEVATED = new Set(['global-admin', 'local-admin', 'helpdesk']);
const profile = (roles: string[], kinds: SecondFactorKind[], groups: string[] = []) => ({ roles, groups, kinds });

/** The example with texts and calls turned off for elevated roles, and for a group of contractors. */
const noPhones = compile({
  version: 1,
  methods: {
    sms: { enabled: true, exclude: ['elevated', 'group:contractors'] },
    voice: { enabled: true, exclude: ['elevated'] },
    totp: { enabled: true, include: ['role:helpdesk'] },
    push: { enabled: true },
  },
});

describe('strands', () => {
  it.each<[string, ReturnType<typeof profile>, boolean]>([
    ['an administrator with only texts', profile(['global-admin', 'user'], ['sms']), true],
    ['an administrator with texts and calls', profile(['global-admin', 'user'], ['sms', 'voice']), true],
    ['an administrator with texts and push', profile(['global-admin', 'user'], ['sms', 'push']), false],
    ['a helpdesk member with texts and an app’s codes (enabled for helpdesk)', profile(['helpdesk', 'user'], ['sms', 'totp']), false],
    ['a typical user with an app’s codes (enabled only for helpdesk)', profile(['user'], ['totp']), true],
    ['a typical user with texts', profile(['user'], ['sms']), false],
    ['a contractor with texts', profile(['user'], ['sms'], ['contractors']), true],
    ['nobody with no method: they have the registration grant', profile(['global-admin', 'user'], []), false],
  ])('%s: %s', (_name, p, expected) => {
    expect(strands(noPhones, p, ELEVATED)).toBe(expected);
  });

  it('the shipped example strands nobody: every method is enabled for everyone', () => {
    for (const kinds of [['sms'], ['voice'], ['totp'], ['push']] as SecondFactorKind[][]) expect(strands(example(), profile(['global-admin', 'user'], kinds), ELEVATED)).toBe(false);
  });
});

describe('countStranded', () => {
  it('counts people per profile, by each role they hold, most first', () => {
    const counted = countStranded(
      noPhones,
      [
        { profile: profile(['global-admin', 'user'], ['sms']), users: 3 },
        { profile: profile(['helpdesk', 'user'], ['voice']), users: 2 },
        { profile: profile(['global-admin', 'user'], ['sms', 'push']), users: 40 }, // not stranded
        { profile: profile(['user'], ['sms']), users: 1000 }, // not stranded
        { profile: profile(['user'], ['totp']), users: 5 },
        { profile: profile([], ['totp']), users: 1 },
        { profile: profile(['local-admin', 'user'], ['sms']), users: 0 }, // an empty group counts nothing
      ],
      ELEVATED,
    );
    expect(counted).toEqual({
      total: 11,
      byRole: [
        { role: 'user', people: 10 },
        { role: 'global-admin', people: 3 },
        { role: 'helpdesk', people: 2 },
        { role: NO_ROLE, people: 1 },
      ],
    });
  });

  it('is zero, with no roles listed, when nobody is stranded', () => {
    expect(countStranded(example(), [{ profile: profile(['global-admin', 'user'], ['sms']), users: 9 }], ELEVATED)).toEqual({ total: 0, byRole: [] });
  });
});

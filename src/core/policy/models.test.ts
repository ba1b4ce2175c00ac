/**
 * A strength that lists the authenticator models that count (issue #14): "only these security keys
 * for global administrators". A passkey of a listed model (its AAGUID, WebAuthn L3 §6.5.1) meets the
 * requirement and opens a full session; one of another model, or of none known, does not.
 */
import { describe, expect, it } from 'vitest';
import type { MethodSummary } from '../methods/registry.js';
import { compilePolicy, meetsRequirement, type CompiledPolicy } from './document.js';
import { evaluatePolicy, type PolicySubject } from './evaluate.js';
import { registrableKinds } from './changes.js';

const YUBIKEY = 'cb69481e-8ff7-4039-93ec-0a2729a154a8';
const OTHER = 'ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4';
const NOW = new Date('2026-12-03T12:00:00Z');

function policy(extra: Record<string, unknown> = {}): CompiledPolicy {
  const result = compilePolicy({
    version: 1,
    timeZone: 'UTC',
    methods: { totp: { enabled: true }, push: { enabled: true }, passkey: { enabled: true } },
    strengths: { 'admin-security-keys': { methods: ['passkey'], models: { passkey: [YUBIKEY.toUpperCase()] } } },
    requirements: [{ id: 'admins-keys', include: ['role:global-admin'], strength: 'admin-security-keys', effective: '2026-01-01', bootstrap: { afterGrace: 'any-registered' } }],
    ...extra,
  });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.policy;
}

const subject = (registered: MethodSummary[], roles = ['global-admin']): PolicySubject => ({
  roles,
  elevated: true,
  groups: [],
  registered,
  defaultMethodId: null,
  hasActiveTap: false,
  exceptions: [],
  snoozes: [],
});

const passkey = (model: string | null, id = 'p1'): MethodSummary => ({ id, kind: 'passkey', detail: 'Key', ...(model ? { model } : {}) });

describe('a strength listing authenticator models', () => {
  it('counts a passkey of a listed model (AAGUIDs compared in lower case), and no other', () => {
    const compiled = policy();
    const requirement = compiled.requirements[0]!;
    expect(meetsRequirement(requirement, { kind: 'passkey', model: YUBIKEY })).toBe(true);
    expect(meetsRequirement(requirement, { kind: 'passkey', model: OTHER })).toBe(false);
    expect(meetsRequirement(requirement, { kind: 'passkey', model: null })).toBe(false);
    expect(meetsRequirement(requirement, { kind: 'push' })).toBe(false);
  });

  it('gives a listed security key a full session and compliance; a synced passkey of another model only a restricted one', () => {
    const listed = evaluatePolicy(subject([passkey(YUBIKEY)]), policy(), NOW);
    expect(listed.state.state).toBe('compliant');
    expect(listed.decision.session).toBe('full');
    expect(listed.usable.map((m) => m.id)).toEqual(['p1']);

    const other = evaluatePolicy(subject([passkey(OTHER), { id: 't1', kind: 'totp', detail: '' }]), policy(), NOW);
    expect(other.state.state).toBe('non-compliant');
    expect(other.decision.session).toBe('registration-only');
    // Both of them: the listed one is what they sign in with.
    const both = evaluatePolicy(subject([passkey(OTHER, 'p2'), passkey(YUBIKEY, 'p1')]), policy(), NOW);
    expect(both.usable.map((m) => m.id)).toEqual(['p1']);
  });

  it('reaches only the people the requirement targets: for everyone else any passkey does', () => {
    const user = evaluatePolicy(subject([passkey(OTHER)], ['user']), policy(), NOW);
    expect(user.decision.session).toBe('full');
    expect(user.usable.map((m) => m.id)).toEqual(['p1']);
  });

  it('still offers a passkey to set up (the set-up refuses a model the list does not name)', () => {
    const registrable = registrableKinds(subject([{ id: 't1', kind: 'totp', detail: '' }]), policy(), NOW);
    expect(registrable.liftsRestriction).toEqual(['passkey']);
  });

  it('refuses a model list of a kind the strength does not name, and what is not an AAGUID', () => {
    const wrongKind = compilePolicy({ version: 1, methods: { passkey: { enabled: true } }, strengths: { keys: { methods: ['passkey'], models: { push: [YUBIKEY] } } } });
    expect(wrongKind.ok).toBe(false);
    if (!wrongKind.ok) expect(wrongKind.problems.map((p) => p.path)).toContain('strengths.keys.models.push');
    const notAnAaguid = compilePolicy({ version: 1, methods: { passkey: { enabled: true } }, strengths: { keys: { methods: ['passkey'], models: { passkey: ['yubikey'] } } } });
    expect(notAnAaguid.ok).toBe(false);
    if (!notAnAaguid.ok) expect(notAnAaguid.problems[0]!.message).toContain('AAGUID');
  });
});

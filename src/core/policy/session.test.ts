/**
 * The session a sign-in may open when the methods policy turns off what a person registered (issue #12,
 * point 2), through the one evaluator. NIST SP 800-63B-4 §6.1.2.1: a new authenticator is bound only
 * after authenticating with an existing one, so the person's own method (during grace) or a Temporary
 * Access Pass (after it) is always asked for — never the password alone.
 */
import { describe, expect, it } from 'vitest';
import { evaluatePolicy, type PolicySubject } from './evaluate.js';
import { bootstrapEnds, decideSession, SESSION_CHECKS } from './session.js';
import { admin, compile, m, user } from '../../../test/helpers/policy.js';

const day = (d: string) => new Date(`${d}T12:00:00Z`);
const midnight = (d: string) => new Date(`${d}T00:00:00Z`);

/** Texts and calls turned off for elevated roles; push required of them from 1 December, 14 days' grace. */
const noPhonesForElevated = (bootstrap?: { duringGrace?: 'any-registered' | 'tap-only'; afterGrace?: 'any-registered' | 'tap-only' }) =>
  compile({
    version: 1,
    timeZone: 'UTC',
    methods: {
      sms: { enabled: true, exclude: ['elevated'] },
      voice: { enabled: true, exclude: ['elevated'] },
      totp: { enabled: true },
      push: { enabled: true },
      tap: { enabled: true },
    },
    requirements: [{ id: 'push-for-admins', include: ['elevated'], strength: 'app-push', effective: '2026-12-01', graceDays: 14, ...(bootstrap ? { bootstrap } : {}) }],
    registration: [{ id: 'everyone', include: ['all'], by: '2026-12-01' }],
  });

const BEFORE = day('2026-11-20');
const IN_GRACE = day('2026-12-05');
const AFTER_GRACE = day('2026-12-20');
const GRACE_ENDS = midnight('2026-12-15');

describe('issue #12: registered methods the policy turns off', () => {
  const policy = noPhonesForElevated();

  it.each<[string, PolicySubject, Date, unknown, string[], string[]]>([
    // Only a disabled method: it opens a session restricted to setting up an allowed one, until grace ends.
    ['only texts, before the date', admin({ registered: [m('sms')] }), BEFORE, { session: 'registration-only', because: 'methods-not-enabled', until: GRACE_ENDS }, ['sms'], ['registered-methods-not-enabled', 'bootstrap-with-disabled-method']],
    ['only texts, in grace', admin({ registered: [m('sms')] }), IN_GRACE, { session: 'registration-only', because: 'methods-not-enabled', until: GRACE_ENDS }, ['sms'], ['bootstrap-with-disabled-method']],
    ['only texts, after grace: a pass', admin({ registered: [m('sms')] }), AFTER_GRACE, { session: 'tap-only' }, [], ['registered-methods-not-enabled', 'bootstrap-needs-tap']],
    ['only texts, at the very end of grace: a pass', admin({ registered: [m('sms')] }), GRACE_ENDS, { session: 'tap-only' }, [], ['bootstrap-needs-tap']],
    ['texts and calls, before the date: both offered, the default first', admin({ registered: [m('sms'), m('voice')], defaultMethodId: 'm-voice' }), BEFORE, { session: 'registration-only', because: 'methods-not-enabled', until: GRACE_ENDS }, ['voice', 'sms'], ['bootstrap-with-disabled-method']],
    // One disabled and one enabled: the disabled one is never offered, whatever the date.
    ['texts and an app’s codes, before the date: a full session with the codes', admin({ registered: [m('sms'), m('totp')], defaultMethodId: 'm-sms' }), BEFORE, { session: 'full' }, ['totp'], []],
    ['texts and an app’s codes, in grace: the codes, restricted', admin({ registered: [m('sms'), m('totp')] }), IN_GRACE, { session: 'registration-only', because: 'in-grace' }, ['totp'], ['in-grace:push-for-admins']],
    ['texts and an app’s codes, after grace: a pass', admin({ registered: [m('sms'), m('totp')] }), AFTER_GRACE, { session: 'tap-only' }, [], ['non-compliant:push-for-admins']],
    ['texts and push, after grace: push, fully', admin({ registered: [m('sms'), m('push')], defaultMethodId: 'm-sms' }), AFTER_GRACE, { session: 'full' }, ['push'], []],
    // No method at all: as before (the registration grant is theirs).
    ['nothing, before the date', admin(), BEFORE, { session: 'full' }, [], ['no-method-registered']],
    ['nothing, in grace', admin(), IN_GRACE, { session: 'registration-only', because: 'registration-due' }, [], ['no-method-registered']],
    ['nothing, after grace', admin(), AFTER_GRACE, { session: 'tap-only' }, [], ['no-method-registered']],
    // Texts are still enabled for typical users: nobody else is touched.
    ['a typical user on texts, after grace', user({ registered: [m('sms')] }), AFTER_GRACE, { session: 'full' }, ['sms'], []],
  ])('%s', (_name, subject, now, decision, usable, reasons) => {
    const evaluation = evaluatePolicy(subject, policy, now);
    expect(evaluation.decision).toEqual(decision);
    expect(evaluation.usable.map((x) => x.kind).sort()).toEqual([...usable].sort());
    // The prompt is the default when it is usable, otherwise the strongest (listed first here).
    expect(evaluation.prompt?.kind ?? null).toBe(usable[0] ?? null);
    expect(evaluation.reasons).toEqual(expect.arrayContaining(reasons));
    // A disabled method never counts towards compliance, nor is it ever allowed for a full session.
    expect(evaluation.allowed.has('sms')).toBe(!subject.elevated && evaluation.enabled.has('sms'));
  });

  it.each<[string, PolicySubject, string[]]>([
    ['only disabled methods', admin({ registered: [m('sms')] }), ['bootstrap-with-disabled-method']],
    ['an enabled one as well', admin({ registered: [m('sms'), m('totp')] }), []],
    ['nothing registered', admin(), []],
    ['a typical user', user({ registered: [m('sms')] }), []],
  ])('names the bootstrap only for someone with only disabled methods: %s', (_name, subject, expected) => {
    const named = evaluatePolicy(subject, policy, BEFORE).reasons.filter((r) => r.startsWith('bootstrap-') || r === 'registered-methods-not-enabled');
    expect(named.filter((r) => r !== 'registered-methods-not-enabled')).toEqual(expected);
    expect(named.includes('registered-methods-not-enabled')).toBe(expected.length > 0);
  });

  it('an exception from the requirement holds the pass off until it ends, but enables nothing', () => {
    const exempt = admin({ registered: [m('sms')], exceptions: [{ requirementId: 'push-for-admins', until: day('2026-12-25') }] });
    expect(evaluatePolicy(exempt, policy, AFTER_GRACE)).toMatchObject({
      decision: { session: 'registration-only', because: 'methods-not-enabled', until: day('2026-12-25') },
      usable: [{ kind: 'sms' }],
      requirements: expect.arrayContaining([expect.objectContaining({ id: 'push-for-admins', state: { state: 'exempt', until: day('2026-12-25') } })]),
    });
    expect(evaluatePolicy(exempt, policy, AFTER_GRACE).allowed.has('sms')).toBe(false);
    expect(evaluatePolicy(exempt, policy, day('2026-12-26')).decision).toEqual({ session: 'tap-only' });
    // An exception ending before the grace does not shorten it.
    const brief = admin({ registered: [m('sms')], exceptions: [{ requirementId: 'push-for-admins', until: day('2026-11-21') }] });
    expect(evaluatePolicy(brief, policy, BEFORE).decision).toMatchObject({ until: GRACE_ENDS });
  });

  it('follows the requirement’s bootstrap: tap-only during grace ends it on the date; any-registered after grace never', () => {
    const strict = noPhonesForElevated({ duringGrace: 'tap-only' });
    expect(evaluatePolicy(admin({ registered: [m('sms')] }), strict, BEFORE).decision).toEqual({ session: 'registration-only', because: 'methods-not-enabled', until: midnight('2026-12-01') });
    expect(evaluatePolicy(admin({ registered: [m('sms')] }), strict, IN_GRACE).decision).toEqual({ session: 'tap-only' });
    const lenient = noPhonesForElevated({ afterGrace: 'any-registered' });
    expect(evaluatePolicy(admin({ registered: [m('sms')] }), lenient, day('2027-06-01')).decision).toEqual({ session: 'registration-only', because: 'methods-not-enabled', until: null });
  });

  it('with no requirement (or one only reported on), no date ends the bootstrap; the password alone still opens nothing', () => {
    const methodsOnly = compile({ version: 1, methods: { sms: { enabled: true, exclude: ['elevated'] }, push: { enabled: true } } });
    const reportOnly = compile({
      version: 1,
      methods: { sms: { enabled: true, exclude: ['elevated'] }, push: { enabled: true } },
      requirements: [{ id: 'push-for-admins', include: ['elevated'], strength: 'app-push', effective: '2026-12-01', mode: 'report-only' }],
    });
    for (const p of [methodsOnly, reportOnly]) {
      const evaluation = evaluatePolicy(admin({ registered: [m('sms')] }), p, AFTER_GRACE);
      expect(evaluation.decision).toEqual({ session: 'registration-only', because: 'methods-not-enabled', until: null });
      expect(evaluation.usable.map((x) => x.kind)).toEqual(['sms']);
      expect(evaluation.interrupts).toEqual([]);
    }
  });
});

describe('the session checks', () => {
  const requirement = noPhonesForElevated().requirements[0]!;

  it('bootstrapEnds: the date, the end of grace, or never', () => {
    expect(bootstrapEnds(requirement)).toEqual(GRACE_ENDS);
    expect(bootstrapEnds({ ...requirement, bootstrap: { duringGrace: 'tap-only', afterGrace: 'tap-only' } })).toEqual(midnight('2026-12-01'));
    expect(bootstrapEnds({ ...requirement, bootstrap: { duringGrace: 'any-registered', afterGrace: 'any-registered' } })).toBeNull();
  });

  it.each<[string, { registered: string[]; enabled: string[]; allowed: string[] }, string]>([
    ['an allowed method', { registered: ['push'], enabled: ['push'], allowed: ['push'] }, 'allowed-method-registered'],
    ['enabled methods, none allowed now', { registered: ['sms'], enabled: ['sms'], allowed: [] }, 'registered-methods-too-weak'],
    ['methods, none enabled', { registered: ['sms'], enabled: [], allowed: [] }, 'registered-methods-not-enabled'],
    ['no method', { registered: [], enabled: [], allowed: [] }, 'no-method-registered'],
  ])('exactly one check decides: %s', (_name, input, name) => {
    const registered = input.registered.map((k) => m(k as 'sms'));
    const facts = {
      now: IN_GRACE,
      registered,
      registeredEnabled: registered.filter((x) => input.enabled.includes(x.kind)),
      allowed: new Set(input.allowed as Array<'sms'>),
      restricting: [requirement],
      enforced: [{ requirement, exemptUntil: null }],
      registrationDue: false,
    };
    expect(SESSION_CHECKS.filter((check) => check.decide(facts) !== null).map((check) => check.name)).toEqual([name]);
    expect(decideSession(facts).check).toBe(name);
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SecondFactorKind } from '../methods/registry.js';
import { compilePolicy, type CompiledPolicy, type PolicyInput } from './document.js';
import { evaluatePolicy, STATE_RANK, type PolicySubject } from './evaluate.js';
import { validatePolicy } from './validate.js';
import { admin, compile, example, m, user } from '../../../test/helpers/policy.js';



const before = new Date('2023-11-16T12:00:00Z');
const after = new Date('2023-12-05T12:00:00Z');

describe('the source article’s policy (examples/nhsmail-elevated-rights.yaml)', () => {
  it('comes into force at midnight on 30 November 2023, London time', () => {
    expect(example().requirements[0]!.effective.toISOString()).toBe('2023-11-30T00:00:00.000Z');
  });

  it.each([
    ['an administrator on SMS before the date: signs in, nudged to move to push by the date', admin({ registered: [m('sms')] }), before, { session: 'full' }, 'action-needed', ['campaign']],
    ['an administrator on SMS after the date: only a Temporary Access Pass (no grace)', admin({ registered: [m('sms')] }), after, { session: 'tap-only' }, 'non-compliant', []],
    ['an administrator with push after the date: signs in with push', admin({ registered: [m('sms'), m('push')] }), after, { session: 'full' }, 'compliant', []],
    ['a typical user on SMS after the date: signs in as before', user({ registered: [m('sms')] }), after, { session: 'full' }, 'compliant', []],
    ['a typical user with nothing registered: nudged, not blocked (report-only)', user(), after, { session: 'full' }, 'compliant', ['register-first']],
  ] as const)('%s', (_name, subject, now, decision, state, interrupts) => {
    const evaluation = evaluatePolicy(subject, example(), now);
    expect(evaluation.decision).toEqual(decision);
    expect(evaluation.state.state).toBe(state);
    expect(evaluation.interrupts.map((i) => i.kind)).toEqual(interrupts);
  });

  it('allows administrators only push after the date, and offers push even when SMS is their default', () => {
    const evaluation = evaluatePolicy(admin({ registered: [m('sms'), m('push')], defaultMethodId: 'm-sms' }), example(), after);
    expect([...evaluation.allowed]).toEqual(['push']);
    expect(evaluation.usable.map((x) => x.kind)).toEqual(['push']);
    expect(evaluation.prompt?.kind).toBe('push');
    // Before the date the default is kept.
    expect(evaluatePolicy(admin({ registered: [m('sms'), m('push')], defaultMethodId: 'm-sms' }), example(), before).prompt?.kind).toBe('sms');
  });

  it('asks administrators for a 6-digit number and typical users for 2', () => {
    expect(evaluatePolicy(admin(), example(), after).pushNumberDigits).toBe(6);
    expect(evaluatePolicy(user(), example(), after).pushNumberDigits).toBe(2);
  });

  it('passes validation against the built-in roles', () => {
    const roles = [
      { name: 'global-admin', elevated: true },
      { name: 'local-admin', elevated: true },
      { name: 'helpdesk', elevated: true },
      { name: 'user', elevated: false },
    ];
    expect(validatePolicy(example(), { roles, groups: [] })).toEqual([]);
  });
});

describe('grace, bootstrap, exceptions and campaigns', () => {
  const policy = compile({
    version: 1,
    methods: { sms: { enabled: true }, totp: { enabled: true }, push: { enabled: true }, tap: { enabled: true } },
    requirements: [{ id: 'push-for-admins', include: ['elevated'], strength: 'app-push', effective: '2026-12-01', graceDays: 14 }],
    registration: [{ id: 'everyone', include: ['all'], by: '2026-12-01' }],
    campaigns: [{ id: 'to-push', include: ['elevated'], method: 'push', snoozeDays: 1, maxSnoozes: 2 }],
  });
  const day = (d: string) => new Date(`${d}T12:00:00Z`);

  it.each([
    ['before the date', '2026-11-20', { state: 'action-needed', by: new Date('2026-12-01T00:00:00Z') }, { session: 'full' }],
    ['in grace', '2026-12-05', { state: 'in-grace', until: new Date('2026-12-15T00:00:00Z') }, { session: 'registration-only', because: 'in-grace' }],
    ['after grace', '2026-12-20', { state: 'non-compliant', since: new Date('2026-12-15T00:00:00Z') }, { session: 'tap-only' }],
  ] as const)('an administrator on SMS %s', (_name, date, state, decision) => {
    const evaluation = evaluatePolicy(admin({ registered: [m('sms')] }), policy, day(date));
    expect(evaluation.state).toEqual(state);
    expect(evaluation.decision).toEqual(decision);
  });

  it('during grace lets the weaker method open only a registration session', () => {
    const evaluation = evaluatePolicy(admin({ registered: [m('sms')] }), policy, day('2026-12-05'));
    expect(evaluation.usable.map((x) => x.kind)).toEqual(['sms']);
    expect(evaluation.reasons).toContain('in-grace:push-for-admins');
  });

  it('an exception exempts until its end, then the requirement holds again', () => {
    const subject = admin({ registered: [m('sms')], exceptions: [{ requirementId: 'push-for-admins', until: day('2026-12-25') }] });
    expect(evaluatePolicy(subject, policy, day('2026-12-20'))).toMatchObject({ state: { state: 'exempt' }, decision: { session: 'full' } });
    expect(evaluatePolicy(subject, policy, day('2026-12-26'))).toMatchObject({ state: { state: 'non-compliant' }, decision: { session: 'tap-only' } });
  });

  it('nudges until the snoozes run out, then requires registration even before the date', () => {
    const nudge = (snoozes: PolicySubject['snoozes']) => evaluatePolicy(admin({ registered: [m('sms')], snoozes }), policy, day('2026-11-20')).interrupts;
    expect(nudge([])).toEqual([{ kind: 'campaign', campaignId: 'to-push', method: 'push', deadline: new Date('2026-12-01T00:00:00Z'), snoozesLeft: 2 }]);
    expect(nudge([{ campaignId: 'to-push', count: 1, until: day('2026-11-21') }])).toEqual([]);
    expect(nudge([{ campaignId: 'to-push', count: 1, until: day('2026-11-19') }])).toMatchObject([{ kind: 'campaign', snoozesLeft: 1 }]);
    expect(nudge([{ campaignId: 'to-push', count: 2, until: day('2026-11-19') }])).toMatchObject([{ kind: 'campaign-required' }]);
    const required = evaluatePolicy(admin({ registered: [m('sms')], snoozes: [{ campaignId: 'to-push', count: 2, until: null }] }), policy, day('2026-11-20'));
    expect(required.decision).toEqual({ session: 'registration-only', because: 'campaign' });
  });

  it('requires a first method at sign-in after the registration date, and nudges before it', () => {
    expect(evaluatePolicy(user(), policy, day('2026-11-20'))).toMatchObject({ decision: { session: 'full' }, interrupts: [{ kind: 'register-first' }] });
    expect(evaluatePolicy(user(), policy, day('2026-12-02'))).toMatchObject({ decision: { session: 'registration-only', because: 'registration-due' }, interrupts: [] });
  });

  it('an exception from the registration requirement lets a user without a method sign in fully until it ends', () => {
    const subject = user({ exceptions: [{ requirementId: 'everyone', until: day('2026-12-10') }] });
    expect(evaluatePolicy(subject, policy, day('2026-12-05'))).toMatchObject({ state: { state: 'exempt', until: day('2026-12-10') }, decision: { session: 'full' } });
    expect(evaluatePolicy(subject, policy, day('2026-12-05')).reasons).toContain('exempt:everyone');
    expect(evaluatePolicy(subject, policy, day('2026-12-11'))).toMatchObject({ state: { state: 'non-compliant' }, decision: { session: 'registration-only', because: 'registration-due' } });
  });

  it('does not restrict in report-only mode, but reports', () => {
    const reportOnly = compile({
      version: 1,
      methods: { sms: { enabled: true }, push: { enabled: true } },
      requirements: [{ id: 'push-for-admins', include: ['elevated'], strength: 'app-push', effective: '2026-12-01', mode: 'report-only' }],
    });
    const evaluation = evaluatePolicy(admin({ registered: [m('sms')] }), reportOnly, day('2026-12-20'));
    expect(evaluation.decision).toEqual({ session: 'full' });
    expect([...evaluation.allowed].sort()).toEqual(['push', 'sms']);
    expect(evaluation.reasons).toContain('report-only:push-for-admins');
  });

  it('never offers a method the methods policy does not enable for the user', () => {
    const noSms = compile({ version: 1, methods: { sms: { enabled: true, include: ['all'], exclude: ['elevated'] }, totp: { enabled: true } } });
    const evaluation = evaluatePolicy(admin({ registered: [m('sms'), m('totp')], defaultMethodId: 'm-sms' }), noSms, day('2026-12-20'));
    expect(evaluation.usable.map((x) => x.kind)).toEqual(['totp']);
    expect(evaluation.reasons).toContain('method-not-enabled:sms');
  });
});

describe('validation', () => {
  const roles = [
    { name: 'global-admin', elevated: true },
    { name: 'helpdesk', elevated: true },
    { name: 'user', elevated: false },
  ];

  it('rejects a policy under which some users could satisfy nothing, naming them', () => {
    const policy = compile({
      version: 1,
      methods: { sms: { enabled: true }, push: { enabled: true, include: ['all'], exclude: ['group:no-phones'] } },
      requirements: [{ id: 'push-for-admins', include: ['elevated'], strength: 'app-push', effective: '2026-12-01' }],
    });
    const problems = validatePolicy(policy, { roles, groups: ['no-phones'] });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(/^Users with an elevated role and in the group no-phones could satisfy nothing: they must meet push-for-admins \(app-push\), but only sms is enabled/);
  });

  it('rejects two requirements whose strengths do not meet', () => {
    const policy = compile({
      version: 1,
      strengths: { codes: ['totp', 'sms'] },
      methods: { sms: { enabled: true }, totp: { enabled: true }, push: { enabled: true } },
      requirements: [
        { id: 'codes-for-helpdesk', include: ['role:helpdesk'], strength: 'codes', effective: '2026-12-01' },
        { id: 'push-for-admins', include: ['elevated'], strength: 'app-push', effective: '2026-12-01' },
      ],
    });
    const problems = validatePolicy(policy, { roles, groups: [] });
    expect(problems.map((p) => p.message)).toEqual([expect.stringContaining('they must meet codes-for-helpdesk (codes) and push-for-admins (app-push)')]);
  });

  it('names targets that do not exist', () => {
    const policy = compile({ version: 1, methods: { sms: { enabled: true, include: ['role:wizard', 'group:ghosts'] } } });
    expect(validatePolicy(policy, { roles, groups: [] }).map((p) => p.message)).toEqual(['names the role wizard, which does not exist', 'names the group ghosts, which does not exist']);
  });

  it.each([
    [{ version: 2, methods: {} }, 'version'],
    [{ version: 1, methods: { sms: { enabled: 'yes' } } }, 'methods.sms.enabled'],
    [{ version: 1, methods: {}, requirements: [{ id: 'r', include: ['all'], strength: 'mfa', effective: '30/11/2023' }] }, 'requirements[0].effective'],
    [{ version: 1, methods: {}, requirements: [{ id: 'r', include: ['all'], strength: 'mfa', effective: '2023-02-30' }] }, 'requirements[0].effective'],
    [{ version: 1, methods: {}, requirements: [{ id: 'r', include: ['all'], strength: 'strongest', effective: '2023-11-30' }] }, 'requirements[0].strength'],
    [{ version: 1, methods: {}, campaigns: [{ id: 'c', include: ['all'], method: 'push', snoozeDays: 15 }] }, 'campaigns[0].snoozeDays'],
    [{ version: 1, methods: {}, campaigns: [{ id: 'c', include: ['all'], method: 'push' }] }, 'campaigns[0].method'],
    [{ version: 1, timeZone: 'Mars/Olympus', methods: {} }, 'timeZone'],
    [{ version: 1, methods: { sms: { enabled: true, include: ['everyone'] } } }, 'methods.sms.include[0]'],
  ])('refuses %j at %s', (input, where) => {
    const result = compilePolicy(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems.map((p) => p.path)).toContain(where);
  });
});

// ── Properties ──────────────────────────────────────────────────────────────────────────────────────

const kinds: SecondFactorKind[] = ['sms', 'voice', 'totp', 'push', 'passkey'];
const arbKinds = fc.subarray(kinds, { minLength: 1 });
const arbTarget = fc.constantFrom('all', 'elevated', 'role:helpdesk', 'group:pilot');
const arbDate = fc.integer({ min: 0, max: 60 }).map((d) => new Date(Date.UTC(2026, 10, 1) + d * 86_400_000).toISOString().slice(0, 10));
const arbRequirement = fc.record({
  id: fc.constantFrom('r1', 'r2', 'r3', 'r4'),
  include: fc.array(arbTarget, { minLength: 1, maxLength: 2 }),
  exclude: fc.array(arbTarget, { maxLength: 1 }),
  strength: fc.constantFrom('mfa', 'app-push', 'phishing-resistant'),
  effective: arbDate,
  graceDays: fc.integer({ min: 0, max: 20 }),
  mode: fc.constantFrom<'enforce' | 'report-only'>('enforce', 'report-only'),
});
const arbPolicy = fc.record({
  enabled: arbKinds,
  requirements: fc.uniqueArray(arbRequirement, { maxLength: 3, selector: (r) => r.id }),
});
const arbSubject = fc.record({
  roles: fc.subarray(['helpdesk', 'global-admin']),
  groups: fc.subarray(['pilot']),
  registered: fc.subarray(kinds),
  exempt: fc.boolean(),
});
const arbNow = fc.integer({ min: 0, max: 90 }).map((d) => new Date(Date.UTC(2026, 10, 1) + d * 86_400_000));

function build(p: { enabled: SecondFactorKind[]; requirements: PolicyInput['requirements'] }): CompiledPolicy {
  return compile({ version: 1, methods: Object.fromEntries(p.enabled.map((k) => [k, { enabled: true }])), requirements: p.requirements });
}
function subjectOf(s: { roles: string[]; groups: string[]; registered: SecondFactorKind[]; exempt: boolean }, until: Date): PolicySubject {
  return user({
    roles: ['user', ...s.roles],
    elevated: s.roles.length > 0,
    groups: s.groups,
    registered: s.registered.map((k) => m(k)),
    exceptions: s.exempt ? [{ requirementId: 'r1', until }] : [],
  });
}

describe('properties (fast-check)', () => {
  it('adding a requirement never widens what is allowed', () => {
    fc.assert(
      fc.property(arbPolicy, arbRequirement, arbSubject, arbNow, (p, extra, s, now) => {
        fc.pre(!p.requirements.some((r) => r.id === extra.id));
        const subject = subjectOf(s, new Date(Date.UTC(2026, 11, 10)));
        const without = evaluatePolicy(subject, build(p), now);
        const withIt = evaluatePolicy(subject, build({ ...p, requirements: [...(p.requirements ?? []), extra] }), now);
        for (const kind of withIt.allowed) expect(without.allowed.has(kind)).toBe(true);
        for (const method of withIt.usable) if (withIt.decision.session === 'full') expect(without.usable.some((u) => u.id === method.id) || without.decision.session !== 'full').toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('report-only never blocks: the same policy in report-only mode allows every enabled method', () => {
    fc.assert(
      fc.property(arbPolicy, arbSubject, arbNow, (p, s, now) => {
        const reportOnly = build({ ...p, requirements: (p.requirements ?? []).map((r) => ({ ...r, mode: 'report-only' as const })) });
        const subject = subjectOf(s, new Date(Date.UTC(2026, 11, 10)));
        const evaluation = evaluatePolicy(subject, reportOnly, now);
        expect([...evaluation.allowed].sort()).toEqual([...p.enabled].sort());
        // It decides as if there were no requirement at all: a full session, except for someone whose
        // every registered method the methods policy turns off (issue #12), which no mode changes.
        expect(evaluation.decision).toEqual(evaluatePolicy(subject, build({ ...p, requirements: [] }), now).decision);
        const stranded = s.registered.length > 0 && !s.registered.some((k) => p.enabled.includes(k));
        expect(evaluation.decision.session).toBe(stranded ? 'registration-only' : 'full');
        expect(evaluation.state.state).toBe('compliant');
      }),
      { numRuns: 300 },
    );
  });

  it('issue #12: someone with a registered method always faces a second factor — one of their own, or a pass', () => {
    fc.assert(
      fc.property(arbPolicy, arbSubject, arbNow, (p, s, now) => {
        fc.pre(s.registered.length > 0);
        const subject = subjectOf(s, new Date(Date.UTC(2026, 11, 10)));
        const evaluation = evaluatePolicy(subject, build(p), now);
        // Never "nothing to offer": that is what let the password alone open a session.
        if (evaluation.decision.session !== 'tap-only') expect(evaluation.usable.length).toBeGreaterThan(0);
        for (const method of evaluation.usable) expect(subject.registered).toContainEqual(method);
        // A method the policy turns off is only ever a way into a session that sets up an allowed one.
        if (evaluation.usable.some((m) => !p.enabled.includes(m.kind))) expect(evaluation.decision).toMatchObject({ session: 'registration-only', because: 'methods-not-enabled' });
      }),
      { numRuns: 500 },
    );
  });

  it('the state only moves forward as time passes', () => {
    fc.assert(
      fc.property(arbPolicy, arbSubject, arbNow, arbNow, (p, s, a, b) => {
        const [earlier, later] = a.getTime() <= b.getTime() ? [a, b] : [b, a];
        const policy = build(p);
        const subject = subjectOf(s, new Date(Date.UTC(2026, 11, 10)));
        const first = evaluatePolicy(subject, policy, earlier).state;
        const second = evaluatePolicy(subject, policy, later).state;
        expect(STATE_RANK[second.state]).toBeGreaterThanOrEqual(STATE_RANK[first.state]);
      }),
      { numRuns: 500 },
    );
  });

  it('a full session only ever uses a registered method that every enforced requirement in force allows', () => {
    fc.assert(
      fc.property(arbPolicy, arbSubject, arbNow, (p, s, now) => {
        const policy = build(p);
        const subject = subjectOf(s, new Date(Date.UTC(2026, 11, 10)));
        const evaluation = evaluatePolicy(subject, policy, now);
        if (evaluation.decision.session !== 'full') return;
        for (const method of evaluation.usable) {
          expect(p.enabled).toContain(method.kind);
          for (const r of policy.requirements) {
            const applies = evaluation.requirements.some((x) => x.id === r.id);
            const exempt = s.exempt && r.id === 'r1' && now.getTime() < Date.UTC(2026, 11, 10);
            if (applies && r.mode === 'enforce' && now.getTime() >= r.effective.getTime() && !exempt) expect(r.methods.has(method.kind)).toBe(true);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { methodDefinitions, type MethodSummary, type SecondFactorKind } from '../methods/registry.js';
import { defaultRefusal, deletionRefusal, describeStanding, phraseFor, registrableKinds, SELF_SERVICE_KINDS } from './changes.js';
import type { CompiledPolicy, PolicyInput } from './document.js';
import { appliesTo, enabledMethods, evaluatePolicy, type PolicySubject } from './evaluate.js';
import { admin, compile, example, exampleDocument, m, user } from '../../../test/helpers/policy.js';



/** The same, with 14 days' grace, so that the restricted session during grace can be seen. */
const exampleWithGrace = () => {
  const document = exampleDocument();
  Object.assign(document.requirements[0]!, { graceDays: 14 });
  return compile(document as PolicyInput);
};
/** The same, with "all user mailboxes to be registered for MFA" enforced from 1 March 2024. */
const exampleWithRegistration = () => {
  const document = exampleDocument();
  Object.assign(document.registration[0]!, { by: '2024-03-01', mode: 'enforce' });
  return compile(document as PolicyInput);
};

const REQUIREMENT = 'Those with elevated rights must use push phone app notifications';
const PUSH = 'notifications in the Portcullis Authenticator app';


const beforeDate = new Date('2023-11-16T12:00:00Z');
const inGrace = new Date('2023-12-05T12:00:00Z');
const afterGrace = new Date('2023-12-20T12:00:00Z');

/** Everything the Security info banner and the sign-in interrupt read, for one person at one moment. */
function standing(subject: PolicySubject, policy: CompiledPolicy, now: Date, restricted: boolean) {
  const evaluation = evaluatePolicy(subject, policy, now);
  const registrable = registrableKinds(subject, policy, now);
  return { evaluation, registrable, standing: describeStanding({ evaluation, policy, registrable, restricted, now }) };
}

// NIST SP 800-63B (rev. 3) §5.1.3.3: out-of-band verification over the phone network (SMS, voice) is RESTRICTED,
// which is why the article moves those with elevated rights to push.
describe('an administrator with only SMS under the article’s policy (push required from 30 November 2023)', () => {
  it('before the date: may add any method, push alone meets the requirement, and is nudged with the date', () => {
    const { evaluation, registrable, standing: s } = standing(admin({ registered: [m('sms')] }), example(), beforeDate, false);
    expect(evaluation.decision).toEqual({ session: 'full' });
    expect(registrable).toEqual({ enabled: ['push', 'totp', 'sms', 'voice'], liftsRestriction: ['push', 'totp', 'sms', 'voice'], meetsAll: ['push'] });
    expect(s).toMatchObject({
      tone: 'due',
      heading: `Set up ${PUSH} by 30 November 2023`,
      body: [`${REQUIREMENT}, from 30 November 2023.`, 'After that date you will not be able to sign in with a phone.'],
      needed: ['push'],
    });
    expect(s!.steps[0]).toMatch(/^Install the Portcullis Authenticator/);
    expect(s!.steps).toHaveLength(4);
  });

  it('in grace: signs in restricted, and only push lifts the restriction', () => {
    const policy = exampleWithGrace();
    const { evaluation, registrable, standing: s } = standing(admin({ registered: [m('sms')] }), policy, inGrace, true);
    expect(evaluation.decision).toEqual({ session: 'registration-only', because: 'in-grace' });
    expect(registrable).toEqual({ enabled: ['push', 'totp', 'sms', 'voice'], liftsRestriction: ['push'], meetsAll: ['push'] });
    expect(s).toMatchObject({
      tone: 'required',
      heading: `Set up ${PUSH} to finish signing in`,
      body: [`${REQUIREMENT}, from 30 November 2023.`, 'Until 14 December 2023 you can sign in with your current method, but only to set up a new one.'],
      needed: ['push'],
    });
  });

  it.each([
    ['with 14 days’ grace, once it has passed', exampleWithGrace, afterGrace],
    ['as shipped (no grace), the day after the date', example, new Date('2023-12-01T12:00:00Z')],
  ])('after grace (%s): only a Temporary Access Pass opens the restricted session, and push lifts it', (_name, policy, now) => {
    const { evaluation, registrable, standing: s } = standing(admin({ registered: [m('sms')] }), policy(), now, true);
    expect(evaluation.decision).toEqual({ session: 'tap-only' });
    expect(registrable.liftsRestriction).toEqual(['push']);
    expect(s).toMatchObject({ tone: 'required', heading: `Set up ${PUSH} to finish signing in`, body: [`${REQUIREMENT}, from 30 November 2023.`, 'Until you set it up, you can only use this page.'] });
  });

  it('once they have push, there is nothing to say', () => {
    expect(standing(admin({ registered: [m('sms'), m('push')] }), example(), afterGrace, false).standing).toBeNull();
  });

  it('with an exception: told when it ends, and to set up push (not the phone they already have) before then', () => {
    // Snoozed campaign, so the exception banner is the one shown.
    const subject = admin({
      registered: [m('sms')],
      exceptions: [{ requirementId: 'elevated-rights-push', until: new Date('2024-01-10T12:00:00Z') }],
      snoozes: [{ campaignId: 'move-to-push', count: 1, until: new Date('2024-02-01T00:00:00Z') }],
    });
    const { evaluation, registrable, standing: s } = standing(subject, example(), afterGrace, false);
    expect(evaluation).toMatchObject({ decision: { session: 'full' }, state: { state: 'exempt' } });
    // Regression: an exempt requirement used to count as met, so every kind "met all" and the banner
    // read "Set up notifications …, codes from an authenticator app or a phone before it ends".
    expect(registrable.meetsAll).toEqual(['push']);
    expect(s).toEqual({
      tone: 'info',
      heading: 'You have an exception until 10 January 2024',
      body: [`It is for “${REQUIREMENT}”. Set up ${PUSH} before it ends.`],
      steps: expect.arrayContaining(['Make it your default sign-in method.']),
      needed: ['push'],
    });
  });

  it('with an exception and the campaign still running: the campaign’s nudge is shown', () => {
    const subject = admin({ registered: [m('sms')], exceptions: [{ requirementId: 'elevated-rights-push', until: new Date('2024-01-10T12:00:00Z') }] });
    expect(standing(subject, example(), afterGrace, false).standing).toMatchObject({ tone: 'info', heading: `Move to ${PUSH}`, needed: ['push'] });
  });
});

describe('a typical user', () => {
  it('under the article’s policy (registration report-only): nothing to say, with or without a method', () => {
    expect(standing(user(), example(), afterGrace, false).standing).toBeNull();
    expect(standing(user({ registered: [m('sms')] }), example(), afterGrace, false).standing).toBeNull();
  });

  it('with no method, before an enforced registration date: asked to set up a second way by the date', () => {
    const { registrable, standing: s } = standing(user(), exampleWithRegistration(), new Date('2024-02-01T12:00:00Z'), false);
    // Typical users are not limited to push: every self-service kind meets everything.
    expect(registrable.meetsAll).toEqual(['push', 'totp', 'sms', 'voice']);
    expect(s).toMatchObject({ tone: 'due', heading: 'Set up a second way to sign in by 1 March 2024', needed: ['push', 'totp', 'sms', 'voice'] });
    expect(s!.body).toEqual([expect.stringContaining('someone who learns your password still cannot get into your account')]);
  });

  it('with no method, after the registration date: restricted, and any method lifts it', () => {
    const { evaluation, standing: s } = standing(user(), exampleWithRegistration(), new Date('2024-03-02T12:00:00Z'), true);
    expect(evaluation.decision).toEqual({ session: 'registration-only', because: 'registration-due' });
    expect(s).toMatchObject({
      tone: 'required',
      heading: `Set up ${PUSH}, codes from an authenticator app or a phone to finish signing in`,
      body: ['Your organisation has required a second way to sign in since 1 March 2024.'],
    });
  });

  it('signed in with a Temporary Access Pass and nothing pending: told what the pass is for', () => {
    expect(standing(user(), example(), afterGrace, true).standing).toMatchObject({
      tone: 'required',
      body: ['You signed in with a Temporary Access Pass. It lets you set up a sign-in method for yourself.'],
    });
  });
});

// Issue #12: the methods policy turns off the only method they have; the requirement's date is ahead.
describe('an administrator whose only method the policy no longer enables', () => {
  const noPhones = () => {
    const document = exampleDocument();
    Object.assign(document.requirements[0]!, { graceDays: 14 });
    const input = document as unknown as PolicyInput;
    return compile({ ...input, methods: { ...input.methods, sms: { enabled: true, exclude: ['elevated'] }, voice: { enabled: true, exclude: ['elevated'] } } });
  };

  it.each([
    ['before the date', beforeDate, 'Until 14 December 2023 you can sign in with it, but only to set up a new way to sign in.', ['push', 'totp']],
    ['in grace', inGrace, 'Until 14 December 2023 you can sign in with it, but only to set up a new way to sign in.', ['push']],
  ] as const)('%s: the restricted session says why, until when, and offers only what the policy allows', (_name, now, until, lifts) => {
    const { evaluation, registrable, standing: s } = standing(admin({ registered: [m('sms')] }), noPhones(), now, true);
    expect(evaluation.decision).toMatchObject({ session: 'registration-only', because: 'methods-not-enabled' });
    // The phone they have is not offered again: it would not let them sign in.
    expect(registrable.enabled).toEqual(['push', 'totp']);
    expect(registrable.liftsRestriction).toEqual(lifts);
    expect(s).toMatchObject({ tone: 'required', heading: `Set up ${phraseFor(lifts)} to finish signing in`, body: ['Your organisation no longer lets you sign in with a phone.', until] });
  });

  it('with no requirement to end it, says so without a date; two kinds of phone are still “a phone”', () => {
    const policy = compile({ version: 1, methods: { sms: { enabled: true, exclude: ['elevated'] }, voice: { enabled: true, exclude: ['elevated'] }, push: { enabled: true } } });
    const s = standing(admin({ registered: [m('sms'), m('voice')] }), policy, afterGrace, true).standing;
    expect(s?.body).toEqual(['Your organisation no longer lets you sign in with a phone.', 'You can still sign in with it, but only to set up a new way to sign in.']);
    const both = standing(admin({ registered: [m('sms'), m('totp')] }), compile({ version: 1, methods: { push: { enabled: true } } }), afterGrace, true).standing;
    expect(both?.body).toEqual(['Your organisation no longer lets you sign in with a phone or codes from an authenticator app.', 'You can still sign in with them, but only to set up a new way to sign in.']);
  });

  it('after grace, signed in with a pass: the requirement is named as for anyone past its date', () => {
    const { evaluation, standing: s } = standing(admin({ registered: [m('sms')] }), noPhones(), new Date('2023-12-20T12:00:00Z'), true);
    expect(evaluation.decision).toEqual({ session: 'tap-only' });
    expect(s?.body).toEqual([`${REQUIREMENT}, from 30 November 2023.`, 'Until you set it up, you can only use this page.']);
  });
});

describe('defaultRefusal', () => {
  const refusal = (subject: PolicySubject, method: MethodSummary, now: Date, policy = example()) => defaultRefusal(evaluatePolicy(subject, policy, now), policy, method, now);
  const both = admin({ registered: [m('sms'), m('push')] });

  it.each([
    ['SMS for an administrator after the date: names the requirement and its date', both, m('sms'), afterGrace, `${REQUIREMENT}, from 30 November 2023.`],
    ['push for an administrator after the date', both, m('push'), afterGrace, null],
    ['SMS for an administrator before the date', both, m('sms'), beforeDate, null],
    ['SMS for a typical user after the date', user({ registered: [m('sms')] }), m('sms'), afterGrace, null],
    [
      'SMS for an administrator with an exception',
      admin({ registered: [m('sms'), m('push')], exceptions: [{ requirementId: 'elevated-rights-push', until: new Date('2024-01-10T00:00:00Z') }] }),
      m('sms'),
      afterGrace,
      null,
    ],
  ])('%s', (_name, subject, method, now, expected) => {
    expect(refusal(subject, method, now)).toBe(expected);
  });

  it('refuses a method the methods policy does not enable for the role', () => {
    const noSmsForAdmins = compile({ version: 1, methods: { sms: { enabled: true, include: ['all'], exclude: ['elevated'] }, push: { enabled: true } } });
    expect(refusal(admin({ registered: [m('sms'), m('push')] }), m('sms'), afterGrace, noSmsForAdmins)).toBe('Your organisation does not allow this method for your role.');
  });

  it('names the requirement that restricts the person, not one they are exempt from', () => {
    const policy = compile({
      version: 1,
      strengths: { apps: ['totp', 'push', 'passkey'] },
      methods: { sms: { enabled: true }, totp: { enabled: true }, push: { enabled: true } },
      requirements: [
        { id: 'push-for-admins', name: 'Administrators must use push', include: ['elevated'], strength: 'app-push', effective: '2026-12-01' },
        { id: 'no-phones', name: 'Everyone must use an app', include: ['all'], strength: 'apps', effective: '2026-12-01' },
      ],
    });
    const subject = admin({ registered: [m('sms'), m('totp')], exceptions: [{ requirementId: 'push-for-admins', until: new Date('2027-01-01T00:00:00Z') }] });
    const now = new Date('2026-12-10T12:00:00Z');
    expect(refusal(subject, m('sms'), now, policy)).toBe('Everyone must use an app, from 1 December 2026.');
    expect(refusal(subject, m('totp'), now, policy)).toBeNull();
  });
});

describe('deletionRefusal', () => {
  const LAST_PUSH = `It is your only sign-in method that meets “${REQUIREMENT}” (from 30 November 2023). Add another one that does first.`;

  it.each([
    ['the last compliant method, after the date', admin({ registered: [m('sms'), m('push')] }), 'm-push', afterGrace, LAST_PUSH],
    ['the last compliant method, before the date (it would undo compliance)', admin({ registered: [m('sms'), m('push')] }), 'm-push', beforeDate, LAST_PUSH],
    ['a weak method beside a compliant one', admin({ registered: [m('sms'), m('push')] }), 'm-sms', afterGrace, null],
    ['one of two compliant methods', admin({ registered: [m('push', 'phone'), m('push', 'tablet')] }), 'phone', afterGrace, null],
    ['a method the person does not hold', admin({ registered: [m('push')] }), 'someone-elses', afterGrace, null],
    [
      'the last compliant method when an exception covers the requirement',
      admin({ registered: [m('sms'), m('push')], exceptions: [{ requirementId: 'elevated-rights-push', until: new Date('2024-01-10T00:00:00Z') }] }),
      'm-push',
      afterGrace,
      null,
    ],
    ['a typical user’s only method (registration report-only)', user({ registered: [m('sms')] }), 'm-sms', afterGrace, null],
  ])('%s', (_name, subject, methodId, now, expected) => {
    expect(deletionRefusal(subject, example(), methodId, now)).toBe(expected);
  });

  it('does not count a method the methods policy no longer enables (a passkey here) as a second compliant one', () => {
    // The article's policy enables no passkeys, so a passkey on the account meets nothing.
    expect(deletionRefusal(admin({ registered: [m('passkey'), m('push')] }), example(), 'm-push', afterGrace)).toBe(LAST_PUSH);
  });

  it('refuses a typical user’s only method once registration is enforced, naming its date', () => {
    expect(deletionRefusal(user({ registered: [m('sms')] }), exampleWithRegistration(), 'm-sms', afterGrace)).toBe(
      'It is your only sign-in method that meets “All user mailboxes to be registered for MFA” (from 1 March 2024). Add another one that does first.',
    );
    expect(deletionRefusal(user({ registered: [m('sms'), m('voice')] }), exampleWithRegistration(), 'm-sms', afterGrace)).toBeNull();
  });
});

describe('phraseFor', () => {
  it.each([
    [[], 'another sign-in method'],
    [['push'], PUSH],
    [['sms', 'voice'], 'a phone'],
    [['totp', 'sms'], 'codes from an authenticator app or a phone'],
    [['push', 'totp', 'sms', 'voice'], `${PUSH}, codes from an authenticator app or a phone`],
    [['passkey', 'push', 'totp'], `a passkey, ${PUSH} or codes from an authenticator app`],
  ] as Array<[SecondFactorKind[], string]>)('%j → %s', (kinds, phrase) => {
    expect(phraseFor(kinds)).toBe(phrase);
  });
});

// ── Properties ──────────────────────────────────────────────────────────────────────────────────────

const kinds: SecondFactorKind[] = ['sms', 'voice', 'totp', 'push', 'passkey'];
const arbTarget = fc.constantFrom('all', 'elevated', 'role:helpdesk', 'group:pilot');
const arbDate = fc.integer({ min: 0, max: 60 }).map((d) => new Date(Date.UTC(2026, 10, 1) + d * 86_400_000).toISOString().slice(0, 10));
const arbRequirement = fc.record({
  id: fc.constantFrom('r1', 'r2', 'r3'),
  include: fc.array(arbTarget, { minLength: 1, maxLength: 2 }),
  exclude: fc.array(arbTarget, { maxLength: 1 }),
  strength: fc.constantFrom('mfa', 'app-push', 'phishing-resistant'),
  effective: arbDate,
  graceDays: fc.integer({ min: 0, max: 20 }),
  mode: fc.constantFrom<'enforce' | 'report-only'>('enforce', 'report-only'),
  bootstrap: fc.record({
    duringGrace: fc.constantFrom<'any-registered' | 'tap-only'>('any-registered', 'tap-only'),
    afterGrace: fc.constantFrom<'any-registered' | 'tap-only'>('any-registered', 'tap-only'),
  }),
});
const arbPolicy = fc
  .record({
    enabled: fc.subarray(kinds, { minLength: 1 }),
    smsExcludesElevated: fc.boolean(),
    requirements: fc.uniqueArray(arbRequirement, { maxLength: 3, selector: (r) => r.id }),
    registration: fc.option(fc.record({ include: fc.array(arbTarget, { minLength: 1, maxLength: 1 }), by: arbDate, mode: fc.constantFrom<'enforce' | 'report-only'>('enforce', 'report-only') }), {
      nil: null,
    }),
  })
  .map((p) =>
    compile({
      version: 1,
      methods: Object.fromEntries(p.enabled.map((k) => [k, k === 'sms' && p.smsExcludesElevated ? { enabled: true, include: ['all'], exclude: ['elevated'] } : { enabled: true }])),
      requirements: p.requirements,
      registration: p.registration ? [{ id: 'everyone', ...p.registration }] : [],
    }),
  );
const arbNow = fc.integer({ min: 0, max: 90 }).map((d) => new Date(Date.UTC(2026, 10, 1) + d * 86_400_000 + 43_200_000));
const arbSubject = fc
  .record({
    roles: fc.subarray(['helpdesk', 'global-admin']),
    groups: fc.subarray(['pilot']),
    // Kinds may repeat (two phones, two push devices); ids are unique.
    registered: fc.array(fc.constantFrom(...kinds), { maxLength: 4 }),
    exemptFrom: fc.option(fc.constantFrom('r1', 'r2', 'r3'), { nil: null }),
    exemptUntil: arbNow,
  })
  .map((s) =>
    user({
      roles: ['user', ...s.roles],
      elevated: s.roles.length > 0,
      groups: s.groups,
      registered: s.registered.map((k, i) => m(k, `m${i}`)),
      exceptions: s.exemptFrom ? [{ requirementId: s.exemptFrom, until: s.exemptUntil }] : [],
    }),
  );

/** The enforced requirements and registration rules that apply to a subject, read straight from the policy. */
function enforcedFor(policy: CompiledPolicy, subject: PolicySubject) {
  const enabled = enabledMethods(policy, subject);
  const counted = subject.registered.filter((x) => enabled.has(x.kind));
  return {
    enabled,
    counted,
    requirements: policy.requirements.filter((r) => r.mode === 'enforce' && appliesTo(r, subject)),
    registrations: policy.registration.filter((r) => r.mode === 'enforce' && appliesTo(r, subject)),
  };
}

describe('properties (fast-check)', () => {
  it('meetsAll ⊆ liftsRestriction ⊆ enabled ⊆ self-service kinds the methods policy enables, strongest first', () => {
    fc.assert(
      fc.property(arbPolicy, arbSubject, arbNow, (policy, subject, now) => {
        const r = registrableKinds(subject, policy, now);
        const enabled = enabledMethods(policy, subject);
        for (const k of r.enabled) expect(SELF_SERVICE_KINDS.includes(k) && enabled.has(k)).toBe(true);
        for (const k of r.liftsRestriction) expect(r.enabled).toContain(k);
        for (const k of r.meetsAll) expect(r.liftsRestriction).toContain(k);
        const strengths = r.enabled.map((k) => methodDefinitions[k].strength);
        expect(strengths).toEqual([...strengths].sort((a, b) => b - a));
      }),
      { numRuns: 300 },
    );
  });

  it('adding a method never takes a full session away: when sign-in is full now, every enabled kind “lifts”', () => {
    fc.assert(
      fc.property(arbPolicy, arbSubject, arbNow, (policy, subject, now) => {
        fc.pre(evaluatePolicy(subject, policy, now).decision.session === 'full');
        const r = registrableKinds(subject, policy, now);
        expect(r.liftsRestriction).toEqual(r.enabled);
      }),
      { numRuns: 300 },
    );
  });

  it('a kind meets all exactly when, added, it would leave every enforced requirement met (an exception is not meeting it)', () => {
    fc.assert(
      fc.property(arbPolicy, arbSubject, arbNow, (policy, subject, now) => {
        const r = registrableKinds(subject, policy, now);
        const { counted, requirements } = enforcedFor(policy, subject);
        for (const k of r.liftsRestriction) {
          const meets = requirements.every((q) => q.methods.has(k) || counted.some((x) => q.methods.has(x.kind)));
          expect(r.meetsAll.includes(k)).toBe(meets);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('deletionRefusal refuses exactly the last counted method meeting an enforced requirement the person is not exempt from', () => {
    // As in Kratos, a method cannot be removed if it is the last one that counts; "add another first"
    // follows NIST SP 800-63B (rev. 3) §6.1.1: bind at least two authenticators, so a lost one needs no recovery.
    fc.assert(
      fc.property(arbPolicy, arbSubject, arbNow, fc.nat(), (policy, subject, now, pick) => {
        fc.pre(subject.registered.length > 0);
        const target = subject.registered[pick % subject.registered.length]!;
        const { counted, requirements, registrations } = enforcedFor(policy, subject);
        const exempt = (id: string) => subject.exceptions.some((e) => e.requirementId === id && e.until.getTime() > now.getTime());
        const onlyOne = (meets: (x: MethodSummary) => boolean) => {
          const meeting = counted.filter(meets);
          return meeting.length === 1 && meeting[0]!.id === target.id;
        };
        const expected =
          requirements.some((q) => !exempt(q.id) && onlyOne((x) => q.methods.has(x.kind))) || (registrations.length > 0 && onlyOne(() => true));
        const refusal = deletionRefusal(subject, policy, target.id, now);
        expect(refusal !== null).toBe(expected);
        if (refusal) expect(refusal).toMatch(/^It is your only sign-in method that meets “.+” \(from \d{1,2} \w+ \d{4}\)\. Add another one that does first\.$/);
      }),
      { numRuns: 500 },
    );
  });

  it('a restricted session’s banner only ever asks for kinds that would lift the restriction, when there are any', () => {
    fc.assert(
      fc.property(arbPolicy, arbSubject, arbNow, (policy, subject, now) => {
        const s = standing(subject, policy, now, true);
        expect(s.standing?.tone).toBe('required');
        if (s.registrable.liftsRestriction.length) for (const k of s.standing!.needed) expect(s.registrable.liftsRestriction).toContain(k);
      }),
      { numRuns: 300 },
    );
  });

  it('an unrestricted banner is due exactly when an enforced requirement is not yet met before its date', () => {
    fc.assert(
      fc.property(arbPolicy, arbSubject, arbNow, (policy, subject, now) => {
        const s = standing(subject, policy, now, false);
        const pendingBeforeDate = s.evaluation.requirements.some((r) => r.mode === 'enforce' && r.state.state === 'action-needed');
        const firstPending = s.evaluation.requirements.filter((r) => r.mode === 'enforce' && r.state.state !== 'compliant' && r.state.state !== 'exempt');
        const shown = firstPending.find((r) => r.type === 'requirement') ?? firstPending[0];
        if (shown?.state.state === 'action-needed') expect(s.standing?.tone).toBe('due');
        if (!pendingBeforeDate) expect(s.standing?.tone).not.toBe('due');
      }),
      { numRuns: 300 },
    );
  });
});

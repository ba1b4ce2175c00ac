/** Applications in the policy (issue #13 point 4): `client:KEY` targets, parsed, validated and evaluated. */
import { describe, expect, it } from 'vitest';
import { ACR, acrForStrength, raiseAskedAcr } from '../oidc/acr.js';
import { applicationDemand } from '../oidc/application-requirements.js';
import { clientKeyFromName, uniqueClientKey } from '../oidc/client-key.js';
import { admin, compile, m, user } from '../../../test/helpers/policy.js';
import { appliesToApplications, applicationsFor, OTHER_APPLICATION } from './applications.js';
import { compilePolicy, type PolicyInput } from './document.js';
import { evaluatePolicy } from './evaluate.js';
import { validatePolicy } from './validate.js';

const methods = { sms: { enabled: true }, totp: { enabled: true }, push: { enabled: true }, tap: { enabled: true } };
const roles = [
  { name: 'user', elevated: false },
  { name: 'global-admin', elevated: true },
];
const now = new Date('2024-03-01T12:00:00Z');

/** "Push for everyone who signs in to the admin portal": one line of the policy. */
const portal = (overrides: Record<string, unknown> = {}) =>
  compile({
    version: 1,
    methods,
    requirements: [{ id: 'portal-push', include: ['client:admin-portal'], strength: 'app-push', effective: '2024-01-01', ...overrides }],
  } as PolicyInput);

describe('parsing client:KEY targets', () => {
  it('accepts client:KEY in a requirement’s include and exclude', () => {
    const policy = portal({ include: ['elevated', 'client:admin-portal'], exclude: ['client:legacy-2'] });
    expect(policy.requirements[0]!.include).toEqual(['elevated', 'client:admin-portal']);
  });

  it.each([
    ['an upper-case key', 'client:Admin'],
    ['an empty key', 'client:'],
    ['a key starting with a dash', 'client:-portal'],
    ['a key of 65 characters', `client:${'a'.repeat(65)}`],
  ])('refuses %s', (_what, target) => {
    const result = compilePolicy({ version: 1, methods, requirements: [{ id: 'r', include: [target], strength: 'mfa', effective: '2024-01-01' }] });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]!.path).toBe('requirements[0].include[0]');
  });

  it.each([
    ['a method’s include', { methods: { ...methods, sms: { enabled: true, include: ['client:mail-app'] } } }, 'methods.sms.include[0]'],
    ['a push target', { methods: { ...methods, push: { enabled: true, settings: { targets: [{ include: ['all'], exclude: ['client:mail-app'], numberDigits: 6 }] } } } }, 'methods.push.settings.targets[0].exclude[0]'],
    ['the registration requirement', { registration: [{ id: 'reg', include: ['client:mail-app'], by: '2024-01-01' }] }, 'registration[0].include[0]'],
    ['a campaign', { campaigns: [{ id: 'c', include: ['all'], exclude: ['client:mail-app'], method: 'push' }] }, 'campaigns[0].exclude[0]'],
  ])('refuses a client target in %s, naming the path', (_what, part, path) => {
    const result = compilePolicy({ version: 1, methods, ...part } as PolicyInput);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems).toContainEqual({ path, message: 'client:mail-app: an application can be targeted only by a requirement, not here' });
  });
});

describe('which sign-ins a target set reaches', () => {
  it.each([
    ['no client target: Portcullis itself', { include: ['all'], exclude: [] }, undefined, true],
    ['no client target: any application too', { include: ['all'], exclude: [] }, ['mail-app'], true],
    ['client:X: not Portcullis itself', { include: ['client:x'], exclude: [] }, undefined, false],
    ['client:X: a sign-in to X', { include: ['client:x'], exclude: [] }, ['x'], true],
    ['client:X: not a sign-in to Y', { include: ['client:x'], exclude: [] }, ['y'], false],
    ['exclude client:X only: every other application', { include: ['all'], exclude: ['client:x'] }, ['y'], true],
    ['exclude client:X only: not X', { include: ['all'], exclude: ['client:x'] }, ['x'], false],
    ['exclude client:X only: not Portcullis itself', { include: ['all'], exclude: ['client:x'] }, undefined, false],
    ['a person who uses X and another application, against exclude X', { include: ['all'], exclude: ['client:x'] }, ['*', 'x'], true],
  ] as const)('%s', (_what, set, applications, expected) => {
    expect(appliesToApplications({ include: [...set.include], exclude: [...set.exclude] }, applications)).toBe(expected);
  });

  it('folds the applications the policy does not name into one', () => {
    expect(applicationsFor(['rota', 'mail-app', 'payroll'], new Set(['mail-app']))).toEqual([OTHER_APPLICATION, 'mail-app']);
  });
});

describe('evaluating a requirement that targets an application', () => {
  it('does not restrict a sign-in to Portcullis itself', () => {
    const evaluation = evaluatePolicy(user({ registered: [m('totp')] }), portal(), now);
    expect(evaluation.requirements).toEqual([]);
    expect(evaluation.decision.session).toBe('full');
    expect([...evaluation.allowed]).toContain('totp');
  });

  it('applies to everyone who uses the application when it has no user part', () => {
    const evaluation = evaluatePolicy(user({ registered: [m('totp')], applications: ['admin-portal'] }), portal(), now);
    expect(evaluation.requirements.map((r) => [r.id, r.state.state])).toEqual([['portal-push', 'non-compliant']]);
    expect(evaluatePolicy(user({ registered: [m('push')], applications: ['admin-portal'] }), portal(), now).state.state).toBe('compliant');
  });

  it('applies only to the people its user part selects', () => {
    const policy = portal({ include: ['elevated', 'client:admin-portal'] });
    expect(evaluatePolicy(user({ registered: [m('totp')], applications: ['admin-portal'] }), policy, now).requirements).toEqual([]);
    expect(evaluatePolicy(admin({ registered: [m('totp')], applications: ['admin-portal'] }), policy, now).requirements).toHaveLength(1);
  });
});

describe('what a sign-in to an application must reach', () => {
  it.each([
    ['mfa', ['sms', 'voice', 'totp', 'push', 'passkey'], ACR.mfa],
    ['app-push', ['push', 'passkey'], ACR.appPush],
    ['phishing-resistant', ['passkey'], ACR.phishingResistant],
    ['a custom strength of text and push: the weakest', ['sms', 'push'], ACR.mfa],
  ] as const)('%s', (_name, kinds, acr) => {
    expect(acrForStrength(kinds)).toBe(acr);
  });

  it.each([
    ['nothing asked: the floor', [], ACR.appPush, [ACR.appPush]],
    ['weaker asked: raised', [ACR.mfa], ACR.appPush, [ACR.appPush]],
    ['stronger asked: kept', [ACR.phishingResistant], ACR.appPush, [ACR.phishingResistant]],
    ['in order of preference, once each', [ACR.mfa, ACR.phishingResistant, ACR.appPush], ACR.appPush, [ACR.appPush, ACR.phishingResistant]],
    ['no floor: as asked', [ACR.mfa], null, [ACR.mfa]],
  ] as const)('intersects with acr_values: %s (the stronger wins)', (_what, asked, floor, expected) => {
    expect(raiseAskedAcr(asked, floor)).toEqual(expected);
  });

  it('asks app-push of a sign-in to the application after the date and grace, nothing before, and nothing of another', () => {
    const policy = portal({ graceDays: 30, effective: '2024-02-01' });
    const subject = user({ registered: [m('totp')] });
    expect(applicationDemand(policy, subject, 'admin-portal', new Date('2024-01-15T12:00:00Z')).acr).toBeNull();
    expect(applicationDemand(policy, subject, 'admin-portal', new Date('2024-02-15T12:00:00Z')).acr).toBeNull();
    expect(applicationDemand(policy, subject, 'admin-portal', new Date('2024-03-05T12:00:00Z'))).toEqual({ acr: ACR.appPush, enforced: [{ id: 'portal-push', acr: ACR.appPush }], reportOnly: [] });
    expect(applicationDemand(policy, subject, 'mail-app', new Date('2024-03-05T12:00:00Z')).acr).toBeNull();
  });

  it('never blocks in report-only mode, but says which requirement it would have been', () => {
    expect(applicationDemand(portal({ mode: 'report-only' }), user(), 'admin-portal', now)).toEqual({ acr: null, enforced: [], reportOnly: [{ id: 'portal-push', acr: ACR.appPush }] });
  });

  it('asks nothing of a person with a live exception from it', () => {
    const subject = user({ exceptions: [{ requirementId: 'portal-push', until: new Date(now.getTime() + 86_400_000) }] });
    expect(applicationDemand(portal(), subject, 'admin-portal', now).acr).toBeNull();
  });

  it('takes the strongest of several requirements for one application', () => {
    const policy = compile({
      version: 1,
      methods,
      requirements: [
        { id: 'everyone-mfa', include: ['client:admin-portal'], strength: 'mfa', effective: '2024-01-01' },
        { id: 'admins-push', include: ['elevated', 'client:admin-portal'], strength: 'app-push', effective: '2024-01-01' },
      ],
    });
    expect(applicationDemand(policy, user(), 'admin-portal', now).acr).toBe(ACR.mfa);
    expect(applicationDemand(policy, admin(), 'admin-portal', now).acr).toBe(ACR.appPush);
  });
});

describe('validating client targets against the directory', () => {
  it('refuses a client:KEY no registered client has, naming the path and the key', () => {
    const problems = validatePolicy(portal(), { roles, groups: [], clients: ['mail-app'] });
    expect(problems).toEqual([{ path: 'requirements[0]', message: expect.stringContaining('client:admin-portal') as string, kind: 'unknown-client' }]);
    expect(validatePolicy(portal(), { roles, groups: [], clients: ['admin-portal'] })).toEqual([]);
  });

  it('refuses a requirement for an application that the methods enabled cannot meet', () => {
    const policy = compile({
      version: 1,
      methods: { sms: { enabled: true } },
      requirements: [{ id: 'portal-push', include: ['client:admin-portal'], strength: 'app-push', effective: '2024-01-01' }],
    });
    const problems = validatePolicy(policy, { roles, groups: [], clients: ['admin-portal'] });
    expect(problems.map((p) => p.message)).toEqual([expect.stringContaining('portal-push (app-push) to sign in to client:admin-portal') as string]);
  });
});

describe('client keys', () => {
  it.each([
    ['Staff rota', 'staff-rota'],
    ['  Admin Portal (beta)! ', 'admin-portal-beta'],
    ['Café rôta', 'cafe-rota'],
    ['日本', 'client'],
    ['x'.repeat(80), 'x'.repeat(64)],
  ])('slugifies %j as %j', (name, key) => {
    expect(clientKeyFromName(name)).toBe(key);
  });

  it('makes a key unique with -2, -3…', () => {
    expect(uniqueClientKey('rota', new Set())).toBe('rota');
    expect(uniqueClientKey('rota', new Set(['rota', 'rota-2']))).toBe('rota-3');
    expect(uniqueClientKey('x'.repeat(64), new Set(['x'.repeat(64)]))).toBe(`${'x'.repeat(62)}-2`);
  });
});

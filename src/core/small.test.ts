import { describe, expect, it } from 'vitest';
import { checkRoleGrant, builtInRoles, GLOBAL_SCOPE } from './directory.js';
import { describeDuration, parseDuration } from './duration.js';
import { isValidEmail, normaliseEmail } from './email.js';
import { formatErrorMessage, PortcullisError } from './errors.js';
import { DEFAULT_RETURN_TO, safeReturnTo } from './return-to.js';

describe('emails', () => {
  it.each(['a@b.co', 'first.last+tag@nhs.net', 'Alex.Smith@Example.ORG'])('accepts %s', (e) => expect(isValidEmail(e)).toBe(true));
  it.each(['', 'plain', '@example.org', 'a@b', 'a b@example.org', 'a@@example.org', `${'x'.repeat(65)}@example.org`, `a@${'d'.repeat(250)}.org`])(
    'rejects %j',
    (e) => expect(isValidEmail(e)).toBe(false),
  );
  it('normalises case, spaces and Unicode form, so uniqueness is case-insensitive', () => {
    expect(normaliseEmail('  Alex.Smith@Example.ORG ')).toBe('alex.smith@example.org');
    expect(normaliseEmail('Jose\u0301@example.org')).toBe(normaliseEmail('jos\u00e9@example.org'));
  });
});

describe('durations', () => {
  it.each([
    ['90', 90],
    ['90s', 90],
    ['10m', 600],
    ['1h', 3600],
    ['7d', 604_800],
    [' 2 h ', 7200],
  ])('parses %j as %i seconds', (text, seconds) => expect(parseDuration(text)).toBe(seconds));
  it.each(['', '1w', '-5m', '1.5h', 'soon'])('rejects %j', (text) => expect(parseDuration(text)).toBeNull());
  it.each([
    [1, '1 second'],
    [45, '45 seconds'],
    [60, '1 minute'],
    [61, '2 minutes'],
    [3600, '1 hour'],
    [86_400 * 2, '2 days'],
  ])('describes %i seconds as %j', (seconds, text) => expect(describeDuration(seconds)).toBe(text));
});

describe('safeReturnTo (no open redirects)', () => {
  it.each([
    ['/account', '/account'],
    ['/security-info?x=1', '/security-info?x=1'],
    ['//evil.example', DEFAULT_RETURN_TO],
    ['/\\evil.example', DEFAULT_RETURN_TO],
    ['https://evil.example/', DEFAULT_RETURN_TO],
    ['javascript:alert(1)', DEFAULT_RETURN_TO],
    ['/a\r\nLocation: x', DEFAULT_RETURN_TO],
    ['', DEFAULT_RETURN_TO],
    [undefined, DEFAULT_RETURN_TO],
    [['/account'], DEFAULT_RETURN_TO],
  ])('%j → %j', (input, expected) => expect(safeReturnTo(input)).toBe(expected));
});

describe('role grants', () => {
  const role = (name: string) => builtInRoles.find((r) => r.name === name)!;
  it('marks the administrative roles elevated and the user role not', () => {
    expect(builtInRoles.filter((r) => r.elevated).map((r) => r.name).sort()).toEqual(['global-admin', 'helpdesk', 'local-admin']);
  });
  it.each([
    ['global-admin', [], { ok: true, scopes: [GLOBAL_SCOPE] }],
    ['global-admin', ['org-1'], { ok: false, code: 'role-scope-not-allowed', params: { role: 'global-admin' } }],
    ['local-admin', [], { ok: false, code: 'role-scope-required', params: { role: 'local-admin' } }],
    ['local-admin', ['org-1', 'org-2', 'org-1'], { ok: true, scopes: ['org-1', 'org-2'] }],
    ['helpdesk', [], { ok: true, scopes: [GLOBAL_SCOPE] }],
    ['helpdesk', ['org-1'], { ok: true, scopes: ['org-1'] }],
  ] as const)('%s scoped to %j', (name, orgs, expected) => {
    expect(checkRoleGrant(role(name), orgs)).toEqual(expected);
  });
});

describe('error catalogue', () => {
  it('fills placeholders and carries a status', () => {
    const error = new PortcullisError('organisation-not-found', { name: 'Nowhere' });
    expect(error.message).toBe('There is no organisation called Nowhere');
    expect(error.status).toBe(404);
    expect(formatErrorMessage('sign-in-throttled', { wait: '2 minutes' })).toBe('You have tried to sign in too many times. Wait 2 minutes and try again.');
  });
});

import { describe, expect, it } from 'vitest';
import { unstorableField } from './input-guard.js';

describe('unstorableField: what no database can store as sent (issue #12)', () => {
  it.each([
    [{ email: 'a\u0000@example.org' }, 'email'],
    [{ email: 'fine@example.org', code: '12\u000034' }, 'code'],
    [{ returnTo: '/account?x=\ud800' }, 'returnTo'],
    [{ name: 'x\udfffy' }, 'name'],
    [{ code: ['123456', '\u0000'] }, 'code'],
    [{ pushSubscription: { keys: { auth: '\u0000' } } }, 'pushSubscription.keys.auth'],
    [{ methodId: '\u0000' }, 'methodId'],
  ])('%j → %s', (value, field) => expect(unstorableField(value)).toBe(field));

  it.each([
    [{ email: 'zoë@example.org', name: 'Ann 👩‍⚕️ 王' }],
    [{ code: ['123456', '654321'] }],
    [{ nested: { deeper: { value: 'line\nbreak\ttab' } } }],
    [null],
    [undefined],
    ['plain'],
    [{ number: 1, flag: true, nothing: null }],
  ])('%j → nothing', (value) => expect(unstorableField(value)).toBeNull());
});

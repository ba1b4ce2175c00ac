import { describe, expect, it } from 'vitest';
import { checkNewPassword, normalisePassword, passwordLength } from './password-rules.js';

const rules = { minLength: 8, maxLength: 64 };
const blocklist = new Set(['password1', 'qwertyuiop', 'iloveyou2']);
const context = { isCommon: (p: string) => blocklist.has(p), serviceNames: ['NHSmail', 'portcullis'], email: 'alex.smith@example.org' };

describe('checkNewPassword (NIST SP 800-63B §5.1.1.2)', () => {
  it.each([
    ['', 'new-password-missing'],
    ['short', 'new-password-too-short'],
    ['1234567', 'new-password-too-short'],
    ['x'.repeat(65), 'new-password-too-long'],
    ['Password1', 'new-password-common'], // the blocklist ignores case
    ['qwertyuiop', 'new-password-common'],
    ['my nhsmail login', 'new-password-contains-context'],
    ['Alex.Smith@example.org!', 'new-password-contains-context'],
    ['alex.smith-2026', 'new-password-contains-context'],
  ])('rejects %j with %s', (password, code) => {
    const result = checkNewPassword(password, rules, context);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.code).toBe(code);
  });

  it.each([
    ['8 characters exactly', 'abcdefgh'],
    ['64 characters exactly', 'y'.repeat(64)],
    ['no composition rules: all lower case', 'lantern harbour correct'],
    ['spaces and any printable character', '  spaced out  '],
    ['emoji count as one character each', '🔑🔑🔑🔑🔑🔑🔑🔑'],
  ])('accepts %s', (_name, password) => {
    expect(checkNewPassword(password, rules, context)).toEqual({ ok: true });
  });

  it('gives the limits in the reason', () => {
    expect(checkNewPassword('short', rules, context)).toEqual({ ok: false, code: 'new-password-too-short', params: { min: 8 } });
    expect(checkNewPassword('z'.repeat(65), rules, context)).toEqual({ ok: false, code: 'new-password-too-long', params: { max: 64 } });
  });

  it('counts Unicode code points, not UTF-16 units', () => {
    expect(passwordLength('🔑🔑🔑🔑')).toBe(4);
    expect(checkNewPassword('🔑🔑🔑🔑', rules, context)).toMatchObject({ ok: false, code: 'new-password-too-short' });
  });

  it('normalises with NFKC so the same password typed differently verifies the same', () => {
    expect(normalisePassword('e\u0301')).toBe(normalisePassword('\u00e9'));
    expect(normalisePassword('ﬁ')).toBe('fi');
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETURN_TO, MAX_RETURN_TO_LENGTH, safeReturnTo } from './return-to.js';

/** What a Location header may carry as it is: visible ASCII (RFC 9110 §5.5; Node refuses the rest). */
const HEADER_SAFE = /^[\x21-\x7e]+$/;

describe('safeReturnTo: a path for the Location header, percent-encoded (issue #12)', () => {
  it.each([
    ['/account?name=José', '/account?name=Jos%C3%A9'],
    ['/account?q=€ and ā', '/account?q=%E2%82%AC%20and%20%C4%81'],
    ['/account?x=😀', '/account?x=%F0%9F%98%80'],
    ['/Ωmega/path', '/%CE%A9mega/path'],
    ['/account?x=%C3%A9', '/account?x=%C3%A9'],
    ['/account?a=1&b=2#top', '/account?a=1&b=2#top'],
    // An OpenID Connect interaction (issue #13): the sign-in comes back to it.
    ['/oidc-interaction/gNdFD9V9AVkqLRHXyFLKN_79Zn5-a', '/oidc-interaction/gNdFD9V9AVkqLRHXyFLKN_79Zn5-a'],
  ])('%j → %j', (input, expected) => expect(safeReturnTo(input)).toBe(expected));

  it.each([
    ['an unpaired high surrogate', '/account?x=\ud800'],
    ['an unpaired low surrogate', '/account?x=\udc00y'],
    ['a C1 control character', '/account?x=\u0085'],
    ['a NUL byte', '/account\u0000'],
    ['a tab', '/\t/evil.example'],
    ['a form too long once encoded', `/account?${'é'.repeat(400)}`],
  ])('refuses %s', (_what, input) => expect(safeReturnTo(input)).toBe(DEFAULT_RETURN_TO));

  it('keeps the longest ASCII path accepted as it is', () => {
    const longest = `/account?${'q'.repeat(MAX_RETURN_TO_LENGTH - 9)}`;
    expect(safeReturnTo(longest)).toBe(longest);
    expect(safeReturnTo(`${longest}q`)).toBe(DEFAULT_RETURN_TO);
  });

  it('always gives a same-site path a Location header can carry, and gives it again unchanged', () => {
    const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ maxLength: 80 }));
    fc.assert(
      fc.property(fc.oneof(anyText, anyText.map((text) => `/${text}`)), (candidate) => {
        const result = safeReturnTo(candidate);
        expect(result).toMatch(HEADER_SAFE);
        expect(result.startsWith('/') && !result.startsWith('//') && !result.startsWith('/\\')).toBe(true);
        expect(result.length).toBeLessThanOrEqual(MAX_RETURN_TO_LENGTH);
        // Stored flows and query strings pass it through safeReturnTo again: it must not change.
        expect(safeReturnTo(result)).toBe(result);
        // What the browser will request is what was asked for (when it was accepted, and held no escapes of its own).
        if (result !== DEFAULT_RETURN_TO && !candidate.includes('%')) expect(decodeURIComponent(result)).toBe(candidate);
      }),
      { numRuns: 500 },
    );
  });
});

import { describe, expect, it } from 'vitest';
import { isValidEmail } from './email.js';

/**
 * Issue #12: an address with a control character (a NUL above all, which PostgreSQL cannot store) or an
 * unpaired surrogate is not an address; it is refused as malformed, never stored, never sent to.
 */
describe('isValidEmail refuses control characters and unpaired surrogates', () => {
  it.each([
    ['a NUL', 'a\u0000b@example.org'],
    ['a NUL in the domain', 'ab@exam\u0000ple.org'],
    ['a bell', 'a\u0007@example.org'],
    ['an escape', 'a\u001b[31m@example.org'],
    ['DEL', 'a\u007f@example.org'],
    ['a C1 control', 'a\u0085@example.org'],
    ['an unpaired surrogate', 'a\ud800@example.org'],
  ])('refuses %s', (_what, email) => expect(isValidEmail(email)).toBe(false));

  it.each(['zoë@example.org', 'user@bücher.example', '😀@example.org', '王@例子.中国'])('still accepts %s', (email) => expect(isValidEmail(email)).toBe(true));
});

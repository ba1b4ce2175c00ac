import { describe, expect, it } from 'vitest';
import { isValidDisplayName, isValidOrganisationName } from './directory.js';

/**
 * Issue #12: display and organisation names refuse control characters, newlines above all. A newline
 * lets a formula through the CSV guard of the compliance report in a semicolon-separated spreadsheet,
 * and splits a log line or a mail header; an unpaired surrogate cannot be stored as UTF-8.
 */
const refused: Array<[string, string]> = [
  ['a line feed', 'Ann\nBell'],
  ['a carriage return', 'Ann\rBell'],
  ['a line feed then a formula', 'Ann\n=HYPERLINK("http://evil.example")'],
  ['a tab', 'Ann\tBell'],
  ['a NUL', 'Ann\u0000'],
  ['an escape (terminal colours)', 'Ann \u001b[31mBell'],
  ['DEL', 'Ann\u007f'],
  ['a C1 next line', 'Ann\u0085Bell'],
  ['a line separator', 'Ann\u2028Bell'],
  ['a paragraph separator', 'Ann\u2029Bell'],
  ['a right-to-left override (a name shown as another)', 'Ann\u202eyrneH'],
  ['a bidirectional isolate', 'Ann\u2066Bell'],
  ['an unpaired surrogate', 'Ann\ud800'],
  ['nothing but spaces', '   '],
  ['nothing', ''],
];

const accepted: Array<[string, string]> = [
  ['letters and a space', 'Ann Bell'],
  ['an apostrophe and a hyphen', "Siobhán O'Neill-Price"],
  ['other scripts', 'Zoë Ωmega 王秀英 محمد'],
  ['a zero-width joiner (in an emoji, and in some scripts)', 'Ann 👩‍⚕️'],
  ['a zero-width non-joiner (Persian)', 'می‌خواهم'],
  ['spaces around it (trimmed)', '  Ann Bell  '],
  ['a formula character, which the CSV guard deals with', '=Ann'],
];

describe.each([
  ['display names', isValidDisplayName, 200],
  ['organisation names', isValidOrganisationName, 120],
] as const)('%s', (_kind, isValid, max) => {
  it.each(refused)('refuse %s', (_what, name) => expect(isValid(name)).toBe(false));
  it.each(accepted)('accept %s', (_what, name) => expect(isValid(name)).toBe(true));
  it(`accept up to ${max} characters and refuse more`, () => {
    expect(isValid('a'.repeat(max))).toBe(true);
    expect(isValid('a'.repeat(max + 1))).toBe(false);
  });
});

import { describe, expect, it } from 'vitest';
import type { Challenge, DeviceInfo } from '../../authenticator/index.js';
import {
  accountTitle,
  challengeContext,
  checkNumber,
  describeCountdown,
  describeDevice,
  describeExpiry,
  describeImport,
  describeOrigin,
  exportFileName,
  formatCode,
  formatDate,
  formatTime,
  outcomeOf,
  secondsLeft,
} from './format.js';

const UTC = { timeZone: 'UTC' };
const NOW = new Date('2026-11-28T14:03:20Z');

function challenge(overrides: Partial<Challenge> = {}): Challenge {
  return {
    id: 'c1',
    status: 'pending',
    purpose: 'sign-in',
    account: { email: 'alex@example.org' },
    app: 'NHSmail sign-in',
    ip: '203.0.113.10',
    location: 'Leeds, GB',
    createdAt: '2026-11-28T14:03:05Z',
    expiresAt: '2026-11-28T14:04:05Z',
    numberLength: 2,
    ...overrides,
  };
}

describe('times', () => {
  it.each([
    ['2026-11-28T14:03:05Z', '14:03'],
    ['2026-11-28T00:00:00Z', '00:00'],
    ['2026-11-27T23:59:00Z', '27 November at 23:59'],
    ['not a date', 'Not known'],
  ])('formatTime(%s) is %s', (iso, expected) => {
    expect(formatTime(iso, NOW, UTC)).toBe(expected);
  });

  it.each([
    ['2026-11-28T14:03:05Z', '28 November 2026'],
    [null, 'Never'],
  ])('formatDate(%s) is %s', (iso, expected) => {
    expect(formatDate(iso, UTC)).toBe(expected);
  });

  it.each([
    ['2026-11-28T14:04:05Z', 45, 'It expires in 45 seconds'],
    ['2026-11-28T14:03:20.500Z', 1, 'It expires in 1 second'],
    ['2026-11-28T14:03:21Z', 1, 'It expires in 1 second'],
    ['2026-11-28T14:03:20Z', 0, 'It has expired'],
    ['2026-11-28T14:00:00Z', 0, 'It has expired'],
  ])('a request expiring at %s has %i seconds left: "%s"', (expiresAt, seconds, text) => {
    expect(secondsLeft(expiresAt, NOW)).toBe(seconds);
    expect(describeExpiry(expiresAt, NOW)).toBe(text);
  });
});

describe("a request's context", () => {
  it('lists the account, the application, the address, the place and the time', () => {
    expect(challengeContext(challenge(), NOW, UTC)).toEqual([
      { key: 'Account', value: 'alex@example.org' },
      { key: 'Signing in to', value: 'NHSmail sign-in' },
      { key: 'IP address', value: '203.0.113.10' },
      { key: 'Location', value: 'Leeds, GB' },
      { key: 'Time', value: '14:03' },
    ]);
  });

  it('says "Not known" for what the server could not tell', () => {
    const rows = challengeContext(challenge({ ip: null, location: null }), NOW, UTC);
    expect(rows.find((r) => r.key === 'IP address')?.value).toBe('Not known');
    expect(rows.find((r) => r.key === 'Location')?.value).toBe('Not known');
  });

  it.each([
    [{ ip: '203.0.113.10', location: 'Leeds, GB' }, 'Leeds, GB (203.0.113.10)'],
    [{ ip: '203.0.113.10', location: null }, '203.0.113.10'],
    [{ ip: null, location: 'Leeds, GB' }, 'Leeds, GB'],
    [{ ip: null, location: null }, 'Not known'],
  ])('describes where %o came from as "%s"', (where, text) => {
    expect(describeOrigin(where)).toBe(text);
  });
});

describe('the number the user types', () => {
  it.each([
    ['47', 2, 'sign-in', { digits: '47' }],
    [' 4 7 ', 2, 'sign-in', { digits: '47' }],
    ['07', 2, 'sign-in', { digits: '07' }],
    ['123456', 6, 'sign-in', { digits: '123456' }],
    ['', 2, 'sign-in', { error: 'Enter the number shown on the sign-in page' }],
    ['   ', 2, 'test', { error: 'Enter the number shown on the Security info page' }],
    ['4a', 2, 'sign-in', { error: 'The number must only include digits 0 to 9' }],
    ['٤٧', 2, 'sign-in', { error: 'The number must only include digits 0 to 9' }],
    ['4', 2, 'sign-in', { error: 'Enter the 2-digit number shown on the sign-in page' }],
    ['474', 2, 'test', { error: 'Enter the 2-digit number shown on the Security info page' }],
  ] as const)('"%s" for a %i-digit %s request gives %o', (input, numberLength, purpose, expected) => {
    expect(checkNumber(input, { numberLength, purpose })).toEqual(expected);
  });
});

describe('outcomes', () => {
  it.each([
    ['approved', 'sign-in', 'Approved', true],
    ['approved', 'test', 'Approved', true],
    ['denied', 'sign-in', 'Denied', false],
    ['reported', 'sign-in', 'Reported', false],
    ['wrong-number', 'sign-in', 'The number did not match', false],
    ['challenge-expired', 'sign-in', 'The request has expired', false],
    ['expired', 'test', 'The request has expired', false],
    ['challenge-decided', 'sign-in', 'The request has already been answered', false],
    ['used', 'sign-in', 'The request has already been answered', false],
    ['challenge-not-found', 'sign-in', 'The request has expired or was answered', false],
    ['something-new', 'sign-in', 'The request has expired or was answered', false],
  ] as const)('%s (%s) is titled "%s"', (result, purpose, title, success) => {
    const outcome = outcomeOf(result, purpose);
    expect(outcome.title).toBe(title);
    expect(outcome.success).toBe(success);
    expect(outcome.body.length).toBeGreaterThan(0);
  });

  it('sends the user back to the page they came from', () => {
    expect(outcomeOf('approved', 'test').body.join(' ')).toContain('Security info page');
    expect(outcomeOf('approved', 'sign-in').body.join(' ')).toContain('sign-in page');
    expect(outcomeOf('reported', 'sign-in').body.join(' ')).toContain('Change it');
  });
});

describe('codes', () => {
  it.each([
    ['123456', '123 456'],
    ['1234567', '1234 567'],
    ['12345678', '1234 5678'],
    ['12345', '12345'],
  ])('shows %s as "%s"', (code, shown) => {
    expect(formatCode(code)).toBe(shown);
  });

  it.each([
    [1, '1 second left'],
    [30, '30 seconds left'],
  ])('counts down %i as "%s"', (seconds, text) => {
    expect(describeCountdown(seconds)).toBe(text);
  });

  it.each([
    [{ issuer: 'Example Mail', label: 'alex@example.com' }, 'Example Mail (alex@example.com)'],
    [{ issuer: '', label: 'alex@example.com' }, 'alex@example.com'],
    [{ issuer: 'alex', label: 'alex' }, 'alex'],
  ])('names %o "%s"', (account, title) => {
    expect(accountTitle(account)).toBe(title);
  });

  it("names the export file by the phone's date", () => {
    expect(exportFileName(new Date(2026, 0, 5, 9, 30))).toBe('portcullis-codes-2026-01-05.json');
  });

  it.each([
    [2, 0, '2 accounts added.'],
    [1, 1, '1 account added. 1 account was already in this app.'],
    [0, 3, 'No new accounts were added. 3 accounts were already in this app.'],
    [0, 0, 'The file had no accounts in it.'],
  ])('describes an import of %i new and %i known accounts', (added, skipped, text) => {
    expect(describeImport(added, skipped)).toBe(text);
  });
});

describe('devices', () => {
  it('says when a device was added and last used', () => {
    const device: DeviceInfo = { id: 'd1', name: 'Work phone', createdAt: '2026-11-01T10:00:00Z', lastUsedAt: null, current: true };
    expect(describeDevice(device, UTC)).toEqual([
      { key: 'Added', value: '1 November 2026' },
      { key: 'Last used', value: 'Never' },
    ]);
  });
});

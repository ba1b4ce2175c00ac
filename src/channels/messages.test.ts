import { describe, expect, it } from 'vitest';
import { DeliveryError } from './errors.js';
import { checkMessage, maskEmailAddress, maskPhoneNumber } from './messages.js';
import type { OutgoingMessage } from './types.js';

const sms: OutgoingMessage = { channel: 'sms', to: '+447700900123', purpose: 'sign-in-code', text: '123456 is your code', code: '123456' };
const email: OutgoingMessage = { channel: 'email', to: 'alex@example.org', purpose: 'security-notice', subject: 'A new sign-in method', text: 'Hello' };

describe('checkMessage', () => {
  it('accepts well-formed messages', () => {
    expect(() => checkMessage(sms)).not.toThrow();
    expect(() => checkMessage({ ...sms, channel: 'voice' })).not.toThrow();
    expect(() => checkMessage(email)).not.toThrow();
  });

  it.each<[string, Partial<OutgoingMessage>, string]>([
    ['a national number', { to: '07700900123' }, 'E.164'],
    ['a number with spaces', { to: '+44 7700 900123' }, 'E.164'],
    ['an email address for a text', { to: 'alex@example.org' }, 'E.164'],
    ['a purpose with content in it', { purpose: 'code 123456' }, 'purpose'],
    ['an empty text', { text: '  ' }, 'text'],
    ['a code with spaces', { code: '123 456' }, 'code'],
    ['an unknown channel', { channel: 'pigeon' as OutgoingMessage['channel'] }, 'channel'],
    ['an email without a subject', { ...email, subject: undefined }, 'subject'],
    ['a subject that would inject a header', { ...email, subject: 'Hi\r\nBcc: eve@example.org' }, 'subject'],
    ['an email to a phone number', { ...email, to: '+447700900123' }, 'email address'],
    ['an email address padded with spaces', { ...email, to: ' alex@example.org' }, 'email address'],
  ])('refuses %s, naming the field but not its value', (_name, change, field) => {
    let error: unknown;
    try {
      checkMessage({ ...sms, ...change });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DeliveryError);
    expect((error as DeliveryError).code).toBe('message-invalid');
    expect((error as DeliveryError).retryable).toBe(false);
    expect((error as DeliveryError).message).toContain(field);
    expect((error as DeliveryError).message).not.toContain('07700900123');
  });
});

describe('masking recipients for logs', () => {
  it.each([
    ['+447700900123', '+44 7••• ••• 123'],
    ['+353851234567', '+353 8••••• 567'],
    ['+14155550123', '+1 4••• ••• 123'],
    ['+79161234567', '+7 9••• ••• 567'],
    ['+35312345', '+353 1• 345'],
    ['+2348012345678', '+234 8••• ••• 678'],
    ['+861012345678', '+86 1••• ••• 678'],
  ])('masks %s as %s', (e164, masked) => {
    expect(maskPhoneNumber(e164)).toBe(masked);
  });

  it('masks email addresses to their first character and domain', () => {
    expect(maskEmailAddress('alex.smith@example.org')).toBe('a•••@example.org');
    expect(maskEmailAddress('nonsense')).toBe('•••');
  });
});

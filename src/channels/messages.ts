/**
 * Checking a message before it is queued, and masking recipients for logs. Logs and metrics never
 * carry a message's text, its code, or a whole phone number or email address.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { isValidEmail } from '../core/email.js';
import { DeliveryError } from './errors.js';
import { channelKinds, type OutgoingMessage } from './types.js';

/** ITU-T E.164: a plus, a country code that does not start with 0, at most 15 digits in all. */
const E164 = /^\+[1-9]\d{6,14}$/;
/** Purposes are metric-safe names: they must not be able to smuggle content into logs. */
const PURPOSE = /^[a-z][a-z0-9-]{0,63}$/;
// RFC 5322 §2.1.1: header lines; a subject with CR or LF could inject headers.
const SUBJECT = /^[^\r\n]{1,200}$/;

export function isE164(value: string): boolean {
  return E164.test(value);
}

/** Throws a `message-invalid` DeliveryError naming the field at fault (never its value). */
export function checkMessage(message: OutgoingMessage): void {
  const invalid = (detail: string) => new DeliveryError('message-invalid', { detail });
  if (!channelKinds.includes(message.channel)) throw invalid('unknown channel');
  if (!PURPOSE.test(message.purpose)) throw invalid('purpose must be a lower-case name such as sign-in-code');
  if (message.channel === 'email') {
    // The same rule as users' addresses (src/core/email.ts), so every account's address can be written to.
    if (message.to !== message.to.trim() || !isValidEmail(message.to)) throw invalid('to must be an email address');
    if (message.subject === undefined || !SUBJECT.test(message.subject)) throw invalid('an email needs a one-line subject');
  } else if (!isE164(message.to)) {
    throw invalid('to must be an E.164 phone number, like +447700900123');
  }
  if (typeof message.text !== 'string' || message.text.trim() === '' || message.text.length > 10_000) throw invalid('text must be 1 to 10000 characters');
  if (message.code !== undefined && !/^[A-Za-z0-9]{4,12}$/.test(message.code)) throw invalid('code must be 4 to 12 letters or digits');
}

/** "+44 7••• ••• 123": the country, the first digit and the last three; enough to tell numbers apart in logs. */
export function maskPhoneNumber(e164: string): string {
  const parsed = parsePhoneNumberFromString(e164);
  if (!parsed) return `${e164.slice(0, 2)}•••${e164.slice(-3)}`;
  const digits = String(parsed.nationalNumber);
  if (digits.length <= 4) return `+${parsed.countryCallingCode} ${'•'.repeat(digits.length)}`;
  const middle = '•'.repeat(digits.length - 4);
  // Grouped as a UK mobile is written (7••• ••• 123) when the lengths allow, else in one block.
  const grouped = middle.length === 6 ? `${middle.slice(0, 3)} ${middle.slice(3)}` : middle;
  return `+${parsed.countryCallingCode} ${digits[0]}${grouped} ${digits.slice(-3)}`;
}

/** "a•••@example.org": the first character and the domain. */
export function maskEmailAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 1) return '•••';
  return `${address[0]}•••${address.slice(at)}`;
}

export function maskRecipient(message: Pick<OutgoingMessage, 'channel' | 'to'>): string {
  return message.channel === 'email' ? maskEmailAddress(message.to) : maskPhoneNumber(message.to);
}

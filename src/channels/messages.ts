/**
 * Checking a message before it is queued, and masking recipients for logs. Logs and metrics never
 * carry a message's text, its code, or a whole phone number or email address.
 */
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

/**
 * ITU-T E.164 country calling codes are prefix-free: 1 and 7 are one digit, these are two, and every
 * other is three. Enough to split a number for masking without loading a phone-number library into
 * every process (libphonenumber-js costs about 170 ms to load).
 */
const TWO_DIGIT_CODES = new Set(
  '20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98'.split(' '),
);

function countryCallingCode(digits: string): string {
  if (digits.startsWith('1') || digits.startsWith('7')) return digits.slice(0, 1);
  return TWO_DIGIT_CODES.has(digits.slice(0, 2)) ? digits.slice(0, 2) : digits.slice(0, 3);
}

/** "+44 7••• ••• 123": the country, the first digit and the last three; enough to tell numbers apart in logs. */
export function maskPhoneNumber(e164: string): string {
  const digits = e164.replace(/\D/g, '');
  const country = countryCallingCode(digits);
  const national = digits.slice(country.length);
  if (national.length <= 4) return `+${country} ${'•'.repeat(national.length)}`;
  const middle = '•'.repeat(national.length - 4);
  // Grouped as a UK mobile is written (7••• ••• 123) when the lengths allow, else in one block.
  const grouped = middle.length === 6 ? `${middle.slice(0, 3)} ${middle.slice(3)}` : middle;
  return `+${country} ${national[0]}${grouped} ${national.slice(-3)}`;
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

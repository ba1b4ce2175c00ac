/**
 * Phone numbers for text messages and calls: parsed and validated with libphonenumber-js (Google's
 * metadata), stored in E.164, limited to the allowed countries (GB by default: premium and
 * international routes are where SMS pumping fraud happens), shown masked.
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js/max';
import type { ErrorCode, ErrorParams } from '../errors.js';

export type PhoneCheck = { ok: true; e164: string; country: string } | { ok: false; code: ErrorCode; params: ErrorParams };

const REGION_NAMES = new Intl.DisplayNames(['en-GB'], { type: 'region' });

export function countryNames(countries: readonly string[]): string {
  const names = countries.map((c) => (c === 'GB' ? 'the UK' : (REGION_NAMES.of(c) ?? c)));
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

export interface PhoneCheckOptions {
  allowedCountries: readonly string[];
  requireMobile: boolean;
  /** PHONE_ALLOW_DRAMA_RANGE: also accept Ofcom's drama numbers (see isDramaNumber); for development. */
  allowDramaRange?: boolean;
}

/**
 * Ofcom's range for drama, +44 7700 900000–900999: UK mobile numbers reserved for fiction, never given
 * to a subscriber, so the demo's phones can be typed without being anyone's. libphonenumber-js marks
 * them invalid (its metadata leaves the range out), so they are recognised here by their digits.
 */
export function isDramaNumber(e164: string): boolean {
  return /^\+447700900\d{3}$/.test(e164);
}

/**
 * `requireMobile`: text messages need a mobile number; calls may go to any line. Numbers without a
 * country code are read as the first allowed country's.
 */
export function checkPhoneNumber(text: string, options: PhoneCheckOptions): PhoneCheck {
  const value = text.trim();
  if (value === '') return { ok: false, code: 'phone-missing', params: {} };
  if (!/^[+(\d][\d\s().-]{5,24}$/.test(value)) return { ok: false, code: 'phone-invalid', params: {} };
  const defaultCountry = (options.allowedCountries[0] ?? 'GB') as CountryCode;
  const parsed = parsePhoneNumberFromString(value, defaultCountry);
  if (!parsed) return { ok: false, code: 'phone-invalid', params: {} };
  // A drama number is a UK mobile in all but libphonenumber's metadata; only accepted when asked for.
  const drama = options.allowDramaRange === true && isDramaNumber(parsed.number);
  if (!drama && !parsed.isValid()) return { ok: false, code: 'phone-invalid', params: {} };
  const country = drama ? 'GB' : (parsed.country ?? '');
  if (!options.allowedCountries.includes(country)) {
    return { ok: false, code: 'phone-country-not-allowed', params: { countries: countryNames(options.allowedCountries) } };
  }
  const type = drama ? 'MOBILE' : parsed.getType();
  if (options.requireMobile && type !== 'MOBILE' && type !== 'FIXED_LINE_OR_MOBILE') return { ok: false, code: 'phone-not-mobile', params: {} };
  return { ok: true, e164: parsed.number, country };
}

/** "+44 7••• ••• 456": enough to recognise one's own number, not enough to learn someone else's. */
export function maskPhoneNumber(e164: string): string {
  const parsed = parsePhoneNumberFromString(e164);
  const international = parsed?.formatInternational() ?? e164;
  const [countryCode = '', ...rest] = international.split(' ');
  const national = rest.join(' ');
  const digits = national.replace(/\D/g, '');
  let seen = 0;
  const masked = national.replace(/\d/g, (d) => {
    seen += 1;
    return seen === 1 || seen > digits.length - 3 ? d : '•';
  });
  return `${countryCode} ${masked}`.trim();
}

/** The ISO 3166 country of an E.164 number ('ZZ' when unknown), for per-country quotas. */
export function countryOfNumber(e164: string): string {
  // libphonenumber gives no country for an invalid number, and drama numbers are invalid to it.
  if (isDramaNumber(e164)) return 'GB';
  return parsePhoneNumberFromString(e164)?.country ?? 'ZZ';
}

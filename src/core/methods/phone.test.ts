import { describe, expect, it } from 'vitest';
import { checkPhoneNumber, countryOfNumber, isDramaNumber, maskPhoneNumber } from './phone.js';

const gb = { allowedCountries: ['GB'], requireMobile: true };

describe('checkPhoneNumber (E.164, allowed countries)', () => {
  it.each([
    ['07400 123456', '+447400123456'],
    ['+44 7400 123456', '+447400123456'],
    ['(07400) 123-456', '+447400123456'],
  ])('reads %j as %s', (input, e164) => {
    expect(checkPhoneNumber(input, gb)).toEqual({ ok: true, e164, country: 'GB' });
  });

  it.each([
    ['', 'phone-missing'],
    ['phone me', 'phone-invalid'],
    ['0740', 'phone-invalid'],
    ['+1 202 555 0143', 'phone-country-not-allowed'],
    ['+44 20 7946 0018', 'phone-not-mobile'],
  ])('refuses %j with %s', (input, code) => {
    const result = checkPhoneNumber(input, gb);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.code).toBe(code);
  });

  it('lets calls go to a landline, and names the allowed countries when refusing', () => {
    expect(checkPhoneNumber('+44 20 7946 0018', { allowedCountries: ['GB'], requireMobile: false })).toMatchObject({ ok: true, e164: '+442079460018' });
    expect(checkPhoneNumber('+1 202 555 0143', { allowedCountries: ['GB', 'IE'], requireMobile: false })).toMatchObject({
      ok: false,
      params: { countries: 'the UK or Ireland' },
    });
  });
});

// Issue #17: Ofcom's drama range (+44 7700 900000–900999) is refused by libphonenumber, so the demo's
// own phones could not be typed; PHONE_ALLOW_DRAMA_RANGE accepts that range and nothing else.
describe('checkPhoneNumber with and without the drama range (PHONE_ALLOW_DRAMA_RANGE)', () => {
  const drama = { ...gb, allowDramaRange: true };
  type Outcome = { ok: true; e164: string } | { ok: false; code: string };
  const accepted = (e164: string): Outcome => ({ ok: true, e164 });
  const refused = (code: string): Outcome => ({ ok: false, code });

  it.each<[string, Outcome, Outcome]>([
    // input, without the option, with it
    ['07700 900 982', refused('phone-invalid'), accepted('+447700900982')],
    ['+44 7700 900123', refused('phone-invalid'), accepted('+447700900123')],
    ['07700900000', refused('phone-invalid'), accepted('+447700900000')],
    ['07700 900999', refused('phone-invalid'), accepted('+447700900999')],
    // Beside the range, still whatever libphonenumber says: 901000 is unallocated, 899999 is Jersey's.
    ['07700 901000', refused('phone-invalid'), refused('phone-invalid')],
    ['07700 899999', refused('phone-country-not-allowed'), refused('phone-country-not-allowed')],
    ['07701 900123', accepted('+447701900123'), accepted('+447701900123')],
    // The option changes nothing else.
    ['07400 123456', accepted('+447400123456'), accepted('+447400123456')],
    ['0770090012', refused('phone-invalid'), refused('phone-invalid')],
    ['+44 20 7946 0018', refused('phone-not-mobile'), refused('phone-not-mobile')],
    ['+1 202 555 0143', refused('phone-country-not-allowed'), refused('phone-country-not-allowed')],
  ])('%j: %o without the option, %o with it', (input, without, withOption) => {
    const outcome = (result: ReturnType<typeof checkPhoneNumber>): Outcome => (result.ok ? { ok: true, e164: result.e164 } : { ok: false, code: result.code });
    expect(outcome(checkPhoneNumber(input, gb))).toEqual(without);
    expect(outcome(checkPhoneNumber(input, { ...gb, allowDramaRange: false }))).toEqual(without);
    expect(outcome(checkPhoneNumber(input, drama))).toEqual(withOption);
  });

  it('counts a drama number as a UK mobile, for texts and calls, and only where the UK is allowed', () => {
    expect(checkPhoneNumber('07700 900456', drama)).toEqual({ ok: true, e164: '+447700900456', country: 'GB' });
    expect(checkPhoneNumber('07700 900456', { ...drama, requireMobile: false })).toMatchObject({ ok: true, e164: '+447700900456' });
    // Read as an Irish number when Ireland comes first: not a drama number, and invalid there.
    expect(checkPhoneNumber('07700 900456', { allowedCountries: ['IE'], requireMobile: true, allowDramaRange: true })).toMatchObject({ ok: false, code: 'phone-invalid' });
    expect(checkPhoneNumber('+44 7700 900456', { allowedCountries: ['IE'], requireMobile: true, allowDramaRange: true })).toMatchObject({
      ok: false,
      code: 'phone-country-not-allowed',
    });
  });

  it.each([
    ['+447700900000', true],
    ['+447700900999', true],
    ['+447700901000', false],
    ['+447700899999', false],
    ['+4477009001234', false],
    ['+357700900123', false],
  ])('isDramaNumber(%s) is %s', (e164, expected) => {
    expect(isDramaNumber(e164)).toBe(expected);
  });
});

describe('maskPhoneNumber', () => {
  it('keeps the country code, the first digit and the last three', () => {
    expect(maskPhoneNumber('+447400123456')).toBe('+44 7••• •••456');
  });
  it('gives the country for quotas', () => {
    expect(countryOfNumber('+447400123456')).toBe('GB');
    expect(countryOfNumber('+12025550143')).toBe('US');
    // A drama number is invalid to libphonenumber, which then names no country: it is still the UK's.
    expect(countryOfNumber('+447700900123')).toBe('GB');
  });
});

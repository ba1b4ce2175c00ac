import { describe, expect, it } from 'vitest';
import { checkPhoneNumber, countryOfNumber, maskPhoneNumber } from './phone.js';

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

describe('maskPhoneNumber', () => {
  it('keeps the country code, the first digit and the last three', () => {
    expect(maskPhoneNumber('+447400123456')).toBe('+44 7••• •••456');
  });
  it('gives the country for quotas', () => {
    expect(countryOfNumber('+447400123456')).toBe('GB');
    expect(countryOfNumber('+12025550143')).toBe('US');
  });
});

import { HOTP, Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { checkTotp, formatKeyForTyping, generateTotp, totpSecretFromBytes, totpStep, totpUri } from './totp.js';

// RFC 4226 Appendix D and RFC 6238 Appendix B: the ASCII secret "12345678901234567890".
const RFC_SECRET = new TextEncoder().encode('12345678901234567890');
const RFC_BASE32 = totpSecretFromBytes(RFC_SECRET);

describe('HOTP (RFC 4226 Appendix D test values)', () => {
  it.each([
    [0, '755224'],
    [1, '287082'],
    [2, '359152'],
    [3, '969429'],
    [4, '338314'],
    [5, '254676'],
    [6, '287922'],
    [7, '162583'],
    [8, '399871'],
    [9, '520489'],
  ])('counter %i → %s', (counter, expected) => {
    expect(HOTP.generate({ secret: Secret.fromBase32(RFC_BASE32), counter, algorithm: 'SHA1', digits: 6 })).toBe(expected);
  });
});

describe('TOTP (RFC 6238 Appendix B test vectors, SHA-1)', () => {
  it.each([
    [59, '94287082'],
    [1_111_111_109, '07081804'],
    [1_111_111_111, '14050471'],
    [1_234_567_890, '89005924'],
    [2_000_000_000, '69279037'],
    [20_000_000_000, '65353130'],
  ])('T = %i s → %s (8 digits), and its last six digits as our 6-digit code', (seconds, expected) => {
    const timestamp = seconds * 1000;
    expect(TOTP.generate({ secret: Secret.fromBase32(RFC_BASE32), algorithm: 'SHA1', digits: 8, period: 30, timestamp })).toBe(expected);
    expect(generateTotp(RFC_BASE32, new Date(timestamp))).toBe(expected.slice(-6));
    expect(checkTotp({ secretBase32: RFC_BASE32, code: expected.slice(-6), now: new Date(timestamp), lastUsedStep: null })).toEqual({
      ok: true,
      step: Math.floor(seconds / 30),
    });
  });
});

describe('checkTotp', () => {
  const now = new Date('2026-11-28T10:00:10Z');
  const step = totpStep(now);
  const at = (offsetSteps: number) => generateTotp(RFC_BASE32, new Date(now.getTime() + offsetSteps * 30_000));

  it('accepts one step of drift either way (RFC 6238 §5.2) and no more', () => {
    expect(checkTotp({ secretBase32: RFC_BASE32, code: at(-1), now, lastUsedStep: null })).toEqual({ ok: true, step: step - 1 });
    expect(checkTotp({ secretBase32: RFC_BASE32, code: at(1), now, lastUsedStep: null })).toEqual({ ok: true, step: step + 1 });
    expect(checkTotp({ secretBase32: RFC_BASE32, code: at(-2), now, lastUsedStep: null })).toEqual({ ok: false, reason: 'code-incorrect' });
    expect(checkTotp({ secretBase32: RFC_BASE32, code: at(2), now, lastUsedStep: null })).toEqual({ ok: false, reason: 'code-incorrect' });
  });

  it('refuses a code whose step was already used, or an earlier one (RFC 6238 §5.2: one use per OTP)', () => {
    expect(checkTotp({ secretBase32: RFC_BASE32, code: at(0), now, lastUsedStep: step })).toEqual({ ok: false, reason: 'code-reused' });
    expect(checkTotp({ secretBase32: RFC_BASE32, code: at(-1), now, lastUsedStep: step })).toEqual({ ok: false, reason: 'code-reused' });
    expect(checkTotp({ secretBase32: RFC_BASE32, code: at(1), now, lastUsedStep: step })).toEqual({ ok: true, step: step + 1 });
  });

  it.each(['', '12345', '1234567', 'abcdef', '12 34 5x'])('refuses %j as not a 6-digit code', (code) => {
    expect(checkTotp({ secretBase32: RFC_BASE32, code, now, lastUsedStep: null })).toEqual({ ok: false, reason: 'code-format' });
  });

  it('ignores spaces typed inside the code', () => {
    const code = at(0);
    expect(checkTotp({ secretBase32: RFC_BASE32, code: `${code.slice(0, 3)} ${code.slice(3)}`, now, lastUsedStep: null }).ok).toBe(true);
  });
});

describe('enrolment helpers', () => {
  it('makes 160-bit secrets only', () => {
    expect(totpSecretFromBytes(new Uint8Array(20))).toHaveLength(32);
    expect(() => totpSecretFromBytes(new Uint8Array(16))).toThrow(RangeError);
  });

  it('writes the Key URI Format with the organisation as issuer', () => {
    const uri = new URL(totpUri({ secretBase32: RFC_BASE32, issuer: 'NHSmail', account: 'alex@nhs.net' }));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/NHSmail:alex@nhs.net');
    expect(Object.fromEntries(uri.searchParams)).toEqual({ issuer: 'NHSmail', secret: RFC_BASE32, algorithm: 'SHA1', digits: '6', period: '30' });
  });

  it('groups the key in fours for typing', () => {
    expect(formatKeyForTyping('GEZDGNBVGY3TQOJQ')).toBe('GEZD GNBV GY3T QOJQ');
  });
});

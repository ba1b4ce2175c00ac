/**
 * TOTP (RFC 6238) over HOTP (RFC 4226), computed by the `otpauth` library: 160-bit secrets
 * (RFC 4226 §4 R6 recommends 160 bits), SHA-1, 6 digits, 30-second steps — what every authenticator
 * app supports. Pure: the caller passes the secret, the time and the last step already used.
 */
import { Secret, TOTP } from 'otpauth';

export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
export const TOTP_SECRET_BYTES = 20;
/** RFC 6238 §5.2: accept one step of drift either way. */
export const TOTP_WINDOW = 1;

export function totpSecretFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== TOTP_SECRET_BYTES) throw new RangeError(`a TOTP secret is ${TOTP_SECRET_BYTES} bytes`);
  return new Secret({ buffer: new Uint8Array(bytes).buffer }).base32;
}

/** The Key URI Format (Google Authenticator's otpauth:// URI) that QR codes carry. */
export function totpUri(input: { secretBase32: string; issuer: string; account: string }): string {
  return new TOTP({
    issuer: input.issuer,
    label: input.account,
    secret: Secret.fromBase32(input.secretBase32),
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
  }).toString();
}

/** The key for typing by hand, in groups of four: "ABCD EFGH …". */
export function formatKeyForTyping(secretBase32: string): string {
  return secretBase32.replace(/=+$/, '').match(/.{1,4}/g)?.join(' ') ?? '';
}

export function totpStep(now: Date): number {
  return Math.floor(now.getTime() / 1000 / TOTP_PERIOD_SECONDS);
}

export function generateTotp(secretBase32: string, now: Date): string {
  return TOTP.generate({ secret: Secret.fromBase32(secretBase32), algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_SECONDS, timestamp: now.getTime() });
}

export type TotpCheck =
  | { ok: true; step: number }
  | { ok: false; reason: 'code-format' | 'code-incorrect' | 'code-reused' };

/**
 * Checks a code against the current step ±1. A code whose step is at or before the last step already
 * accepted is refused (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the same OTP
 * after the successful validation has been issued for the first OTP"); the caller records the new
 * step atomically, so two racing requests cannot both use one code.
 */
export function checkTotp(input: { secretBase32: string; code: string; now: Date; lastUsedStep: number | null }): TotpCheck {
  const code = input.code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(code)) return { ok: false, reason: 'code-format' };
  const delta = TOTP.validate({
    token: code,
    secret: Secret.fromBase32(input.secretBase32),
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    timestamp: input.now.getTime(),
    window: TOTP_WINDOW,
  });
  if (delta === null) return { ok: false, reason: 'code-incorrect' };
  const step = totpStep(input.now) + delta;
  if (input.lastUsedStep !== null && step <= input.lastUsedStep) return { ok: false, reason: 'code-reused' };
  return { ok: true, step };
}

/**
 * Rules for choosing a password, after NIST SP 800-63B §5.1.1.2 (and -4 §3.1.1.2): a minimum and
 * maximum length counted in Unicode code points, no composition rules, and a check against a blocklist
 * of commonly used passwords and context-specific words. The reason is given on rejection.
 */
import type { ErrorCode, ErrorParams } from './errors.js';

export interface PasswordRules {
  minLength: number;
  maxLength: number;
}

export interface NewPasswordContext {
  /** True when the (lower-cased) password is on the blocklist. */
  isCommon: (lowerCased: string) => boolean;
  /** The user's email address, if known. */
  email?: string | undefined;
  /** Names of the service and organisation. */
  serviceNames: readonly string[];
}

export type PasswordCheck = { ok: true } | { ok: false; code: ErrorCode; params: ErrorParams };

/**
 * NIST SP 800-63B §5.1.1.2: "the verifier SHOULD apply the Normalization Process for Stabilized
 * Strings using either the NFKC or NFKD normalization". Applied before hashing and before verifying.
 */
export function normalisePassword(password: string): string {
  return password.normalize('NFKC');
}

export function passwordLength(password: string): number {
  return [...normalisePassword(password)].length;
}

export function checkNewPassword(password: string, rules: PasswordRules, context: NewPasswordContext): PasswordCheck {
  if (password.length === 0) return { ok: false, code: 'new-password-missing', params: {} };
  const length = passwordLength(password);
  if (length < rules.minLength) return { ok: false, code: 'new-password-too-short', params: { min: rules.minLength } };
  if (length > rules.maxLength) return { ok: false, code: 'new-password-too-long', params: { max: rules.maxLength } };
  const lower = normalisePassword(password).toLowerCase();
  if (context.isCommon(lower)) return { ok: false, code: 'new-password-common', params: {} };
  const words = [...context.serviceNames];
  if (context.email) {
    const email = context.email.toLowerCase();
    words.push(email);
    const local = email.split('@')[0] ?? '';
    if (local.length >= 4) words.push(local);
  }
  for (const word of words) {
    const w = word.toLowerCase().trim();
    if (w.length >= 4 && lower.includes(w)) return { ok: false, code: 'new-password-contains-context', params: {} };
  }
  return { ok: true };
}

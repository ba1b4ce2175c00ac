/**
 * Email addresses identify users. They are unique case-insensitively: `normaliseEmail` gives the form
 * stored in the unique index and used for lookups and throttle keys.
 */

/** Trim, Unicode NFC and lower-case the whole address (mailbox providers treat it case-insensitively). */
export function normaliseEmail(email: string): string {
  return email.trim().normalize('NFC').toLowerCase();
}

// Deliberately permissive (RFC 5321 is wider still): one @, something either side, a dot in the domain,
// no spaces, at most 254 characters (RFC 5321 §4.5.3.1.3 path limit less the angle brackets). No control
// characters (RFC 5322 §3.2.3's atext has none) or unpaired surrogates (no UTF-8 form) either, and so no
// NUL, which PostgreSQL cannot store (issue #12).
const EMAIL_PATTERN = /^[^\s@\p{Cc}\p{Cs}]{1,64}@[^\s@\p{Cc}\p{Cs}]+\.[^\s@\p{Cc}\p{Cs}]+$/u;

export function isValidEmail(email: string): boolean {
  const value = email.trim();
  return value.length <= 254 && EMAIL_PATTERN.test(value);
}

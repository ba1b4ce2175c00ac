/**
 * Email addresses identify users. They are unique case-insensitively: `normaliseEmail` gives the form
 * stored in the unique index and used for lookups and throttle keys.
 */

/** Trim, Unicode NFC and lower-case the whole address (mailbox providers treat it case-insensitively). */
export function normaliseEmail(email: string): string {
  return email.trim().normalize('NFC').toLowerCase();
}

// Deliberately permissive (RFC 5321 is wider still): one @, something either side, a dot in the domain,
// no spaces, at most 254 characters (RFC 5321 §4.5.3.1.3 path limit less the angle brackets).
const EMAIL_PATTERN = /^[^\s@]{1,64}@[^\s@]+\.[^\s@]+$/;

export function isValidEmail(email: string): boolean {
  const value = email.trim();
  return value.length <= 254 && EMAIL_PATTERN.test(value);
}

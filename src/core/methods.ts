/**
 * Authentication methods by name. The method registry (second factors) builds on these names; the
 * same names appear in sessions, the audit log, the database and the pages.
 */
/** `email`: a code sent to the user's mailbox, used only to start a password reset. */
export const methodKinds = ['password', 'sms', 'voice', 'totp', 'push', 'passkey', 'tap', 'email'] as const;

export type MethodKind = (typeof methodKinds)[number];

/** One use of a method in a session: which, and when (ISO 8601, UTC). */
export interface MethodUse {
  method: MethodKind;
  at: string;
}

/** RFC 8176 Authentication Method Reference values. */
export const amrValues: Record<MethodKind, string> = {
  password: 'pwd',
  sms: 'sms',
  voice: 'tel',
  totp: 'otp',
  push: 'swk',
  passkey: 'hwk',
  tap: 'otp',
  // RFC 8176 has no value for an emailed code; it is never part of a session's amr (a reset ends without one).
  email: 'otp',
};

/**
 * Authentication methods by name. The method registry (second factors, ./methods/registry.ts) builds on
 * these names; the same names appear in sessions, the audit log, the database and the pages.
 */
import { methodDefinitionList } from '../app/methods/definitions.js';
import type { SecondFactorKind } from './methods/registry.js';

/** `email`: a code sent to the user's mailbox, used only to start a password reset. */
export type MethodKind = 'password' | SecondFactorKind | 'email';

export const methodKinds: readonly MethodKind[] = ['password', ...methodDefinitionList.map((d) => d.kind), 'email'];

/** One use of a method in a session: which, and when (ISO 8601, UTC). */
export interface MethodUse {
  method: MethodKind;
  at: string;
}

/** RFC 8176 Authentication Method Reference values. */
export const amrValues = {
  password: 'pwd',
  ...Object.fromEntries(methodDefinitionList.map((d) => [d.kind, d.amr])),
  // RFC 8176 has no value for an emailed code; it is never part of a session's amr (a reset ends without one).
  email: 'otp',
} as Record<MethodKind, string>;

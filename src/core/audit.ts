/**
 * Audit events, produced by the core as effects and appended by the store. Append-only: nothing
 * updates or deletes them (the database refuses, too).
 */
export const auditEventTypes = [
  'sign-in.succeeded',
  'sign-in.failed',
  'sign-in.locked-out',
  'sign-out',
  'session.revoked',
  'organisation.created',
  'user.created',
  'user.disabled',
  'user.enabled',
  'user.activated',
  'user.password-set',
  'role.granted',
  'role.revoked',
  'method.added',
  'method.removed',
  'method.renamed',
  'admin-token.created',
  'admin-token.revoked',
  'admin-client.scope-set',
  'passkey.counter-regression',
  'passkey.sign-in-refused',
  'method.default-changed',
  'user.password-changed',
  'user.password-change-refused',
  'user.password-reset',
  'user.password-reset-requested',
  'sessions.ended-everywhere',
  'push.decided',
  'push.fraud-reported',
  'push.unblocked',
  'policy.applied',
  'policy.exception-added',
  'policy.exception-revoked',
  'policy.campaign-snoozed',
  'tap.issued',
  'tap.used',
  // Recovery codes (src/app/methods/recovery-code/): a set made, and a code used to sign in.
  'recovery-codes.created',
  'recovery-code.used',
  'user.methods-reset',
  'session.restriction-lifted',
  'group.created',
  'group.member-added',
  'group.member-removed',
  // OpenID Connect (docs/oidc.md#what-is-audited): registered clients, and what the token endpoint did.
  'oidc.client-added',
  'oidc.client-removed',
  'oidc.client-secret-rotated',
  'oidc.token-issued',
  'oidc.grant-refused',
  'oidc.token-revoked',
  'oidc.grant-revoked',
  // Back-channel logouts sent when a person is signed out of every application (src/app/oidc/sign-out.ts).
  'oidc.backchannel-logout-sent',
  'oidc.backchannel-logout-failed',
  // The interaction pages (issue #13, third step): a consent given, silently for a first-party client.
  'oidc.consent-given',
  // A report-only requirement targeting an application (client:KEY) that this sign-in did not meet (issue #13 point 4).
  'oidc.policy-requirement-unmet',
] as const;

export type AuditEventType = (typeof auditEventTypes)[number];

export type Actor =
  /** `reason`: why an administrator did it (the admin console and API ask), kept in the event as `why`. */
  | { kind: 'user'; userId: string; reason?: string }
  | { kind: 'cli'; name: string; reason?: string }
  /** An OpenID Connect client that authenticated at the token endpoint (its client_id). */
  | { kind: 'client'; clientId: string; reason?: string }
  | { kind: 'anonymous' }
  | { kind: 'system' };

export type AuditDetails = Record<string, string | number | boolean | null | string[]>;

export interface AuditEvent {
  type: AuditEventType;
  at: Date;
  actor: Actor;
  subjectUserId: string | null;
  ip: string | null;
  details: AuditDetails;
}

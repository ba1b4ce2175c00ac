/**
 * Table types for Kysely, written by hand. Times are ISO 8601 UTC text and flags are 0/1 integers in
 * both dialects (docs/adr/0002-dialect-neutral-storage.md), so one set of queries serves SQLite and
 * PostgreSQL.
 */
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

export interface OrganisationsTable {
  id: string;
  name: string;
  name_normalised: string;
  created_at: string;
}

export interface UsersTable {
  id: string;
  email: string;
  email_normalised: string;
  display_name: string;
  organisation_id: string;
  status: 'active' | 'disabled';
  /** PHC string (argon2id, with its parameters); null until the user sets a first password. */
  password_hash: string | null;
  password_changed_at: string | null;
  created_at: string;
  updated_at: string;
  /** The method prompted first at sign-in (the "Default sign-in method"); null: system-preferred. */
  default_method_id: string | null;
  /** Set when the user reported a push as "No, it's not me": push is refused until an administrator lifts it. */
  push_blocked_at: string | null;
  /** Roles, groups and method kinds as one key (src/core/policy/profile.ts), refreshed with every change to them. */
  policy_profile: Generated<string>;
}

export interface RolesTable {
  name: string;
  elevated: number;
  scope: 'none' | 'optional' | 'required';
  description: string;
  created_at: string;
}

export interface RoleAssignmentsTable {
  user_id: string;
  role_name: string;
  /** An organisation id, or '*' for everywhere. */
  scope: string;
  created_at: string;
}

export interface GroupsTable {
  id: string;
  name: string;
  name_normalised: string;
  description: string;
  created_at: string;
}

export interface GroupMembersTable {
  group_id: string;
  user_id: string;
  added_at: string;
}

export interface SessionsTable {
  /** SHA-256 of the cookie token: a copy of the database does not yield live sessions. */
  id: string;
  user_id: string;
  created_at: string;
  last_seen_at: string;
  /** The earlier of the idle and absolute timeouts, for clean-up. */
  expires_at: string;
  /** JSON array of { method, at }. */
  methods: string;
  restricted: string | null;
  /** The OpenID Connect session this one backs, once OIDC lands. */
  oidc_session_id: string | null;
  ip: string | null;
  user_agent: string | null;
  /** Until when a user with no second method may register their first without MFA (right after the password). */
  registration_grant_until: string | null;
}

export interface SignInFlowsTable {
  id: string;
  state: string;
  created_at: string;
  expires_at: string;
}

export interface ThrottlesTable {
  key: string;
  count: number;
  locked_until: string | null;
  expires_at: string;
  /** Who holds the counter's attempt lease (one attempt in flight), and until when. */
  lease_owner: string | null;
  lease_until: string | null;
}

export interface AuditEventsTable {
  id: Generated<number>;
  at: string;
  type: string;
  actor_type: string;
  actor_id: string | null;
  subject_user_id: string | null;
  ip: string | null;
  details: string;
}

/** The audit log's chain (migration 0013, src/app/audit-chain.ts): one row per sealed event, in seal order. */
export interface AuditChainTable {
  seq: number;
  /** bigint on PostgreSQL, which returns it as text. */
  event_id: number | string;
  prev_mac: string;
  mac: string;
  sealed_at: string;
}

/** The chain's head, written by the sealer now and then (AUDIT_CHECKPOINT_INTERVAL) and by `audit verify`. */
export interface AuditCheckpointsTable {
  id: Generated<number>;
  seq: number;
  mac: string;
  at: string;
}

export interface UserTokensTable {
  /** SHA-256 of the token. */
  id: string;
  user_id: string;
  purpose: 'activation';
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface AdminTokensTable {
  id: string;
  user_id: string;
  name: string;
  /** HMAC of the token under the code-hash key: the token itself is shown once and never kept. */
  token_hash: string;
  /** Space-separated admin API scopes (admin:read, admin:passes, admin:sessions, …). */
  scopes: string;
  created_at: string;
  expires_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export type AdminTokenRow = Selectable<AdminTokensTable>;

/** The dashboard's daily compliance counts (migration 0017). */
export interface ComplianceSnapshotsTable {
  day: string;
  /** '*': every organisation; otherwise an organisation id. */
  scope: string;
  counts: string;
  created_at: string;
}

/** Where a service client may use its admin scopes (migration 0016). */
export interface AdminClientsTable {
  client_id: string;
  /** JSON: ["*"] for every organisation, or organisation ids. */
  organisations: string;
  created_at: string;
}

export interface MethodsTable {
  id: string;
  user_id: string;
  kind: string;
  status: 'pending' | 'active';
  /** The authenticator app's name, or '' (phones show their masked number). */
  label: string;
  phone_e164: string | null;
  /** TOTP seed, AES-256-GCM under the key-encryption key (src/crypto/seal.ts). */
  secret_sealed: string | null;
  /** The last TOTP time step accepted: a code at or before it is refused (RFC 6238 §5.2). */
  totp_last_step: number | null;
  created_at: string;
  activated_at: string | null;
  last_used_at: string | null;
  /** A pending set-up is abandoned after this. */
  pending_expires_at: string | null;
  /** The method unit's own JSON (src/app/methods/<unit>/), read only by that unit. */
  data: string | null;
  /** What the unit finds the method by (a passkey's credential id), unique per kind. */
  lookup_key: string | null;
  /** The authenticator's model (a passkey's AAGUID), for a policy's model lists. */
  model: string | null;
}

export interface ChallengesTable {
  id: string;
  user_id: string | null;
  method_id: string | null;
  kind: string;
  purpose: 'sign-in' | 'step-up' | 'enrolment' | 'reset';
  /** What the challenge belongs to (a sign-in flow, a set-up, a reset): a code works only there. */
  binding: string;
  /** HMAC-SHA256 of the code under a key derived from the secret; never the code. */
  code_hash: string | null;
  failed_attempts: number;
  sends: number;
  created_at: string;
  last_sent_at: string;
  expires_at: string;
  consumed_at: string | null;
}

export interface OutboxTable {
  /** A UUID; also the reference given to providers that take one. */
  id: string;
  channel: 'sms' | 'voice' | 'email';
  /** A stable name such as 'sign-in-code' (never the content). */
  purpose: string;
  /** E.164 phone number or email address. */
  recipient: string;
  /** The message as JSON, sealed (src/crypto/seal.ts) and bound to the row id; null once wiped. */
  payload: string | null;
  status: 'pending' | 'sending' | 'sent' | 'dead';
  attempts: number;
  next_attempt_at: string;
  /** While status is 'sending': the claim lapses then, and another dispatcher may take the message. */
  claimed_until: string | null;
  /** Which claim is current: a dispatcher whose claim lapsed cannot overwrite the next one's result. */
  claim_token: string | null;
  /** The last failure's safe description (an error code, a status; never the content). */
  last_error: string | null;
  /** The provider chosen for the channel when the message was queued, such as 'outbox' or 'twilio'. */
  provider: string;
  provider_message_id: string | null;
  created_at: string;
  sent_at: string | null;
}

export interface DevicesTable {
  /** The same id as the device's `push` method. */
  id: string;
  user_id: string;
  /** The device's ECDSA P-256 public key, as a JWK (kty, crv, x, y). */
  public_jwk: string;
  /** The Web Push subscription (a capability URL and keys), sealed under the key-encryption key. */
  push_subscription_sealed: string | null;
  created_at: string;
  last_seen_at: string | null;
}

export interface DeviceEnrolmentsTable {
  id: string;
  user_id: string;
  /** SHA-256 of the activation code. */
  code_hash: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  method_id: string | null;
  test_challenge_id: string | null;
}

/** `used`: an approval that completed its sign-in (once: a racing second request finds it used). */
export type PushChallengeStatus = 'pending' | 'approved' | 'denied' | 'reported' | 'wrong-number' | 'expired' | 'used';

export interface PushChallengesTable {
  id: string;
  user_id: string;
  method_id: string;
  /** The number shown on the sign-in page, which the user types into the app. Never sent to the device. */
  number: string;
  purpose: 'sign-in' | 'step-up' | 'reset' | 'test';
  binding: string;
  app: string;
  ip: string | null;
  location: string | null;
  status: PushChallengeStatus;
  created_at: string;
  expires_at: string;
  decided_at: string | null;
}

export interface PolicyVersionsTable {
  version: number;
  /** The policy as applied (YAML or JSON text), kept whole for the record. */
  document: string;
  applied_by: string;
  applied_at: string;
  comment: string;
}

export interface PolicyExceptionsTable {
  id: string;
  user_id: string;
  requirement_id: string;
  until: string;
  reason: string;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
  revoked_by: string | null;
}

export interface CampaignSnoozesTable {
  user_id: string;
  campaign_id: string;
  count: number;
  until: string | null;
}

export interface TemporaryAccessPassesTable {
  user_id: string;
  /** HMAC-SHA256 of the pass under a key derived from the secret. */
  pass_hash: string;
  multi_use: number;
  created_by: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

export interface DatabaseSchema {
  organisations: OrganisationsTable;
  users: UsersTable;
  roles: RolesTable;
  role_assignments: RoleAssignmentsTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  sessions: SessionsTable;
  sign_in_flows: SignInFlowsTable;
  throttles: ThrottlesTable;
  audit_events: AuditEventsTable;
  audit_chain: AuditChainTable;
  audit_checkpoints: AuditCheckpointsTable;
  user_tokens: UserTokensTable;
  methods: MethodsTable;
  admin_tokens: AdminTokensTable;
  admin_clients: AdminClientsTable;
  compliance_snapshots: ComplianceSnapshotsTable;
  challenges: ChallengesTable;
  devices: DevicesTable;
  device_enrolments: DeviceEnrolmentsTable;
  push_challenges: PushChallengesTable;
  outbox: OutboxTable;
  policy_versions: PolicyVersionsTable;
  policy_exceptions: PolicyExceptionsTable;
  campaign_snoozes: CampaignSnoozesTable;
  temporary_access_passes: TemporaryAccessPassesTable;
  oidc_artefacts: OidcArtefactsTable;
  oidc_signing_keys: OidcSigningKeysTable;
  help_feedback: HelpFeedbackTable;
  oidc_clients: OidcClientsTable;
}

/** Registered OpenID Connect clients (migration 0010, src/store/repositories/oidc-clients.ts). */
export interface OidcClientsTable {
  client_id: string;
  name: string;
  /** The policy key (migration 0012): `client:KEY` in a policy requirement; unique. */
  key: string;
  kind: 'confidential' | 'public' | 'service';
  /** 1: consent is not asked (a Portcullis-run application); 0: it is. */
  first_party: number;
  /** JSON arrays of strings. */
  redirect_uris: string;
  post_logout_redirect_uris: string;
  grant_types: string;
  backchannel_logout_uri: string | null;
  /** Service clients: the scopes they may ask for, space-separated (RFC 7591 §2). */
  scope: string | null;
  /** The client secret sealed under the key-encryption key, bound to `oidc-client-secret:<client_id>`; null for public clients. */
  secret_sealed: string | null;
  secret_created_at: string | null;
  created_at: string;
  /** The ID token's signing algorithm (migration 0018): RS256 or ES256. */
  id_token_alg: Generated<string>;
}

/** Answers to "Was this article helpful?" (migration 0009, src/store/repositories/help-feedback.ts). */
export interface HelpFeedbackTable {
  id: string;
  /** The article's slug. */
  article: string;
  /** 1 helpful, 0 not. */
  helpful: number;
  /** JSON array of reason ids from the catalogue (src/app/help/reasons.ts). */
  reasons: string;
  /** Plain text as typed; escaped whenever shown. */
  comment: string;
  created_at: string;
}

export type HelpFeedbackRow = Selectable<HelpFeedbackTable>;

/** Every oidc-provider model instance (src/store/oidc-adapter.ts): sessions, grants, codes, tokens. */
export interface OidcArtefactsTable {
  model: string;
  id: string;
  /** oidc-provider's payload, JSON. */
  payload: string;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  /** The payload's `accountId` (migration 0011): a person's grants, for "My account". */
  account_id: string | null;
  /** Grant rows: the payload's `clientId` (migration 0012), to count an application's people. */
  client_id: string | null;
  /** null: kept until destroyed. */
  expires_at: string | null;
  consumed_at: string | null;
}

/** The provider's signing keys (src/app/oidc-keys.ts): the private JWK sealed, the public one in clear. */
export interface OidcSigningKeysTable {
  kid: string;
  alg: string;
  state: 'current' | 'previous' | 'retired';
  private_jwk_sealed: string;
  public_jwk: string;
  created_at: string;
  /** When a key that is no longer current leaves the JWKS; null while current. */
  retire_after: string | null;
}

export type UserRow = Selectable<UsersTable>;
export type NewUserRow = Insertable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
export type OrganisationRow = Selectable<OrganisationsTable>;
export type RoleRow = Selectable<RolesTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
export type MethodRow = Selectable<MethodsTable>;
export type ChallengeRow = Selectable<ChallengesTable>;
export type DeviceRow = Selectable<DevicesTable>;
export type PushChallengeRow = Selectable<PushChallengesTable>;
export type DeviceEnrolmentRow = Selectable<DeviceEnrolmentsTable>;
export type PolicyExceptionRow = Selectable<PolicyExceptionsTable>;
export type TemporaryAccessPassRow = Selectable<TemporaryAccessPassesTable>;
export type OutboxRow = Selectable<OutboxTable>;
export type CountColumn = ColumnType<number | string | bigint, never, never>;

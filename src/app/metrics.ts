/**
 * Prometheus metrics. One registry per app (tests build many apps in one process). They are served on a
 * listener of their own (src/server/ops/metrics-server.ts), and still say nothing that tells whether an
 * address has an account: anyone who reads them is not necessarily allowed to know (issue #12).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { signInReasons, type SignInReason } from '../core/reasons.js';

/**
 * The reasons whose difference would tell whether an account exists (or has a password yet). Pages say
 * one message for all three and spend the same time on them; the counter's label does the same, and the
 * audit log keeps the detail (OWASP ASVS 5 V6.3.8: valid users cannot be deduced from failed attempts).
 */
const CREDENTIAL_REASONS: ReadonlySet<SignInReason> = new Set<SignInReason>(['unknown-account', 'password-incorrect', 'no-password-set']);

/** The `reason` label a sign-in is counted under. */
export type PublicSignInReason = Exclude<SignInReason, 'unknown-account' | 'password-incorrect' | 'no-password-set'> | 'credentials-incorrect';

export function publicSignInReason(reason: SignInReason): PublicSignInReason {
  return CREDENTIAL_REASONS.has(reason) ? 'credentials-incorrect' : (reason as PublicSignInReason);
}

/** Every `reason` label the sign-in counter can carry. */
export const publicSignInReasons: readonly PublicSignInReason[] = [...new Set(signInReasons.map(publicSignInReason))];

/** Counts a sign-in under its public reason: the raw reason never reaches the registry. */
export interface SignInCounter {
  inc(labels: { outcome: 'success' | 'failure'; reason: SignInReason }): void;
}

export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>;
  signIns: SignInCounter;
  passwordVerifications: Counter<never>;
  lockouts: Counter<never>;
  webPushes: Counter<'result'>;
  fraudReports: Counter<never>;
  /** Token endpoint refusals by OAuth error code (RFC 6749 §5.2: a small fixed set, so a safe label). */
  oidcTokenErrors: Counter<'error'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'portcullis_' });
  const signIns = new Counter({
    name: 'portcullis_sign_ins_total',
    help: 'Password sign-in attempts by outcome and reason',
    labelNames: ['outcome', 'reason'] as const,
    registers: [registry],
  });
  for (const reason of publicSignInReasons) signIns.inc({ outcome: reason === 'success' ? 'success' : 'failure', reason }, 0);
  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'portcullis_http_request_duration_seconds',
      help: 'HTTP request durations by route',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    signIns: { inc: ({ outcome, reason }) => signIns.inc({ outcome, reason: publicSignInReason(reason) }) },
    passwordVerifications: new Counter({
      name: 'portcullis_password_verifications_total',
      help: 'argon2id password verifications performed, including those for unknown accounts',
      registers: [registry],
    }),
    webPushes: new Counter({
      name: 'portcullis_web_pushes_total',
      help: 'Web Push messages for push challenges, by result (sent, gone, failed)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    fraudReports: new Counter({
      name: 'portcullis_push_fraud_reports_total',
      help: 'Push sign-in requests answered "No, it\'s not me"',
      registers: [registry],
    }),
    oidcTokenErrors: new Counter({
      name: 'portcullis_oidc_token_errors_total',
      help: 'OpenID Connect token endpoint refusals, by OAuth error code (invalid_client, invalid_grant, …)',
      labelNames: ['error'] as const,
      registers: [registry],
    }),
    lockouts: new Counter({
      name: 'portcullis_sign_in_lockouts_total',
      help: 'Email addresses locked after too many failed sign-ins',
      registers: [registry],
    }),
  };
}

/**
 * The database's statements and round trips (src/store/database.ts), read when the metrics are: how
 * much each sign-in asks of the database, which the sizing guide (docs/sizing.md) multiplies out.
 */
export function countDatabaseWork(metrics: Metrics, counts: { statements: number; writes: number; roundTrips: number }): void {
  const counter = (name: string, help: string, read: () => number) => {
    let reported = 0;
    return new Counter({
      name,
      help,
      registers: [metrics.registry],
      collect() {
        const now = read();
        this.inc(now - reported);
        reported = now;
      },
    });
  };
  counter('portcullis_database_statements_total', 'SQL statements run', () => counts.statements);
  counter('portcullis_database_writes_total', 'SQL statements run that insert, update or delete', () => counts.writes);
  counter('portcullis_database_round_trips_total', 'Round trips to the database server (statements sent together in a pipeline are one; none for SQLite)', () => counts.roundTrips);
}

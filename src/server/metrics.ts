/**
 * Prometheus metrics. One registry per app (tests build many apps in one process).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { signInReasons } from '../core/reasons.js';

export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>;
  signIns: Counter<'outcome' | 'reason'>;
  passwordVerifications: Counter<never>;
  lockouts: Counter<never>;
  webPushes: Counter<'result'>;
  fraudReports: Counter<never>;
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
  for (const reason of signInReasons) signIns.inc({ outcome: reason === 'success' ? 'success' : 'failure', reason }, 0);
  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'portcullis_http_request_duration_seconds',
      help: 'HTTP request durations by route',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    signIns,
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
    lockouts: new Counter({
      name: 'portcullis_sign_in_lockouts_total',
      help: 'Email addresses locked after too many failed sign-ins',
      registers: [registry],
    }),
  };
}

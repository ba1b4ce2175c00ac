/**
 * The one configuration schema. Every option is read from an environment variable of the same name,
 * or from the optional JSON config file (PORTCULLIS_CONFIG); the environment wins. Each option's
 * default and meaning are written here, beside its definition, and `docs/configuration.md` is checked
 * against this table by a test.
 */
import { z } from 'zod';
import { hasForbiddenNameCharacters } from '../core/directory.js';
import { parseDuration } from '../core/duration.js';

export interface OptionDoc {
  /** What the option does, for docs and --help. */
  description: string;
  /** The default as a person would write it ("" when there is none). */
  defaultText: string;
}

const duration = (min: number, max: number) =>
  z
    .union([z.string(), z.number()])
    .transform((value, ctx) => {
      const seconds = typeof value === 'number' ? value : parseDuration(value);
      if (seconds === null || !Number.isInteger(seconds)) {
        ctx.addIssue({ code: 'custom', message: 'must be a duration such as "90s", "10m", "1h" or "7d"' });
        return z.NEVER;
      }
      if (seconds < min || seconds > max) {
        ctx.addIssue({ code: 'custom', message: `must be between ${min} and ${max} seconds` });
        return z.NEVER;
      }
      return seconds;
    });

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value.trim()));

/** The raw options, keyed by environment variable. Defaults are applied here. */
export const optionsSchema = z.object({
  PUBLIC_URL: optionalText.pipe(z.url({ protocol: /^https?$/ }).optional()),
  HOST: z.string().min(1).default('localhost'),
  PORT: integer(0, 65_535).default(8080),
  TRUST_PROXY: z.string().default(''),
  PORTCULLIS_DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: optionalText,
  REDIS_URL: optionalText.pipe(z.url({ protocol: /^rediss?$/ }).optional()),
  PORTCULLIS_SECRET: optionalText,
  // In page headers and email subjects: no line breaks or control characters (issue #12).
  ORGANISATION_NAME: z
    .string()
    .min(1)
    .max(80)
    .refine((name) => !hasForbiddenNameCharacters(name), 'must not contain line breaks or control characters')
    .default('Portcullis'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PASSWORD_ARGON2_MEMORY_KIB: integer(7168, 4_194_304).default(19_456),
  PASSWORD_ARGON2_ITERATIONS: integer(1, 100).default(2),
  PASSWORD_ARGON2_PARALLELISM: integer(1, 16).default(1),
  PASSWORD_HASH_CONCURRENCY: integer(0, 256).default(0),
  PASSWORD_MIN_LENGTH: integer(8, 64).default(8),
  PASSWORD_MAX_LENGTH: integer(64, 1024).default(128),
  SIGN_IN_LOCKOUT_THRESHOLD: integer(1, 100).default(10),
  SIGN_IN_LOCKOUT_DURATION: duration(1, 86_400).default(60),
  SIGN_IN_LOCKOUT_MAX_DURATION: duration(1, 7 * 86_400).default(86_400),
  SIGN_IN_IP_FAILURE_LIMIT: integer(1, 1_000_000).default(300),
  SIGN_IN_IP_WINDOW: duration(1, 86_400).default(900),
  SESSION_IDLE_TIMEOUT: duration(60, 7 * 86_400).default(3600),
  SESSION_ABSOLUTE_TIMEOUT: duration(60, 30 * 86_400).default(86_400),
  ACTIVATION_LINK_LIFETIME: duration(600, 30 * 86_400).default(7 * 86_400),
  // Second factors
  MFA_FRESHNESS: duration(60, 3600).default(600),
  SECOND_FACTOR_LOCKOUT_THRESHOLD: integer(1, 100).default(10),
  ONE_TIME_CODE_LIFETIME: duration(60, 600).default(600),
  PHONE_ALLOWED_COUNTRIES: z
    .string()
    .default('GB')
    .transform((text) => text.split(',').map((c) => c.trim().toUpperCase()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[A-Z]{2}$/, 'must be ISO 3166 two-letter country codes, such as GB or GB,IE')).min(1)),
  PHONE_ALLOW_DRAMA_RANGE: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', ''])])
    .default(false)
    .transform((value) => value === true || value === 'true' || value === '1' || value === 'yes'),
  PHONE_CODES_PER_USER: integer(1, 1000).default(10),
  PHONE_CODES_PER_ADDRESS: integer(1, 1_000_000).default(100),
  PHONE_CODES_PER_COUNTRY: integer(1, 10_000_000).default(10_000),
  PASSWORD_RESETS_PER_EMAIL: integer(1, 100).default(5),
  PASSWORD_RESETS_PER_ADDRESS: integer(1, 100_000).default(50),
  HELP_FEEDBACK_PER_ADDRESS: integer(1, 100_000).default(20),
  HELP_FEEDBACK_PER_ARTICLE: integer(1, 1_000_000).default(200),
  // Push with number matching
  PUSH_NUMBER_DIGITS: integer(2, 8).default(2),
  PUSH_NUMBER_DIGITS_ELEVATED: integer(2, 8).default(2),
  PUSH_CHALLENGE_LIFETIME: duration(15, 300).default(60),
  PUSH_MIN_INTERVAL: duration(1, 600).default(10),
  PUSH_PER_HOUR: integer(1, 100).default(10),
  DEVICE_API_REQUESTS_PER_MINUTE: integer(10, 100_000).default(120),
  PUSH_BLOCK_ON_FRAUD: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
    .default(true)
    .transform((value) => value === true || value === 'true' || value === '1' || value === 'yes'),
  WEB_PUSH_SERVICES: z
    .string()
    .default('fcm.googleapis.com,*.push.services.mozilla.com,updates.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com')
    .transform((text) => text.split(',').map((h) => h.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^(\*\.)?[a-z0-9.-]+$/, 'must be host names, optionally starting with *.'))),
  VAPID_SUBJECT: optionalText.pipe(z.string().regex(/^(mailto:|https:\/\/)/, 'must be a mailto: address or an https:// URL').optional()),
  LOCATION_HEADER: optionalText.pipe(z.string().regex(/^[a-z0-9-]+$/i, 'must be an HTTP header name').optional()),
  TLS_CERT_FILE: optionalText,
  TLS_KEY_FILE: optionalText,
  SHUTDOWN_TIMEOUT: duration(1, 600).default(30),
  // The audit log's chain (src/app/audit-chain.ts, docs/operations.md#the-audit-log).
  AUDIT_CHECKPOINT_INTERVAL: duration(60, 86_400).default(900),
  // Metrics on a listener of their own (src/server/ops/metrics-server.ts), never on the public one.
  METRICS_PORT: integer(0, 65_535).default(9464),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  METRICS_TOKEN: optionalText.pipe(
    z.string().regex(/^[\x21-\x7e]{32,512}$/, 'must be 32 to 512 printable characters without spaces (`portcullis secret generate` prints one)').optional(),
  ),

  // ── Delivery: text messages, calls and email (src/channels/, src/config/delivery.ts) ──────────────
  SMS_PROVIDER: z.enum(['outbox', 'notify', 'twilio']).default('outbox'),
  VOICE_PROVIDER: z.enum(['outbox', 'twilio']).default('outbox'),
  EMAIL_PROVIDER: z.enum(['outbox', 'smtp']).default('outbox'),
  NOTIFY_API_KEY: optionalText,
  NOTIFY_SMS_TEMPLATE_ID: optionalText,
  NOTIFY_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://api.notifications.service.gov.uk'),
  TWILIO_ACCOUNT_SID: optionalText,
  TWILIO_AUTH_TOKEN: optionalText,
  TWILIO_FROM: optionalText,
  TWILIO_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://api.twilio.com'),
  SMTP_URL: optionalText,
  EMAIL_FROM: z.string().trim().min(3).max(320).default('Portcullis <no-reply@localhost>'),
  DELIVERY_MAX_ATTEMPTS: integer(1, 20).default(5),
  DELIVERY_SEND_TIMEOUT: duration(1, 120).default(15),
  DEVELOPMENT_PAGES: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', ''])])
    .default(false)
    .transform((value) => value === true || value === 'true' || value === '1' || value === 'yes'),
  // ── end of delivery ──────────────────────────────────────────────────────────────────────────────
});

export type RawOptions = z.output<typeof optionsSchema>;

export const optionDocs: Record<keyof RawOptions, OptionDoc> = {
  PUBLIC_URL: {
    description:
      'The address people use to reach Portcullis, such as https://id.example.org. Plain http is allowed only for localhost. Used for links, cookies and the Origin check.',
    defaultText: 'http://localhost:PORT',
  },
  HOST: { description: 'The address to listen on. Use 0.0.0.0 to accept connections from other machines.', defaultText: 'localhost' },
  PORT: { description: 'The TCP port to listen on.', defaultText: '8080' },
  TRUST_PROXY: {
    description:
      'Which reverse proxies to believe about the client address (X-Forwarded-For): empty for none, a comma-separated list of addresses or CIDR ranges, "loopback", "uniquelocal", or a number of hops.',
    defaultText: '(none)',
  },
  PORTCULLIS_DATA_DIR: {
    description: 'Folder for the embedded SQLite database and the generated development secret.',
    defaultText: './data',
  },
  DATABASE_URL: {
    description:
      'Where durable state lives: postgres://user@host:5432/name for PostgreSQL, or sqlite:PATH for SQLite (relative paths are under the data folder).',
    defaultText: 'sqlite:portcullis.db',
  },
  REDIS_URL: {
    description: 'Optional Redis (redis:// or rediss://) for throttling and rate-limit state shared by several nodes.',
    defaultText: '(none: state in the database)',
  },
  PORTCULLIS_SECRET: {
    description:
      'At least 32 random bytes, base64url-encoded (`portcullis secret generate` prints one). Key-encryption and cookie keys are derived from it. When unset on SQLite, one is generated into the data folder with a warning; PostgreSQL refuses to start without it, because all nodes must share one.',
    defaultText: '(generated on SQLite; required on PostgreSQL)',
  },
  ORGANISATION_NAME: { description: 'Shown in the page header, emails and authenticator apps.', defaultText: 'Portcullis' },
  LOG_LEVEL: { description: 'fatal, error, warn, info, debug, trace or silent.', defaultText: 'info' },
  PASSWORD_ARGON2_MEMORY_KIB: {
    description: 'argon2id memory cost in KiB (OWASP: 19456 with 2 iterations, or an equivalent trade-off).',
    defaultText: '19456',
  },
  PASSWORD_ARGON2_ITERATIONS: { description: 'argon2id time cost (iterations).', defaultText: '2' },
  PASSWORD_ARGON2_PARALLELISM: { description: 'argon2id parallelism.', defaultText: '1' },
  PASSWORD_HASH_CONCURRENCY: {
    description:
      'How many password hashes may run at once; more wait their turn. 0 means one per CPU, which gives the most sign-ins per second and bounds the memory hashing takes (19 MiB each at the default parameters).',
    defaultText: '0 (one per CPU)',
  },
  PASSWORD_MIN_LENGTH: { description: 'Shortest password accepted (NIST SP 800-63B: at least 8).', defaultText: '8' },
  PASSWORD_MAX_LENGTH: { description: 'Longest password accepted (NIST SP 800-63B: at least 64).', defaultText: '128' },
  SIGN_IN_LOCKOUT_THRESHOLD: {
    description:
      'Consecutive failed password attempts for one email address before it is locked for a while (never above 100, NIST SP 800-63B §5.2.2).',
    defaultText: '10',
  },
  SIGN_IN_LOCKOUT_DURATION: {
    description: 'How long the first lockout lasts; each further lockout doubles it.',
    defaultText: '1m',
  },
  SIGN_IN_LOCKOUT_MAX_DURATION: { description: 'The longest a lockout can grow to.', defaultText: '24h' },
  SIGN_IN_IP_FAILURE_LIMIT: {
    description:
      'Failed password attempts allowed from one client address per window. Set it high where many people share an address (hospitals behind one gateway).',
    defaultText: '300',
  },
  SIGN_IN_IP_WINDOW: { description: 'The window for SIGN_IN_IP_FAILURE_LIMIT.', defaultText: '15m' },
  SESSION_IDLE_TIMEOUT: { description: 'A session ends after this long without use.', defaultText: '1h' },
  SESSION_ABSOLUTE_TIMEOUT: { description: 'A session ends this long after sign-in, however much it is used.', defaultText: '24h' },
  ACTIVATION_LINK_LIFETIME: {
    description: 'How long a new account’s activation link (to set a first password) stays valid.',
    defaultText: '7d',
  },
  MFA_FRESHNESS: {
    description: 'Changes on Security info need a second factor used within this long; otherwise the user confirms with one first.',
    defaultText: '10m',
  },
  SECOND_FACTOR_LOCKOUT_THRESHOLD: {
    description: 'Consecutive wrong codes for one user before their second factor is locked for a while (at most 100, NIST SP 800-63B §5.2.2); lockouts grow like password lockouts.',
    defaultText: '10',
  },
  ONE_TIME_CODE_LIFETIME: {
    description: 'How long a code sent by text, call or email stays valid (at most 10 minutes, NIST SP 800-63B §5.1.3.2).',
    defaultText: '10m',
  },
  PHONE_ALLOWED_COUNTRIES: {
    description: 'Countries whose phone numbers may be registered, as ISO 3166 codes separated by commas. Other countries are refused (SMS pumping fraud uses premium international routes).',
    defaultText: 'GB',
  },
  PHONE_ALLOW_DRAMA_RANGE: {
    description:
      "true also accepts Ofcom's drama numbers, +44 7700 900000 to 900999 (reserved for fiction, never anyone's phone; libphonenumber refuses them), so the demo's phones can be typed. For development: `npm start` sets it. No text or call can reach such a number.",
    defaultText: 'false',
  },
  PHONE_CODES_PER_USER: { description: 'Codes sent by text or call to one user per hour.', defaultText: '10' },
  PHONE_CODES_PER_ADDRESS: { description: 'Codes sent by text or call at the request of one client address per hour.', defaultText: '100' },
  PHONE_CODES_PER_COUNTRY: { description: 'Codes sent by text or call to numbers in one country per hour, across all users.', defaultText: '10000' },
  PASSWORD_RESETS_PER_EMAIL: { description: 'Password reset requests for one email address per hour (whether or not it has an account).', defaultText: '5' },
  PASSWORD_RESETS_PER_ADDRESS: { description: 'Password reset requests from one client address per hour.', defaultText: '50' },
  HELP_FEEDBACK_PER_ADDRESS: { description: 'Answers to "Was this article helpful?" accepted from one client address per hour.', defaultText: '20' },
  HELP_FEEDBACK_PER_ARTICLE: { description: 'Answers to "Was this article helpful?" accepted for one help article per hour, from everyone.', defaultText: '200' },
  PUSH_NUMBER_DIGITS: {
    description: 'Digits in the number shown at sign-in and typed into the authenticator app (2, as Microsoft does).',
    defaultText: '2',
  },
  PUSH_NUMBER_DIGITS_ELEVATED: {
    description: 'Digits in the number for users with an elevated role (6 follows NIST SP 800-63B-4; the method policy will set it per role).',
    defaultText: '2',
  },
  PUSH_CHALLENGE_LIFETIME: { description: 'How long a push sign-in request waits for an answer.', defaultText: '60s' },
  PUSH_MIN_INTERVAL: { description: 'The shortest gap between two push requests to one user (against push bombing).', defaultText: '10s' },
  PUSH_PER_HOUR: { description: 'The most push requests sent to one user in an hour.', defaultText: '10' },
  DEVICE_API_REQUESTS_PER_MINUTE: {
    description:
      'Signed requests one paired device may make to the device API in a minute (by the server\'s clock) before it is answered 429 rate-limited with Retry-After. The apps make about 15 a minute while open (30 for the CLI\'s pending --wait).',
    defaultText: '120',
  },
  PUSH_BLOCK_ON_FRAUD: {
    description: '"No, it\'s not me" blocks push for the user until an administrator lifts it (true), or only refuses that sign-in (false).',
    defaultText: 'true',
  },
  WEB_PUSH_SERVICES: {
    description:
      'The push services the server may send Web Push messages to (host names; *. for subdomains). Devices give the endpoint, so any other host is refused (no requests to internal hosts). Localhost is also allowed when PUBLIC_URL is localhost.',
    defaultText: 'fcm.googleapis.com, *.push.services.mozilla.com, updates.push.services.mozilla.com, *.push.apple.com, *.notify.windows.com',
  },
  VAPID_SUBJECT: {
    description: 'The contact given to push services with each Web Push message (RFC 8292): a mailto: address or an https:// URL. The VAPID key itself is derived from PORTCULLIS_SECRET.',
    defaultText: 'PUBLIC_URL when https, else mailto:webpush@localhost',
  },
  LOCATION_HEADER: {
    description:
      'A request header in which the trusted reverse proxy gives the client\'s coarse location (for example cf-ipcountry, or a city set by a GeoIP module); shown with push requests. Read only from requests that came through a proxy named in TRUST_PROXY.',
    defaultText: '(none: no location shown)',
  },
  TLS_CERT_FILE: {
    description: 'A PEM certificate (chain) to serve HTTPS directly, for example to try the authenticator web app from a phone. Needs TLS_KEY_FILE.',
    defaultText: '(none: plain HTTP, or TLS at a proxy)',
  },
  TLS_KEY_FILE: { description: 'The PEM private key for TLS_CERT_FILE.', defaultText: '(none)' },
  SHUTDOWN_TIMEOUT: {
    description: 'On SIGTERM, how long to wait for requests in flight before closing anyway.',
    defaultText: '30s',
  },
  AUDIT_CHECKPOINT_INTERVAL: {
    description:
      'How often a node writes the audit chain’s head (its last entry and MAC) to the audit_checkpoints table and to the log, as an `audit.checkpoint` line at info level; keep those lines outside the database (docs/operations.md, The audit log). Between 1 minute and 1 day.',
    defaultText: '15m',
  },
  METRICS_PORT: {
    description:
      'The TCP port of the separate listener that serves /metrics (Prometheus text), which the public port never serves. 9464 is in the range Prometheus exporters use; 0 turns metrics off. Each node on one machine needs its own.',
    defaultText: '9464',
  },
  METRICS_HOST: {
    description:
      'The address the metrics listener binds to. The default keeps it on this machine; bind another address only on your monitoring network, and set METRICS_TOKEN.',
    defaultText: '127.0.0.1',
  },
  METRICS_TOKEN: {
    description:
      'A bearer token that scrapers must send (Authorization: Bearer TOKEN) to read /metrics; 32 or more characters. Start-up warns when METRICS_HOST is not a loopback address and no token is set.',
    defaultText: '(none: no token asked for)',
  },

  // ── Delivery ─────────────────────────────────────────────────────────────────────────────────────
  SMS_PROVIDER: {
    description:
      'Who sends text messages: outbox (development: nothing is sent; read them with `portcullis outbox`), notify (GOV.UK Notify) or twilio.',
    defaultText: 'outbox',
  },
  VOICE_PROVIDER: { description: 'Who makes voice calls that read out codes: outbox (development) or twilio.', defaultText: 'outbox' },
  EMAIL_PROVIDER: { description: 'Who sends email: outbox (development) or smtp.', defaultText: 'outbox' },
  NOTIFY_API_KEY: {
    description: 'GOV.UK Notify API key (a live or team key, name-serviceid-secret). Required when SMS_PROVIDER is notify.',
    defaultText: '(none)',
  },
  NOTIFY_SMS_TEMPLATE_ID: {
    description: 'The id of a Notify text message template whose whole content is ((body)). Required when SMS_PROVIDER is notify.',
    defaultText: '(none)',
  },
  NOTIFY_BASE_URL: { description: 'GOV.UK Notify API address (https unless localhost).', defaultText: 'https://api.notifications.service.gov.uk' },
  TWILIO_ACCOUNT_SID: { description: 'Twilio account SID (AC…). Required when SMS_PROVIDER or VOICE_PROVIDER is twilio.', defaultText: '(none)' },
  TWILIO_AUTH_TOKEN: { description: 'Twilio auth token. Required when SMS_PROVIDER or VOICE_PROVIDER is twilio.', defaultText: '(none)' },
  TWILIO_FROM: {
    description:
      'The Twilio number messages and calls come from, in E.164 form (+447700900123); for text messages only, an alphanumeric sender id of up to 11 characters.',
    defaultText: '(none)',
  },
  TWILIO_BASE_URL: { description: 'Twilio REST API address (https unless localhost).', defaultText: 'https://api.twilio.com' },
  SMTP_URL: {
    description: 'Mail server for EMAIL_PROVIDER=smtp: smtp://user:password@host:587 (STARTTLS) or smtps://user:password@host:465.',
    defaultText: '(none)',
  },
  EMAIL_FROM: { description: 'The From address of email, optionally with a name.', defaultText: 'Portcullis <no-reply@localhost>' },
  DELIVERY_MAX_ATTEMPTS: {
    description: 'Attempts to send one message (retrying with growing waits: 2s, 4s, 8s …) before it is given up as a dead letter.',
    defaultText: '5',
  },
  DELIVERY_SEND_TIMEOUT: {
    description:
      'How long one send may take; a provider that has not answered by then may have the message, so it is given up (a dead letter), not retried. A node claims a message for four times this; a claim that lapses (its node died mid-send) makes the message a dead letter whose outcome is unknown, never a blind resend.',
    defaultText: '15s',
  },
  DEVELOPMENT_PAGES: {
    description:
      'true serves development pages such as /dev/outbox, which shows every message in the development outbox, codes included, to anyone. Only allowed when PUBLIC_URL is localhost.',
    defaultText: 'false',
  },
  // ── end of delivery ──────────────────────────────────────────────────────────────────────────────
};

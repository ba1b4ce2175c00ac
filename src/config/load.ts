/**
 * Reads configuration from the environment and an optional JSON file, validates it against the one
 * schema, and turns it into the typed `Config` the rest of the program uses. An invalid value stops
 * start-up with a message naming the option.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { optionsSchema, optionDocs, type RawOptions } from './schema.js';
import { ConfigError } from './config-error.js';
import { resolveSecret, type SecretSource } from './secret.js';
import { parseDeliveryConfig, type DeliveryConfig } from './delivery.js';

export { ConfigError };

export type DatabaseConfig = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

export interface Config {
  publicUrl: URL;
  /** scheme://host[:port] of PUBLIC_URL, what browsers send as Origin. */
  publicOrigin: string;
  /** PUBLIC_URL is https: HSTS is sent. */
  https: boolean;
  host: string;
  port: number;
  /** In the form Fastify's `trustProxy` takes. */
  trustProxy: boolean | number | string;
  dataDir: string;
  database: DatabaseConfig;
  redisUrl: string | undefined;
  secret: { source: SecretSource; key: Uint8Array };
  organisationName: string;
  logLevel: RawOptions['LOG_LEVEL'];
  passwordHashing: { memoryKib: number; iterations: number; parallelism: number; concurrency: number | null };
  passwordRules: { minLength: number; maxLength: number };
  signIn: {
    lockoutThreshold: number;
    lockoutSeconds: number;
    lockoutMaxSeconds: number;
    ipFailureLimit: number;
    ipWindowSeconds: number;
  };
  sessions: { idleSeconds: number; absoluteSeconds: number };
  activationLinkSeconds: number;
  shutdownSeconds: number;
  /** AUDIT_CHECKPOINT_INTERVAL: how often the sealer checkpoints the audit chain's head (src/app/audit-chain.ts). */
  auditCheckpointSeconds: number;
  secondFactors: {
    freshnessSeconds: number;
    lockoutThreshold: number;
    codeLifetimeSeconds: number;
    allowedCountries: string[];
    /** PHONE_ALLOW_DRAMA_RANGE: Ofcom's drama numbers are accepted too (development, the demo's phones). */
    allowDramaRange: boolean;
    codesPerUserPerHour: number;
    codesPerAddressPerHour: number;
    codesPerCountryPerHour: number;
  };
  passwordReset: { perEmailPerHour: number; perAddressPerHour: number };
  /** HELP_FEEDBACK_PER_*: answers to "Was this article helpful?" per hour. */
  helpFeedback: { perAddressPerHour: number; perArticlePerHour: number };
  push: {
    numberDigits: number;
    numberDigitsElevated: number;
    challengeSeconds: number;
    minIntervalSeconds: number;
    perHour: number;
    /** DEVICE_API_REQUESTS_PER_MINUTE: signed requests one paired device may make in a minute. */
    deviceRequestsPerMinute: number;
    blockOnFraud: boolean;
    vapidSubject: string;
    serviceHosts: string[];
  };
  /** The header (lower-cased) in which a trusted proxy gives a coarse location; null: none. */
  locationHeader: string | null;
  /** PEM certificate and key files, when Portcullis serves HTTPS itself. */
  tls: { certFile: string; keyFile: string } | null;
  /** Text messages, calls and email (src/config/delivery.ts). */
  delivery: DeliveryConfig;
  /** DEVELOPMENT_PAGES: /dev/outbox and friends; only ever with a localhost PUBLIC_URL. */
  developmentPages: boolean;
  /** The separate /metrics listener (METRICS_*); null when METRICS_PORT is 0. */
  metricsServer: { host: string; port: number; token: string | null } | null;
}

export interface LoadConfigOptions {
  env?: Record<string, string | undefined>;
  /** Path of a JSON file of options; defaults to env.PORTCULLIS_CONFIG. */
  configFile?: string;
  /** Where relative paths start; defaults to process.cwd(). */
  cwd?: string;
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLocalHostname(hostname: string): boolean {
  return LOCAL_HOSTS.has(hostname) || hostname.endsWith('.localhost');
}

function readConfigFile(file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError('PORTCULLIS_CONFIG', `names a file that could not be read as JSON (${file}): ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('PORTCULLIS_CONFIG', `must name a JSON file holding one object (${file})`);
  }
  for (const key of Object.keys(parsed)) {
    if (!(key in optionDocs)) throw new ConfigError(key, `in ${file} is not a known option`);
  }
  return parsed as Record<string, unknown>;
}

export function parseOptions(input: Record<string, unknown>): RawOptions {
  const result = optionsSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const option = String(issue.path[0] ?? 'configuration');
    throw new ConfigError(option, `is invalid: ${issue.message}`);
  }
  return result.data;
}

function parseTrustProxy(text: string): boolean | number | string {
  const value = text.trim();
  if (value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  const parts = value.split(',').map((part) => part.trim());
  const named = new Set(['loopback', 'linklocal', 'uniquelocal']);
  for (const part of parts) {
    if (!named.has(part) && !/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(part)) {
      throw new ConfigError('TRUST_PROXY', `has "${part}", which is not an address, a CIDR range, loopback, linklocal or uniquelocal`);
    }
  }
  return parts.join(',');
}

function parseDatabaseUrl(text: string | undefined, dataDir: string): DatabaseConfig {
  if (text === undefined) return { kind: 'sqlite', file: path.join(dataDir, 'portcullis.db') };
  if (/^postgres(ql)?:\/\//.test(text)) {
    try {
      new URL(text);
    } catch {
      throw new ConfigError('DATABASE_URL', 'is not a valid postgres:// address');
    }
    return { kind: 'postgres', url: text };
  }
  const sqlite = /^sqlite:(.+)$/.exec(text);
  if (sqlite) {
    const file = sqlite[1]!.replace(/^\/\/(?=\/)/, '');
    if (file === ':memory:') return { kind: 'sqlite', file };
    return { kind: 'sqlite', file: path.resolve(dataDir, file) };
  }
  throw new ConfigError('DATABASE_URL', 'must start with postgres://, postgresql:// or sqlite:');
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const configFile = options.configFile ?? env.PORTCULLIS_CONFIG;
  const fromFile = configFile ? readConfigFile(path.resolve(cwd, configFile)) : {};
  const input: Record<string, unknown> = { ...fromFile };
  for (const key of Object.keys(optionDocs)) {
    const value = env[key];
    if (value !== undefined) input[key] = value;
  }
  const raw = parseOptions(input);

  const publicUrl = new URL(raw.PUBLIC_URL ?? `http://localhost:${raw.PORT}`);
  if (publicUrl.protocol === 'http:' && !isLocalHostname(publicUrl.hostname)) {
    throw new ConfigError('PUBLIC_URL', 'must use https unless it is localhost (session cookies are Secure)');
  }
  if (publicUrl.search || publicUrl.hash) throw new ConfigError('PUBLIC_URL', 'must not carry a query or fragment');
  if (raw.PASSWORD_ARGON2_MEMORY_KIB * raw.PASSWORD_ARGON2_ITERATIONS < 35_840) {
    // OWASP Password Storage Cheat Sheet: the weakest equivalent profile is m=7 MiB, t=5.
    throw new ConfigError(
      'PASSWORD_ARGON2_MEMORY_KIB',
      'multiplied by PASSWORD_ARGON2_ITERATIONS must be at least 35840 (OWASP: m=19456 KiB with t=2, or an equivalent)',
    );
  }
  if (raw.PASSWORD_MIN_LENGTH > raw.PASSWORD_MAX_LENGTH) {
    throw new ConfigError('PASSWORD_MIN_LENGTH', 'must not be greater than PASSWORD_MAX_LENGTH');
  }
  if (raw.SIGN_IN_LOCKOUT_DURATION > raw.SIGN_IN_LOCKOUT_MAX_DURATION) {
    throw new ConfigError('SIGN_IN_LOCKOUT_DURATION', 'must not be longer than SIGN_IN_LOCKOUT_MAX_DURATION');
  }
  if (Boolean(raw.TLS_CERT_FILE) !== Boolean(raw.TLS_KEY_FILE)) {
    throw new ConfigError(raw.TLS_CERT_FILE ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE', 'must be set together with the other TLS file');
  }
  if (raw.SESSION_IDLE_TIMEOUT > raw.SESSION_ABSOLUTE_TIMEOUT) {
    throw new ConfigError('SESSION_IDLE_TIMEOUT', 'must not be longer than SESSION_ABSOLUTE_TIMEOUT');
  }

  // The development pages show one-time codes to anyone who asks: never on a reachable address.
  if (raw.DEVELOPMENT_PAGES && !isLocalHostname(publicUrl.hostname)) {
    throw new ConfigError('DEVELOPMENT_PAGES', 'must not be true unless PUBLIC_URL is localhost: the pages show one-time codes to anyone');
  }
  // The public port must never answer /metrics (issue #12): the two listeners cannot share a port.
  if (raw.METRICS_PORT !== 0 && raw.METRICS_PORT === raw.PORT) {
    throw new ConfigError('METRICS_PORT', 'must differ from PORT: metrics have a listener of their own (0 turns them off)');
  }
  const delivery = parseDeliveryConfig(raw);

  const dataDir = path.resolve(cwd, raw.PORTCULLIS_DATA_DIR);
  const database = parseDatabaseUrl(raw.DATABASE_URL, dataDir);
  const secret = resolveSecret({ value: raw.PORTCULLIS_SECRET, dataDir, database: database.kind });

  return {
    publicUrl,
    publicOrigin: publicUrl.origin,
    https: publicUrl.protocol === 'https:',
    host: raw.HOST,
    port: raw.PORT,
    trustProxy: parseTrustProxy(raw.TRUST_PROXY),
    dataDir,
    database,
    redisUrl: raw.REDIS_URL,
    secret,
    organisationName: raw.ORGANISATION_NAME,
    logLevel: raw.LOG_LEVEL,
    passwordHashing: {
      memoryKib: raw.PASSWORD_ARGON2_MEMORY_KIB,
      iterations: raw.PASSWORD_ARGON2_ITERATIONS,
      parallelism: raw.PASSWORD_ARGON2_PARALLELISM,
      // null: one per CPU of the machine the server runs on.
      concurrency: raw.PASSWORD_HASH_CONCURRENCY === 0 ? null : raw.PASSWORD_HASH_CONCURRENCY,
    },
    passwordRules: { minLength: raw.PASSWORD_MIN_LENGTH, maxLength: raw.PASSWORD_MAX_LENGTH },
    signIn: {
      lockoutThreshold: raw.SIGN_IN_LOCKOUT_THRESHOLD,
      lockoutSeconds: raw.SIGN_IN_LOCKOUT_DURATION,
      lockoutMaxSeconds: raw.SIGN_IN_LOCKOUT_MAX_DURATION,
      ipFailureLimit: raw.SIGN_IN_IP_FAILURE_LIMIT,
      ipWindowSeconds: raw.SIGN_IN_IP_WINDOW,
    },
    sessions: { idleSeconds: raw.SESSION_IDLE_TIMEOUT, absoluteSeconds: raw.SESSION_ABSOLUTE_TIMEOUT },
    activationLinkSeconds: raw.ACTIVATION_LINK_LIFETIME,
    shutdownSeconds: raw.SHUTDOWN_TIMEOUT,
    auditCheckpointSeconds: raw.AUDIT_CHECKPOINT_INTERVAL,
    secondFactors: {
      freshnessSeconds: raw.MFA_FRESHNESS,
      lockoutThreshold: raw.SECOND_FACTOR_LOCKOUT_THRESHOLD,
      codeLifetimeSeconds: raw.ONE_TIME_CODE_LIFETIME,
      allowedCountries: raw.PHONE_ALLOWED_COUNTRIES,
      allowDramaRange: raw.PHONE_ALLOW_DRAMA_RANGE,
      codesPerUserPerHour: raw.PHONE_CODES_PER_USER,
      codesPerAddressPerHour: raw.PHONE_CODES_PER_ADDRESS,
      codesPerCountryPerHour: raw.PHONE_CODES_PER_COUNTRY,
    },
    passwordReset: { perEmailPerHour: raw.PASSWORD_RESETS_PER_EMAIL, perAddressPerHour: raw.PASSWORD_RESETS_PER_ADDRESS },
    helpFeedback: { perAddressPerHour: raw.HELP_FEEDBACK_PER_ADDRESS, perArticlePerHour: raw.HELP_FEEDBACK_PER_ARTICLE },
    push: {
      numberDigits: raw.PUSH_NUMBER_DIGITS,
      numberDigitsElevated: raw.PUSH_NUMBER_DIGITS_ELEVATED,
      challengeSeconds: raw.PUSH_CHALLENGE_LIFETIME,
      minIntervalSeconds: raw.PUSH_MIN_INTERVAL,
      perHour: raw.PUSH_PER_HOUR,
      deviceRequestsPerMinute: raw.DEVICE_API_REQUESTS_PER_MINUTE,
      blockOnFraud: raw.PUSH_BLOCK_ON_FRAUD,
      vapidSubject: raw.VAPID_SUBJECT ?? (publicUrl.protocol === 'https:' ? publicUrl.origin : 'mailto:webpush@localhost'),
      serviceHosts: raw.WEB_PUSH_SERVICES,
    },
    locationHeader: raw.LOCATION_HEADER ? raw.LOCATION_HEADER.toLowerCase() : null,
    tls: raw.TLS_CERT_FILE && raw.TLS_KEY_FILE ? { certFile: path.resolve(cwd, raw.TLS_CERT_FILE), keyFile: path.resolve(cwd, raw.TLS_KEY_FILE) } : null,
    delivery,
    developmentPages: raw.DEVELOPMENT_PAGES,
    metricsServer: raw.METRICS_PORT === 0 ? null : { host: raw.METRICS_HOST, port: raw.METRICS_PORT, token: raw.METRICS_TOKEN ?? null },
  };
}

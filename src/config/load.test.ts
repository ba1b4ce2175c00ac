import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';
import { optionDocs } from './schema.js';

const SECRET = Buffer.alloc(32, 1).toString('base64url');
const tempDir = () => mkdtempSync(path.join(os.tmpdir(), 'portcullis-config-'));
const load = (env: Record<string, string>) => loadConfig({ env: { PORTCULLIS_DATA_DIR: tempDir(), PORTCULLIS_SECRET: SECRET, ...env } });

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('has working defaults: port 8080, SQLite in the data folder, OWASP argon2id parameters', () => {
    const dir = tempDir();
    const config = loadConfig({ env: { PORTCULLIS_DATA_DIR: dir, PORTCULLIS_SECRET: SECRET } });
    expect(config.port).toBe(8080);
    expect(config.publicUrl.toString()).toBe('http://localhost:8080/');
    expect(config.database).toEqual({ kind: 'sqlite', file: path.join(dir, 'portcullis.db') });
    expect(config.passwordHashing).toEqual({ memoryKib: 19_456, iterations: 2, parallelism: 1, concurrency: null });
    expect(config.signIn.lockoutThreshold).toBe(10);
    expect(config.sessions).toEqual({ idleSeconds: 3600, absoluteSeconds: 86_400 });
    expect(config.trustProxy).toBe(false);
    expect(config.https).toBe(false);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PUBLIC_URL: 'http://id.example.org' }, 'PUBLIC_URL'],
    [{ PUBLIC_URL: 'ftp://localhost' }, 'PUBLIC_URL'],
    [{ DATABASE_URL: 'mysql://localhost/db' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'http://localhost:6379' }, 'REDIS_URL'],
    [{ PORTCULLIS_SECRET: 'too-short' }, 'PORTCULLIS_SECRET'],
    [{ PORTCULLIS_SECRET: 'not base64 at all!' }, 'PORTCULLIS_SECRET'],
    [{ SIGN_IN_LOCKOUT_THRESHOLD: '101' }, 'SIGN_IN_LOCKOUT_THRESHOLD'],
    [{ PASSWORD_MIN_LENGTH: '6' }, 'PASSWORD_MIN_LENGTH'],
    [{ PASSWORD_MAX_LENGTH: '32' }, 'PASSWORD_MAX_LENGTH'],
    [{ PASSWORD_ARGON2_MEMORY_KIB: '8192', PASSWORD_ARGON2_ITERATIONS: '2' }, 'PASSWORD_ARGON2_MEMORY_KIB'],
    [{ SESSION_IDLE_TIMEOUT: 'forever' }, 'SESSION_IDLE_TIMEOUT'],
    [{ SESSION_IDLE_TIMEOUT: '48h', SESSION_ABSOLUTE_TIMEOUT: '24h' }, 'SESSION_IDLE_TIMEOUT'],
    [{ TRUST_PROXY: 'my-proxy.internal' }, 'TRUST_PROXY'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ TLS_CERT_FILE: 'cert.pem' }, 'TLS_KEY_FILE'],
    [{ TLS_KEY_FILE: 'key.pem' }, 'TLS_CERT_FILE'],
    [{ WEB_PUSH_SERVICES: 'fcm.googleapis.com,bad host' }, 'WEB_PUSH_SERVICES'],
    [{ VAPID_SUBJECT: 'someone@example.org' }, 'VAPID_SUBJECT'],
    [{ PUSH_NUMBER_DIGITS: '1' }, 'PUSH_NUMBER_DIGITS'],
    [{ PASSWORD_HASH_CONCURRENCY: '-1' }, 'PASSWORD_HASH_CONCURRENCY'],
    [{ METRICS_PORT: '8080' }, 'METRICS_PORT'],
    [{ METRICS_PORT: '65536' }, 'METRICS_PORT'],
    [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN'],
    [{ METRICS_TOKEN: `${'x'.repeat(20)} ${'y'.repeat(20)}` }, 'METRICS_TOKEN'],
  ])('refuses %j, naming %s', (env, option) => {
    const error = errorOf(() => load(env));
    expect(error.option).toBe(option);
    expect(error.message).toContain(`Configuration option ${option}`);
  });

  it('serves /metrics on a listener of its own, on 127.0.0.1:9464 unless told otherwise; 0 turns it off (issue #12)', () => {
    expect(load({}).metricsServer).toEqual({ host: '127.0.0.1', port: 9464, token: null });
    expect(load({ METRICS_PORT: '0' }).metricsServer).toBeNull();
    const token = 'a'.repeat(43);
    expect(load({ METRICS_HOST: '10.0.0.5', METRICS_PORT: '9100', METRICS_TOKEN: ` ${token} ` }).metricsServer).toEqual({ host: '10.0.0.5', port: 9100, token });
  });

  it('accepts https anywhere and plain http only on localhost', () => {
    expect(load({ PUBLIC_URL: 'https://id.example.org' }).https).toBe(true);
    expect(load({ PUBLIC_URL: 'http://127.0.0.1:9000' }).publicOrigin).toBe('http://127.0.0.1:9000');
  });

  it('reads PostgreSQL and SQLite addresses', () => {
    expect(load({ DATABASE_URL: 'postgres://u@db:5432/portcullis' }).database).toEqual({ kind: 'postgres', url: 'postgres://u@db:5432/portcullis' });
    const dir = tempDir();
    expect(loadConfig({ env: { PORTCULLIS_DATA_DIR: dir, DATABASE_URL: 'sqlite:other.db' } }).database).toEqual({ kind: 'sqlite', file: path.join(dir, 'other.db') });
    expect(load({ DATABASE_URL: 'sqlite:///var/lib/p.db' }).database).toEqual({ kind: 'sqlite', file: '/var/lib/p.db' });
  });

  it('reads TRUST_PROXY as addresses, named ranges or a hop count', () => {
    expect(load({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.1' }).trustProxy).toBe('10.0.0.0/8,192.168.1.1');
    expect(load({ TRUST_PROXY: 'loopback' }).trustProxy).toBe('loopback');
    expect(load({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
  });

  it('generates a secret once into the data folder (0600) on SQLite when none is set', () => {
    const dir = tempDir();
    const first = loadConfig({ env: { PORTCULLIS_DATA_DIR: dir } });
    expect(first.secret.source).toBe('generated-file');
    const file = path.join(dir, 'secret');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url').length).toBe(32);
    const second = loadConfig({ env: { PORTCULLIS_DATA_DIR: dir } });
    expect(Buffer.from(second.secret.key)).toEqual(Buffer.from(first.secret.key));
  });

  it('refuses to start on PostgreSQL without PORTCULLIS_SECRET: every node must share one', () => {
    const error = errorOf(() => loadConfig({ env: { PORTCULLIS_DATA_DIR: tempDir(), DATABASE_URL: 'postgres://localhost/p' } }));
    expect(error.option).toBe('PORTCULLIS_SECRET');
    expect(error.message).toMatch(/PostgreSQL/);
  });

  it('reads a JSON config file; the environment wins; unknown keys are refused', () => {
    const dir = tempDir();
    const file = path.join(dir, 'portcullis.json');
    writeFileSync(file, JSON.stringify({ PORT: 9090, ORGANISATION_NAME: 'NHSmail', SIGN_IN_LOCKOUT_THRESHOLD: 5 }));
    const config = loadConfig({ env: { PORTCULLIS_DATA_DIR: dir, PORTCULLIS_SECRET: SECRET, PORTCULLIS_CONFIG: file, ORGANISATION_NAME: 'From env' } });
    expect(config.port).toBe(9090);
    expect(config.signIn.lockoutThreshold).toBe(5);
    expect(config.organisationName).toBe('From env');
    writeFileSync(file, JSON.stringify({ PROT: 9090 }));
    expect(errorOf(() => loadConfig({ env: { PORTCULLIS_DATA_DIR: dir, PORTCULLIS_CONFIG: file } })).option).toBe('PROT');
    writeFileSync(file, '{ not json');
    expect(errorOf(() => loadConfig({ env: { PORTCULLIS_DATA_DIR: dir, PORTCULLIS_CONFIG: file } })).option).toBe('PORTCULLIS_CONFIG');
  });

  it('documents every option, with its default, in docs/configuration.md', () => {
    const doc = readFileSync(path.resolve(import.meta.dirname, '..', '..', 'docs', 'configuration.md'), 'utf8');
    for (const [name, { defaultText }] of Object.entries(optionDocs)) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${name}\``));
      expect(row, `docs/configuration.md has a row for ${name}`).toBeDefined();
      expect(row).toContain(defaultText.replace(/\|/g, '\\|'));
    }
  });
});

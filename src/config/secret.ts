/**
 * PORTCULLIS_SECRET: the root secret from which key-encryption and cookie keys are derived.
 * On SQLite, when it is unset, one is generated once into the data folder (0600) so a newcomer can
 * start with one command; start-up then warns loudly. PostgreSQL means several nodes, which must share
 * one secret, so there it must be set.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from './config-error.js';

export type SecretSource = 'environment' | 'generated-file';

export const SECRET_MIN_BYTES = 32;
export const SECRET_FILE_NAME = 'secret';

export function generateSecret(): string {
  return randomBytes(SECRET_MIN_BYTES).toString('base64url');
}

export function decodeSecret(text: string, option = 'PORTCULLIS_SECRET'): Uint8Array {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9_\-+/]+={0,2}$/.test(trimmed)) {
    throw new ConfigError(option, 'must be base64url-encoded (run `portcullis secret generate` for one)');
  }
  const bytes = Buffer.from(trimmed.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''), 'base64url');
  if (bytes.length < SECRET_MIN_BYTES) {
    throw new ConfigError(option, `must encode at least ${SECRET_MIN_BYTES} random bytes; it encodes ${bytes.length}`);
  }
  return new Uint8Array(bytes);
}

export function resolveSecret(input: {
  value: string | undefined;
  dataDir: string;
  database: 'sqlite' | 'postgres';
}): { source: SecretSource; key: Uint8Array } {
  if (input.value !== undefined) return { source: 'environment', key: decodeSecret(input.value) };
  if (input.database === 'postgres') {
    throw new ConfigError(
      'PORTCULLIS_SECRET',
      'must be set when DATABASE_URL is PostgreSQL: every node must share one secret (run `portcullis secret generate`)',
    );
  }
  const file = path.join(input.dataDir, SECRET_FILE_NAME);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    mkdirSync(input.dataDir, { recursive: true, mode: 0o700 });
    text = generateSecret();
    try {
      // 'wx': if another process generated it first, keep theirs.
      writeFileSync(file, `${text}\n`, { mode: 0o600, flag: 'wx' });
    } catch (writeError) {
      if ((writeError as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError;
      text = readFileSync(file, 'utf8');
    }
  }
  return { source: 'generated-file', key: decodeSecret(text, `the generated secret in ${file}`) };
}

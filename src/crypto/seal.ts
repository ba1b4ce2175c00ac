/**
 * Authenticated encryption of short secrets at rest (one-time codes in the outbox, TOTP seeds), and of
 * the sign-in's password step kept in its cookie (src/app/sign-in.ts), with AES-256-GCM under the
 * key-encryption key (src/crypto/keys.ts).
 *
 * Format: `v1.<iv>.<ciphertext+tag>`, both parts base64url. The version prefix lets a later format (a
 * new algorithm, a key id for rotation) sit beside old rows. Each value is bound to where it belongs by
 * the associated data (for example `outbox/<row id>`): a sealed value copied into another row or
 * column does not open there.
 *
 * NIST SP 800-38D §8.2.2 and §8.3: random 96-bit IVs are safe for up to 2^32 encryptions under one key,
 * far above what one deployment seals; a fresh IV is drawn for every call.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { secureRandomBytes } from './tokens.js';

const VERSION = 'v1';
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export type SealErrorCode = 'seal-key-invalid' | 'sealed-value-malformed' | 'sealed-value-unauthentic';

/** A value could not be sealed or opened. The message never contains the plaintext or the key. */
export class SealError extends Error {
  constructor(
    readonly code: SealErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SealError';
  }
}

function checkKey(key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new SealError('seal-key-invalid', `The sealing key must be ${KEY_BYTES} bytes`);
}

/** Encrypts `plaintext` (UTF-8) and binds it to `associatedData`. */
export function sealText(key: Uint8Array, plaintext: string, associatedData: string): string {
  checkKey(key);
  const iv = secureRandomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${VERSION}.${iv.toString('base64url')}.${ciphertext.toString('base64url')}`;
}

/**
 * Decrypts a value made by `sealText` with the same key and associated data. Throws a SealError if the
 * value is malformed, was altered, belongs elsewhere (other associated data) or was sealed under
 * another key.
 */
export function openText(key: Uint8Array, sealed: string, associatedData: string): string {
  checkKey(key);
  const parts = sealed.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION) {
    throw new SealError('sealed-value-malformed', `A sealed value must look like ${VERSION}.<iv>.<ciphertext>`);
  }
  const iv = Buffer.from(parts[1]!, 'base64url');
  const body = Buffer.from(parts[2]!, 'base64url');
  if (iv.length !== IV_BYTES || body.length < TAG_BYTES) {
    throw new SealError('sealed-value-malformed', 'A sealed value has the wrong IV or ciphertext length');
  }
  const decipher = createDecipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(associatedData, 'utf8'));
  decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw new SealError('sealed-value-unauthentic', 'A sealed value did not authenticate (altered, moved, or sealed under another key)');
  }
}

/**
 * The code vault: time-based codes (TOTP, RFC 6238) for the user's other accounts, added from the
 * `otpauth://` Key URI Format that their set-up QR codes carry, and an export encrypted with a
 * passphrase for moving them to a new phone.
 *
 * Export: PBKDF2-HMAC-SHA256 (RFC 8018 §5.2) with 600,000 iterations — OWASP's 2023 figure for that
 * hash; WebCrypto offers nothing stronger (no scrypt or Argon2) — then HKDF (RFC 5869) splits the result
 * into an AES-256-GCM key (NIST SP 800-38D) and a short passphrase check, so a wrong passphrase can be
 * told apart from a changed file. Random salt and IV on every export; the envelope's header is the
 * cipher's associated data, so changing any of it is detected.
 */
import { Secret, TOTP } from 'otpauth';
import { decodeBase64url, encodeBase64url, encodeText, randomBytes } from './base64url.js';
import { AuthenticatorError } from './errors.js';

export type OtpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

/** One account's code parameters, as the Key URI Format gives them. */
export interface OtpAccount {
  /** Who issued it ("Example Mail"); may be empty. */
  issuer: string;
  /** The account at that issuer ("alice@example.com"). */
  label: string;
  /** The shared secret, base32 (RFC 4648 §6) in capitals, without padding or spaces. */
  secret: string;
  algorithm: OtpAlgorithm;
  digits: number;
  /** Seconds per code. */
  period: number;
}

/** An account kept in the vault. */
export interface VaultEntry extends OtpAccount {
  id: string;
  /** ISO 8601. */
  addedAt: string;
}

export const VAULT_FORMAT = 'portcullis-vault';
export const VAULT_VERSION = 1;
/** OWASP Password Storage Cheat Sheet (2023): 600,000 iterations for PBKDF2-HMAC-SHA256. */
export const VAULT_PBKDF2_ITERATIONS = 600_000;
/** An import asking for more than this is refused, so a crafted file cannot hang the app. */
const MAX_IMPORT_ITERATIONS = 10_000_000;
const SALT_BYTES = 16;
/** NIST SP 800-38D §8.2.2: a random 96-bit IV. */
const IV_BYTES = 12;
const CHECK_BYTES = 16;
export const MIN_PASSPHRASE_LENGTH = 8;
/**
 * RFC 4226 §4 asks for secrets of at least 128 bits, but many services still issue 80-bit ones; the
 * vault accepts those (refusing them would only push the user to a less careful app).
 */
const MIN_SECRET_BYTES = 10;
const MAX_SECRET_BYTES = 128;
const MAX_LABEL_LENGTH = 200;

// ── otpauth:// links ────────────────────────────────────────────────────────────────────────────────

function otpInvalid(detail: string): AuthenticatorError {
  return AuthenticatorError.client('otpauth-invalid', detail);
}

function checkAlgorithm(value: string): OtpAlgorithm {
  const upper = value.toUpperCase().replace('-', '');
  if (upper !== 'SHA1' && upper !== 'SHA256' && upper !== 'SHA512') throw otpInvalid('The algorithm must be SHA1, SHA256 or SHA512.');
  return upper;
}

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) throw otpInvalid(`The ${name} must be a whole number from ${min} to ${max}.`);
  return number;
}

/** Normalises a base32 secret (spaces, case, padding) and checks its characters and length. */
export function normaliseSecret(value: string): string {
  const secret = value.replace(/[\s-]/g, '').replace(/=+$/, '').toUpperCase();
  if (secret.length === 0) throw otpInvalid('The secret is missing.');
  if (!/^[A-Z2-7]+$/.test(secret)) throw otpInvalid('The secret must be base32 (letters A–Z and digits 2–7).');
  const bytes = Math.floor((secret.length * 5) / 8);
  if (bytes < MIN_SECRET_BYTES) throw otpInvalid(`The secret is too short (at least ${MIN_SECRET_BYTES * 8} bits).`);
  if (bytes > MAX_SECRET_BYTES) throw otpInvalid('The secret is too long.');
  return secret;
}

/** Checks every field of an account (from a link, the store file, or an import). */
export function checkOtpAccount(value: Partial<Record<keyof OtpAccount, unknown>>): OtpAccount {
  const issuer = typeof value.issuer === 'string' ? value.issuer.trim() : '';
  const label = typeof value.label === 'string' ? value.label.trim() : '';
  if (!label) throw otpInvalid('The account name is missing.');
  if (label.length > MAX_LABEL_LENGTH || issuer.length > MAX_LABEL_LENGTH) throw otpInvalid('The account or issuer name is too long.');
  if (typeof value.secret !== 'string') throw otpInvalid('The secret is missing.');
  return {
    issuer,
    label,
    secret: normaliseSecret(value.secret),
    algorithm: checkAlgorithm(typeof value.algorithm === 'string' ? value.algorithm : 'SHA1'),
    digits: checkInteger(value.digits ?? 6, 'number of digits', 6, 8),
    period: checkInteger(value.period ?? 30, 'period', 10, 300),
  };
}

/**
 * Reads a Key URI Format link: `otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&period=30`.
 * Only time-based codes: counter-based (HOTP) accounts are refused.
 */
export function parseOtpauthUri(uri: string): OtpAccount {
  let url: URL;
  try {
    url = new URL(uri.trim());
  } catch {
    throw otpInvalid('It should start with otpauth://totp/.');
  }
  if (url.protocol !== 'otpauth:') throw otpInvalid('It should start with otpauth://totp/.');
  const type = url.hostname.toLowerCase();
  if (type === 'hotp') throw otpInvalid('Only time-based (TOTP) accounts can be added; this one is counter-based (HOTP).');
  if (type !== 'totp') throw otpInvalid('It should start with otpauth://totp/.');
  let path: string;
  try {
    path = decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    throw otpInvalid('The account name is not properly encoded.');
  }
  // "Issuer:account", where the issuer prefix is optional and spaces may follow the colon.
  const colon = path.indexOf(':');
  const prefix = colon === -1 ? '' : path.slice(0, colon).trim();
  const label = colon === -1 ? path : path.slice(colon + 1);
  const params = url.searchParams;
  // When both are present the `issuer` parameter wins: it is the one the format recommends.
  const issuer = params.get('issuer') ?? prefix;
  return checkOtpAccount({
    issuer,
    label,
    secret: params.get('secret') ?? undefined,
    algorithm: params.get('algorithm') ?? undefined,
    digits: params.get('digits') ?? undefined,
    period: params.get('period') ?? undefined,
  });
}

/** The account as an `otpauth://` link (for a QR code to another app). */
export function toOtpauthUri(account: OtpAccount): string {
  return new TOTP({ issuer: account.issuer, label: account.label, secret: Secret.fromBase32(account.secret), algorithm: account.algorithm, digits: account.digits, period: account.period }).toString();
}

// ── Codes ───────────────────────────────────────────────────────────────────────────────────────────

export interface CurrentCode {
  code: string;
  /** Whole seconds until the next code (1 to `period`). */
  secondsRemaining: number;
  period: number;
}

/** The code for `now` (RFC 6238 §4: T = floor((now − T0) / period), T0 = 0). */
export function codeFor(account: OtpAccount, now: Date | number): CurrentCode {
  const ms = typeof now === 'number' ? now : now.getTime();
  const code = TOTP.generate({ secret: Secret.fromBase32(account.secret), algorithm: account.algorithm, digits: account.digits, period: account.period, timestamp: ms });
  const periodMs = account.period * 1000;
  const secondsRemaining = Math.ceil((periodMs - (((ms % periodMs) + periodMs) % periodMs)) / 1000);
  return { code, secondsRemaining, period: account.period };
}

// ── The vault's entries ─────────────────────────────────────────────────────────────────────────────

function sameAccount(a: OtpAccount, b: OtpAccount): boolean {
  return a.secret === b.secret && a.issuer === b.issuer && a.label === b.label;
}

export function newVaultEntry(account: OtpAccount, now: Date): VaultEntry {
  return { id: globalThis.crypto.randomUUID(), ...account, addedAt: now.toISOString() };
}

export interface MergeResult {
  entries: VaultEntry[];
  added: VaultEntry[];
  /** Already in the vault (same issuer, account and secret). */
  skipped: OtpAccount[];
}

/** Adds accounts to a vault's entries, leaving out those it already holds. */
export function mergeIntoVault(entries: readonly VaultEntry[], accounts: readonly OtpAccount[], now: Date): MergeResult {
  const result: MergeResult = { entries: [...entries], added: [], skipped: [] };
  for (const account of accounts) {
    if (result.entries.some((entry) => sameAccount(entry, account))) {
      result.skipped.push(account);
      continue;
    }
    const entry = newVaultEntry(account, now);
    result.entries.push(entry);
    result.added.push(entry);
  }
  return result;
}

// ── Encrypted export ────────────────────────────────────────────────────────────────────────────────

/** The export file: JSON, versioned; everything but `ciphertext` is authenticated as associated data. */
export interface VaultEnvelope {
  format: typeof VAULT_FORMAT;
  version: typeof VAULT_VERSION;
  kdf: { name: 'PBKDF2'; hash: 'SHA-256'; iterations: number; salt: string };
  cipher: { name: 'AES-GCM'; iv: string };
  /** HKDF output that shows whether the passphrase is right, before decryption is tried. */
  check: string;
  ciphertext: string;
}

/** What is encrypted. */
interface VaultPlaintext {
  exportedAt: string;
  accounts: OtpAccount[];
}

const HKDF_INFO_KEY = 'portcullis-vault v1 aes-256-gcm key';
const HKDF_INFO_CHECK = 'portcullis-vault v1 passphrase check';

async function deriveKeys(passphrase: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<{ key: CryptoKey; check: Uint8Array }> {
  const subtle = globalThis.crypto.subtle;
  // NFC, so the same passphrase typed on two keyboards gives the same bytes.
  const material = await subtle.importKey('raw', encodeText(passphrase.normalize('NFC')), 'PBKDF2', false, ['deriveBits']);
  const master = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, material, 256);
  const hkdf = await subtle.importKey('raw', master, 'HKDF', false, ['deriveKey', 'deriveBits']);
  const empty = new Uint8Array(0);
  const key = await subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: empty, info: encodeText(HKDF_INFO_KEY) }, hkdf, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const check = new Uint8Array(await subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: empty, info: encodeText(HKDF_INFO_CHECK) }, hkdf, CHECK_BYTES * 8));
  return { key, check };
}

/** The associated data: the header, serialised in a fixed order from the values themselves. */
function associatedData(envelope: Omit<VaultEnvelope, 'ciphertext'>): Uint8Array<ArrayBuffer> {
  const { format, version, kdf, cipher, check } = envelope;
  return encodeText(
    JSON.stringify({ format, version, kdf: { name: kdf.name, hash: kdf.hash, iterations: kdf.iterations, salt: kdf.salt }, cipher: { name: cipher.name, iv: cipher.iv }, check }),
  );
}

export interface ExportOptions {
  now?: Date;
  /** At least 600,000. */
  iterations?: number;
}

/** Encrypts the vault's accounts with a passphrase; returns the export file's text (JSON). */
export async function exportVault(entries: readonly OtpAccount[], passphrase: string, options: ExportOptions = {}): Promise<string> {
  if (passphrase.normalize('NFC').length < MIN_PASSPHRASE_LENGTH) throw AuthenticatorError.client('vault-passphrase-short');
  const iterations = options.iterations ?? VAULT_PBKDF2_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < VAULT_PBKDF2_ITERATIONS || iterations > MAX_IMPORT_ITERATIONS) throw new RangeError(`iterations must be from ${VAULT_PBKDF2_ITERATIONS} to ${MAX_IMPORT_ITERATIONS}`);
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(IV_BYTES);
  const { key, check } = await deriveKeys(passphrase, salt, iterations);
  const header: Omit<VaultEnvelope, 'ciphertext'> = {
    format: VAULT_FORMAT,
    version: VAULT_VERSION,
    kdf: { name: 'PBKDF2', hash: 'SHA-256', iterations, salt: encodeBase64url(salt) },
    cipher: { name: 'AES-GCM', iv: encodeBase64url(iv) },
    check: encodeBase64url(check),
  };
  const plaintext: VaultPlaintext = {
    exportedAt: (options.now ?? new Date()).toISOString(),
    // Only the code parameters: ids and dates belong to the vault that imports them.
    accounts: entries.map((e) => ({ issuer: e.issuer, label: e.label, secret: e.secret, algorithm: e.algorithm, digits: e.digits, period: e.period })),
  };
  const ciphertext = await globalThis.crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: associatedData(header), tagLength: 128 }, key, encodeText(JSON.stringify(plaintext)));
  const envelope: VaultEnvelope = { ...header, ciphertext: encodeBase64url(new Uint8Array(ciphertext)) };
  return `${JSON.stringify(envelope, null, 2)}\n`;
}

function readEnvelope(text: string): { envelope: VaultEnvelope; salt: Uint8Array<ArrayBuffer>; iv: Uint8Array<ArrayBuffer>; check: Uint8Array; ciphertext: Uint8Array<ArrayBuffer> } {
  const bad = () => AuthenticatorError.client('vault-format');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad();
  }
  const v = value as Partial<VaultEnvelope> | null;
  if (typeof v !== 'object' || v === null || v.format !== VAULT_FORMAT || v.version !== VAULT_VERSION) throw bad();
  const { kdf, cipher } = v;
  if (!kdf || kdf.name !== 'PBKDF2' || kdf.hash !== 'SHA-256' || typeof kdf.salt !== 'string') throw bad();
  if (!Number.isInteger(kdf.iterations) || kdf.iterations < VAULT_PBKDF2_ITERATIONS || kdf.iterations > MAX_IMPORT_ITERATIONS) throw bad();
  if (!cipher || cipher.name !== 'AES-GCM' || typeof cipher.iv !== 'string' || typeof v.check !== 'string' || typeof v.ciphertext !== 'string') throw bad();
  try {
    const salt = decodeBase64url(kdf.salt);
    const iv = decodeBase64url(cipher.iv);
    const check = decodeBase64url(v.check);
    const ciphertext = decodeBase64url(v.ciphertext);
    if (salt.length < SALT_BYTES || iv.length !== IV_BYTES || check.length !== CHECK_BYTES || ciphertext.length < 16) throw bad();
    return { envelope: v as VaultEnvelope, salt, iv, check, ciphertext };
  } catch {
    throw bad();
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}

/**
 * Decrypts an export. Throws `vault-format` for a file that is not one, `vault-passphrase-wrong` when
 * the passphrase does not match, `vault-damaged` when it matches but the contents were changed.
 */
export async function importVault(text: string, passphrase: string): Promise<OtpAccount[]> {
  const { envelope, salt, iv, check, ciphertext } = readEnvelope(text);
  if (passphrase.length === 0) throw AuthenticatorError.client('vault-passphrase-wrong');
  const keys = await deriveKeys(passphrase, salt, envelope.kdf.iterations);
  if (!equalBytes(keys.check, check)) throw AuthenticatorError.client('vault-passphrase-wrong');
  let plaintext: ArrayBuffer;
  try {
    plaintext = await globalThis.crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: associatedData(envelope), tagLength: 128 }, keys.key, ciphertext);
  } catch {
    throw AuthenticatorError.client('vault-damaged');
  }
  let parsed: Partial<VaultPlaintext>;
  try {
    parsed = JSON.parse(new TextDecoder().decode(plaintext)) as Partial<VaultPlaintext>;
  } catch {
    throw AuthenticatorError.client('vault-damaged');
  }
  if (!Array.isArray(parsed.accounts)) throw AuthenticatorError.client('vault-damaged');
  return parsed.accounts.map((account) => checkOtpAccount(account));
}

/**
 * Recovery codes as NIST SP 800-63B-4 §3.1.2 look-up secrets: a set of ten single-use codes made by
 * the verifier from a CSPRNG, shown to the person once, and stored only as keyed hashes. Pure helpers:
 * making a set, reading what the person typed, and the unit's JSON in the `methods.data` column.
 */
import { hmac } from '../../../crypto/tokens.js';

/** How many codes a set holds. */
export const RECOVERY_CODE_COUNT = 10;

/** How many characters each code has (shown as two groups of five). */
export const RECOVERY_CODE_LENGTH = 10;

/**
 * Capital letters and digits with the look-alikes taken out (no 0/O, 1/I/L), so a code copied by hand
 * or read out over the phone is not misread: 23 letters and 8 digits, 31 symbols.
 *
 * Entropy: each character is drawn uniformly (rejection sampling, below), so a code has
 * 10 × log2(31) ≈ 49.5 bits — about 8 × 10^14 possible codes. A guess at a set of ten unused codes
 * succeeds with odds of about 1 in 8 × 10^13, and guesses are limited by the sign-in throttle
 * (SP 800-63B-4 §3.2.2, rate limiting). Reaching a full 50 bits would need a 32nd symbol, which means
 * one of the ambiguous characters or an eleventh character.
 */
export const RECOVERY_CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

/** The largest multiple of the alphabet's size below 256: bytes at or above it are thrown away. */
const ACCEPT_BELOW = 256 - (256 % RECOVERY_CODE_ALPHABET.length);

const CODE_PATTERN = new RegExp(`^[${RECOVERY_CODE_ALPHABET}]{${RECOVERY_CODE_LENGTH}}$`);

/** One code, uniformly from the alphabet: a byte ≥ ACCEPT_BELOW would bias the modulo, so it is drawn again. */
function newCode(random: (n: number) => Buffer): string {
  let code = '';
  while (code.length < RECOVERY_CODE_LENGTH) {
    for (const byte of random(RECOVERY_CODE_LENGTH - code.length + 2)) {
      if (byte >= ACCEPT_BELOW) continue;
      code += RECOVERY_CODE_ALPHABET[byte % RECOVERY_CODE_ALPHABET.length];
      if (code.length === RECOVERY_CODE_LENGTH) break;
    }
  }
  return code;
}

/** A code as it is shown: "ABCDE-FGHJK". */
export function formatRecoveryCode(code: string): string {
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/**
 * A new set of ten codes, different from one another, in the form they are shown ("ABCDE-FGHJK").
 * `random` is a CSPRNG (secureRandomBytes) in use; tests may pass their own.
 */
export function newRecoveryCodes(random: (n: number) => Buffer): string[] {
  const codes = new Set<string>();
  while (codes.size < RECOVERY_CODE_COUNT) codes.add(newCode(random));
  return [...codes].map(formatRecoveryCode);
}

/**
 * A typed code as it is hashed: spaces, hyphens and case do not matter ("abcde fghjk" is
 * "ABCDEFGHJK"). Null when what is left cannot be a code (wrong length, a character not in the alphabet).
 */
export function normaliseRecoveryCode(typed: string): string | null {
  const code = typed.replace(/[\s\u2010-\u2015-]+/g, '').toUpperCase();
  return CODE_PATTERN.test(code) ? code : null;
}

/** The keyed hash stored for a code (HMAC-SHA-256 under the code-hash key, bound to the method). */
export function hashRecoveryCode(key: Uint8Array, methodId: string, normalised: string): string {
  return hmac(key, `recovery-code:${methodId}:${normalised}`);
}

/** One stored code: its keyed hash, and when it was used (ISO 8601), or null while unused. */
export interface StoredRecoveryCode {
  h: string;
  used: string | null;
}

/** The unit's JSON in `methods.data`. */
export interface RecoveryCodeData {
  v: 1;
  codes: StoredRecoveryCode[];
}

/** An HMAC-SHA-256 in base64url: 32 bytes, 43 characters. */
const HASH_PATTERN = /^[A-Za-z0-9_-]{43}$/;

function isIsoDate(value: unknown): value is string {
  return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) && Number.isFinite(Date.parse(value));
}

function isRecoveryCodeData(value: unknown): value is RecoveryCodeData {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const data = value as Record<string, unknown>;
  if (data.v !== 1 || !Array.isArray(data.codes) || data.codes.length !== RECOVERY_CODE_COUNT) return false;
  const hashes = new Set<string>();
  for (const entry of data.codes as unknown[]) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return false;
    const { h, used } = entry as Record<string, unknown>;
    if (typeof h !== 'string' || !HASH_PATTERN.test(h) || hashes.has(h)) return false;
    if (used !== null && !isIsoDate(used)) return false;
    hashes.add(h);
  }
  return true;
}

/** Reads the stored JSON; null when it is missing or malformed (a unit never trusts a shape it did not check). */
export function parseRecoveryCodeData(text: string | null): RecoveryCodeData | null {
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecoveryCodeData(value)) return null;
  return { v: 1, codes: value.codes.map(({ h, used }) => ({ h, used })) };
}

/** Writes the JSON, in one fixed key order (replaceData compares the text); throws for malformed data. */
export function serialiseRecoveryCodeData(data: RecoveryCodeData): string {
  if (!isRecoveryCodeData(data)) throw new Error('Recovery code data is malformed');
  return JSON.stringify({ v: 1, codes: data.codes.map(({ h, used }) => ({ h, used })) });
}

/** How many codes of a set are still unused. */
export function unusedCount(data: RecoveryCodeData): number {
  return data.codes.filter((code) => code.used === null).length;
}

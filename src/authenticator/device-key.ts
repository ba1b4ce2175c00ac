/**
 * The device's signing key: ECDSA on P-256 through WebCrypto, as ES256 needs (RFC 7518 §3.4). In a
 * browser the private key is made non-extractable and kept as a CryptoKey in IndexedDB, so script on
 * the page can use it but never read it; the CLI needs an extractable key to write its private JWK to
 * its 0600 store file.
 */
import { AuthenticatorError } from './errors.js';

const ALGORITHM: EcKeyImportParams = { name: 'ECDSA', namedCurve: 'P-256' };

/** Where an account's key pair lives (IndexedDB in the PWA, the store file in the CLI, memory in tests). */
export interface DeviceKeyStore {
  load(): Promise<CryptoKeyPair | null>;
  save(pair: CryptoKeyPair): Promise<void>;
}

/** A public key as sent in the pairing JWS header: `kty`, `crv`, `x`, `y` only (docs/device-api.md). */
export interface PublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

/** The private key as the CLI stores it (RFC 7517 §4, RFC 7518 §6.2.2). */
export interface PrivateJwk extends PublicJwk {
  d: string;
}

export interface GenerateOptions {
  /** false (the default) in browsers; true only where the private key must be written out (the CLI). */
  extractable?: boolean;
}

export async function generateDeviceKey(options: GenerateOptions = {}): Promise<CryptoKeyPair> {
  // WebCrypto always makes the public half extractable; `extractable` applies to the private key.
  return globalThis.crypto.subtle.generateKey(ALGORITHM, options.extractable ?? false, ['sign', 'verify']);
}

/** The public JWK with only the members a P-256 public key needs (no `key_ops`, `ext`). */
export async function exportPublicJwk(publicKey: CryptoKey): Promise<PublicJwk> {
  const jwk = await globalThis.crypto.subtle.exportKey('jwk', publicKey);
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) throw AuthenticatorError.client('device-key-missing', 'The key is not a P-256 key.');
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
}

export async function exportPrivateJwk(privateKey: CryptoKey): Promise<PrivateJwk> {
  const jwk = await globalThis.crypto.subtle.exportKey('jwk', privateKey);
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || !jwk.x || !jwk.y || !jwk.d) throw AuthenticatorError.client('device-key-missing', 'The key is not a P-256 private key.');
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, d: jwk.d };
}

export function isPrivateJwk(value: unknown): value is PrivateJwk {
  const jwk = value as Partial<PrivateJwk> | null;
  return (
    typeof jwk === 'object' &&
    jwk !== null &&
    jwk.kty === 'EC' &&
    jwk.crv === 'P-256' &&
    typeof jwk.x === 'string' &&
    typeof jwk.y === 'string' &&
    typeof jwk.d === 'string'
  );
}

/** The key pair from a stored private JWK (the public key from its `x` and `y`). */
export async function importPrivateJwk(jwk: PrivateJwk, options: GenerateOptions = {}): Promise<CryptoKeyPair> {
  const subtle = globalThis.crypto.subtle;
  const { kty, crv, x, y, d } = jwk;
  const privateKey = await subtle.importKey('jwk', { kty, crv, x, y, d }, ALGORITHM, options.extractable ?? false, ['sign']);
  const publicKey = await subtle.importKey('jwk', { kty, crv, x, y }, ALGORITHM, true, ['verify']);
  return { privateKey, publicKey };
}

/** A key store in memory: for tests, and for a caller that persists the pair some other way. */
export class MemoryKeyStore implements DeviceKeyStore {
  constructor(private pair: CryptoKeyPair | null = null) {}

  async load(): Promise<CryptoKeyPair | null> {
    return this.pair;
  }

  async save(pair: CryptoKeyPair): Promise<void> {
    this.pair = pair;
  }
}

/**
 * Signed device requests (docs/device-api.md, "Signed requests"): a compact JWS (RFC 7515 §7.1) with
 * ES256 (RFC 7518 §3.4), whose payload binds the request's method and path as DPoP does (RFC 9449
 * §4.2, `htm` and `htu`), is fresh (`iat`) and used once (`jti`).
 */
import { encodeBase64url, encodeText, randomBytes } from './base64url.js';
import type { PublicJwk } from './device-key.js';

export const DEVICE_JWS_TYPE = 'portcullis-device+jwt';
/** The Authorization scheme that carries the JWS. */
export const AUTHORIZATION_SCHEME = 'PortcullisDevice';
/** 16 random bytes: the least the contract allows for a `jti` (128 bits, 22 base64url characters). */
const JTI_BYTES = 16;
const RESERVED_CLAIMS = new Set(['iat', 'jti', 'htm', 'htu']);

export interface DeviceJwsHeader {
  alg: 'ES256';
  typ: typeof DEVICE_JWS_TYPE;
  /** The device id, on every request after pairing. */
  kid?: string;
  /** The new public key, only on the pairing request (proof of possession: it signs with this key). */
  jwk?: PublicJwk;
}

export interface DeviceJwsPayload {
  /** Seconds since the epoch (the server accepts ±60 s of its clock). */
  iat: number;
  jti: string;
  htm: 'GET' | 'POST';
  htu: string;
  [field: string]: unknown;
}

export interface SignRequestInput {
  privateKey: CryptoKey;
  /** Exactly one of `kid` (a paired device) and `jwk` (pairing). */
  kid?: string;
  jwk?: PublicJwk;
  method: 'GET' | 'POST';
  /** The request path only, e.g. `/device/v1/challenges`; no origin, no query. */
  path: string;
  /** The request's own fields (POST bodies are not used: the fields travel in the payload). */
  fields?: Record<string, unknown>;
  /** Milliseconds since the epoch, already corrected by any known clock offset. */
  now: number;
  /** For tests only; a fresh random one otherwise. */
  jti?: string;
}

export function newJti(): string {
  return encodeBase64url(randomBytes(JTI_BYTES));
}

export async function signDeviceRequest(input: SignRequestInput): Promise<string> {
  if ((input.kid === undefined) === (input.jwk === undefined)) throw new TypeError('a device JWS carries either kid or jwk');
  if (!input.path.startsWith('/') || /[?#]/.test(input.path)) throw new TypeError('htu is the request path only');
  for (const name of Object.keys(input.fields ?? {})) if (RESERVED_CLAIMS.has(name)) throw new TypeError(`${name} is set by the signer`);

  const header: DeviceJwsHeader = input.kid !== undefined ? { alg: 'ES256', typ: DEVICE_JWS_TYPE, kid: input.kid } : { alg: 'ES256', typ: DEVICE_JWS_TYPE, jwk: input.jwk! };
  const payload: DeviceJwsPayload = {
    iat: Math.floor(input.now / 1000),
    jti: input.jti ?? newJti(),
    htm: input.method,
    htu: input.path,
    ...input.fields,
  };
  // RFC 7515 §5.1: the signing input is BASE64URL(header) '.' BASE64URL(payload).
  const signingInput = `${encodeBase64url(encodeText(JSON.stringify(header)))}.${encodeBase64url(encodeText(JSON.stringify(payload)))}`;
  // WebCrypto's ECDSA signature is already r‖s, each 32 bytes big-endian (the IEEE P1363 form, not
  // DER), which is exactly the JWS ES256 signature of RFC 7518 §3.4 — no conversion is needed.
  const signature = await globalThis.crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, input.privateKey, encodeText(signingInput));
  return `${signingInput}.${encodeBase64url(new Uint8Array(signature))}`;
}

export function authorizationHeader(jws: string): string {
  return `${AUTHORIZATION_SCHEME} ${jws}`;
}

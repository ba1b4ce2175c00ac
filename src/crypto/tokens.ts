/**
 * Random tokens and their lookup hashes. Tokens with at least 256 bits of entropy need no slow hash:
 * SHA-256 of the token is stored, so a copy of the database yields no usable token.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function hmac(key: Uint8Array, message: string): string {
  return createHmac('sha256', key).update(message).digest('base64url');
}

export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

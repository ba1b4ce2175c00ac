/**
 * Random tokens and their lookup hashes. Tokens with at least 256 bits of entropy need no slow hash:
 * SHA-256 of the token is stored, so a copy of the database yields no usable token.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * CSPRNG bytes, drawn from a pool filled 4 KiB at a time: each synchronous call into OpenSSL costs
 * more than the bytes, and a page needs several (nonce, CSRF seed, tokens). Every byte is used once.
 */
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let offset = 0;

export function secureRandomBytes(count: number): Buffer {
  if (count > POOL_SIZE) return randomBytes(count);
  if (offset + count > pool.length) {
    pool = randomBytes(POOL_SIZE);
    offset = 0;
  }
  const bytes = Buffer.from(pool.subarray(offset, offset + count));
  pool.fill(0, offset, offset + count);
  offset += count;
  return bytes;
}

export function randomToken(bytes = 32): string {
  return secureRandomBytes(bytes).toString('base64url');
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

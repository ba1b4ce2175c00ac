import { describe, expect, it } from 'vitest';
import { openText, sealText, SealError } from './seal.js';

const key = new Uint8Array(32).fill(1);
const otherKey = new Uint8Array(32).fill(2);

function sealErrorOf(fn: () => unknown): SealError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SealError) return error;
    throw error;
  }
  throw new Error('expected a SealError');
}

/** Flips one bit of the decoded byte at `index` in part `part` of a sealed value. */
function flip(sealed: string, part: 1 | 2, index: number): string {
  const parts = sealed.split('.');
  const bytes = Buffer.from(parts[part]!, 'base64url');
  bytes[index] = bytes[index]! ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

describe('sealText and openText (AES-256-GCM)', () => {
  it.each([
    ['a six-digit code', '123456'],
    ['the empty string', ''],
    ['JSON with non-ASCII text', JSON.stringify({ text: 'Your code is 123456 – don’t share it 🔐' })],
    ['a long value', 'x'.repeat(10_000)],
  ])('round-trips %s', (_name, plaintext) => {
    const sealed = sealText(key, plaintext, 'outbox/1');
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(openText(key, sealed, 'outbox/1')).toBe(plaintext);
  });

  it('draws a fresh IV each time, so equal plaintexts seal differently', () => {
    const a = sealText(key, '123456', 'ad');
    const b = sealText(key, '123456', 'ad');
    expect(a).not.toBe(b);
    expect(a.split('.')[1]).not.toBe(b.split('.')[1]);
  });

  it('never shows the plaintext', () => {
    expect(sealText(key, 'code 987654', 'ad')).not.toContain('987654');
  });

  it.each([
    ['a changed ciphertext byte', (s: string) => flip(s, 2, 0)],
    ['a changed tag byte', (s: string) => flip(s, 2, Buffer.from(s.split('.')[2]!, 'base64url').length - 1)],
    ['a changed IV', (s: string) => flip(s, 1, 3)],
  ])('refuses %s', (_name, tamper) => {
    const sealed = sealText(key, '123456', 'outbox/1');
    expect(sealErrorOf(() => openText(key, tamper(sealed), 'outbox/1')).code).toBe('sealed-value-unauthentic');
  });

  it('refuses other associated data: a value moved to another row does not open', () => {
    const sealed = sealText(key, '123456', 'outbox/1');
    expect(sealErrorOf(() => openText(key, sealed, 'outbox/2')).code).toBe('sealed-value-unauthentic');
  });

  it('refuses another key', () => {
    const sealed = sealText(key, '123456', 'ad');
    expect(sealErrorOf(() => openText(otherKey, sealed, 'ad')).code).toBe('sealed-value-unauthentic');
  });

  it.each([
    ['no version', 'abc'],
    ['an unknown version', 'v2.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA'],
    ['a short IV', 'v1.AAAA.AAAAAAAAAAAAAAAAAAAAAA'],
    ['a body shorter than the tag', 'v1.AAAAAAAAAAAAAAAA.AAAA'],
  ])('refuses a malformed value (%s)', (_name, sealed) => {
    expect(sealErrorOf(() => openText(key, sealed, 'ad')).code).toBe('sealed-value-malformed');
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(sealErrorOf(() => sealText(new Uint8Array(16), 'x', 'ad')).code).toBe('seal-key-invalid');
  });
});

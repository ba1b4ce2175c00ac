/**
 * Recovery codes as NIST SP 800-63B-4 §3.1.2 look-up secrets: how a set is made, how a typed code is
 * read, and the stored JSON (keyed hashes only).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  formatRecoveryCode,
  hashRecoveryCode,
  newRecoveryCodes,
  normaliseRecoveryCode,
  parseRecoveryCodeData,
  RECOVERY_CODE_ALPHABET,
  RECOVERY_CODE_COUNT,
  serialiseRecoveryCodeData,
  unusedCount,
  type RecoveryCodeData,
} from './codes.js';

const key = Buffer.alloc(32, 3);
const hash = (n: number) => hashRecoveryCode(key, 'method-1', `AAAAAAAAA${RECOVERY_CODE_ALPHABET[n]}`);
const validData = (): RecoveryCodeData => ({ v: 1, codes: Array.from({ length: 10 }, (_, n) => ({ h: hash(n), used: n === 0 ? '2026-01-02T03:04:05.000Z' : null })) });

describe('newRecoveryCodes', () => {
  it('makes ten codes of ten characters, shown as XXXXX-XXXXX', () => {
    const codes = newRecoveryCodes(randomBytes);
    expect(codes).toHaveLength(RECOVERY_CODE_COUNT);
    for (const code of codes) expect(code).toMatch(/^[A-Z2-9]{5}-[A-Z2-9]{5}$/);
  });

  it('uses only the unambiguous alphabet: no 0, O, 1, I or L', () => {
    expect(RECOVERY_CODE_ALPHABET).toHaveLength(31);
    expect(RECOVERY_CODE_ALPHABET).not.toMatch(/[0O1IL]/);
    const seen = new Set(newRecoveryCodes(randomBytes).concat(...Array.from({ length: 50 }, () => newRecoveryCodes(randomBytes))).join('').replace(/-/g, ''));
    for (const character of seen) expect(RECOVERY_CODE_ALPHABET).toContain(character);
    // 5,100 characters drawn: every one of the 31 symbols turns up.
    expect(seen.size).toBe(31);
  });

  it('has about 49.5 bits of entropy a code (10 × log2 31)', () => {
    expect(10 * Math.log2(RECOVERY_CODE_ALPHABET.length)).toBeCloseTo(49.54, 2);
  });

  it('makes ten different codes, and different sets each time', () => {
    const sets = Array.from({ length: 20 }, () => newRecoveryCodes(randomBytes));
    for (const set of sets) expect(new Set(set).size).toBe(10);
    expect(new Set(sets.flat()).size).toBe(200);
  });

  it('draws again on a byte that would bias the choice, and on a repeated code', () => {
    // 248 and above are thrown away (248 = 8 × 31); 0 is 'A', 31 is 'A' again, 30 is '9'.
    let calls = 0;
    const random = (n: number) => {
      calls += 1;
      // The first two codes come out the same ("AAAAAAAAAA"); the set must still hold ten different ones.
      if (calls <= 2) return Buffer.from([255, 248, ...Array(n).fill(31)]).subarray(0, n);
      return randomBytes(n);
    };
    const codes = newRecoveryCodes(random);
    expect(new Set(codes).size).toBe(10);
    expect(codes[0]).toBe('AAAAA-AAAAA');
  });
});

describe('normaliseRecoveryCode', () => {
  it('ignores spaces, hyphens and case', () => {
    expect(normaliseRecoveryCode('ABCDE-FGHJK')).toBe('ABCDEFGHJK');
    expect(normaliseRecoveryCode(' abcde fghjk ')).toBe('ABCDEFGHJK');
    expect(normaliseRecoveryCode('ab-cd-ef-gh-jk')).toBe('ABCDEFGHJK');
    expect(normaliseRecoveryCode('abcde\u2013fghjk')).toBe('ABCDEFGHJK');
  });

  it('refuses what cannot be a code', () => {
    for (const typed of ['', 'ABCDE', 'ABCDE-FGHJKM', 'ABCDE-FGHJ0', 'ABCDE-FGHJI', 'ABCDE-FGHJ!', '123456', 'ABCDE_FGHJK']) expect(normaliseRecoveryCode(typed)).toBeNull();
  });

  it('reads back every code a set shows', () => {
    for (const code of newRecoveryCodes(randomBytes)) expect(formatRecoveryCode(normaliseRecoveryCode(code)!)).toBe(code);
  });
});

describe('hashRecoveryCode', () => {
  it('is keyed and bound to the method', () => {
    const base = hashRecoveryCode(key, 'method-1', 'ABCDEFGHJK');
    expect(base).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(hashRecoveryCode(key, 'method-2', 'ABCDEFGHJK')).not.toBe(base);
    expect(hashRecoveryCode(Buffer.alloc(32, 4), 'method-1', 'ABCDEFGHJK')).not.toBe(base);
    expect(base).not.toContain('ABCDEFGHJK');
  });
});

describe('the stored data', () => {
  it('serialises and parses back', () => {
    const data = validData();
    const text = serialiseRecoveryCodeData(data);
    expect(parseRecoveryCodeData(text)).toEqual(data);
    expect(unusedCount(data)).toBe(9);
    // One fixed key order: the same data is always the same text (replaceData compares it).
    expect(serialiseRecoveryCodeData(JSON.parse(JSON.stringify({ codes: data.codes.map(({ used, h }) => ({ used, h })), v: 1 })))).toBe(text);
  });

  it('rejects malformed data', () => {
    const good = validData();
    const junk: unknown[] = [
      null,
      'not json',
      '[]',
      '{}',
      '42',
      JSON.stringify({ ...good, v: 2 }),
      JSON.stringify({ v: 1 }),
      JSON.stringify({ v: 1, codes: good.codes.slice(0, 9) }),
      JSON.stringify({ v: 1, codes: [...good.codes, { h: hash(10), used: null }] }),
      JSON.stringify({ v: 1, codes: good.codes.map((c, n) => (n === 3 ? { h: 'short', used: null } : c)) }),
      JSON.stringify({ v: 1, codes: good.codes.map((c, n) => (n === 3 ? { h: 42, used: null } : c)) }),
      JSON.stringify({ v: 1, codes: good.codes.map((c, n) => (n === 3 ? { h: c.h, used: 'yesterday' } : c)) }),
      JSON.stringify({ v: 1, codes: good.codes.map((c, n) => (n === 3 ? { h: c.h } : c)) }),
      JSON.stringify({ v: 1, codes: good.codes.map((c, n) => (n === 3 ? null : c)) }),
      JSON.stringify({ v: 1, codes: good.codes.map((c, n) => (n === 3 ? { h: good.codes[2]!.h, used: null } : c)) }),
    ];
    for (const text of junk) expect(parseRecoveryCodeData(text as string | null)).toBeNull();
    expect(() => serialiseRecoveryCodeData({ v: 1, codes: good.codes.slice(0, 9) })).toThrow(/malformed/);
  });

  it('keeps only the hash and the time of use of each code', () => {
    const withExtra = { v: 1, codes: validData().codes.map((c) => ({ ...c, plain: 'ABCDEFGHJK' })), extra: true };
    expect(parseRecoveryCodeData(JSON.stringify(withExtra))).toEqual(validData());
  });
});

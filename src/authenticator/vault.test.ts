import { describe, expect, it } from 'vitest';
import { AuthenticatorError } from './errors.js';
import { checkOtpAccount, codeFor, exportVault, importVault, mergeIntoVault, parseOtpauthUri, toOtpauthUri, type OtpAccount, type VaultEnvelope } from './vault.js';

const base32 = (ascii: string) => {
  // RFC 4648 §6, for the RFC 6238 seeds (which are ASCII).
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of new TextEncoder().encode(ascii)) bits += byte.toString(2).padStart(8, '0');
  return (bits.match(/.{1,5}/g) ?? []).map((chunk) => alphabet[parseInt(chunk.padEnd(5, '0'), 2)]).join('');
};

// RFC 6238 Appendix B: the seed is "12345678901234567890" repeated to the hash's length.
const SEEDS = {
  SHA1: base32('12345678901234567890'),
  SHA256: base32('12345678901234567890123456789012'),
  SHA512: base32('1234567890123456789012345678901234567890123456789012345678901234'),
} as const;

const RFC_6238_VECTORS: Array<[number, string, keyof typeof SEEDS]> = [
  [59, '94287082', 'SHA1'],
  [59, '46119246', 'SHA256'],
  [59, '90693936', 'SHA512'],
  [1111111109, '07081804', 'SHA1'],
  [1111111109, '68084774', 'SHA256'],
  [1111111109, '25091201', 'SHA512'],
  [1111111111, '14050471', 'SHA1'],
  [1111111111, '67062674', 'SHA256'],
  [1111111111, '99943326', 'SHA512'],
  [1234567890, '89005924', 'SHA1'],
  [1234567890, '91819424', 'SHA256'],
  [1234567890, '93441116', 'SHA512'],
  [2000000000, '69279037', 'SHA1'],
  [2000000000, '90698825', 'SHA256'],
  [2000000000, '38618901', 'SHA512'],
  [20000000000, '65353130', 'SHA1'],
  [20000000000, '77737706', 'SHA256'],
  [20000000000, '47863826', 'SHA512'],
];

const account = (overrides: Partial<OtpAccount> = {}): OtpAccount => ({ issuer: 'Example', label: 'alice@example.com', secret: 'JBSWY3DPEHPK3PXP', algorithm: 'SHA1', digits: 6, period: 30, ...overrides });

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(AuthenticatorError);
    return (error as AuthenticatorError).code;
  }
  throw new Error('expected a refusal');
}

describe('codeFor', () => {
  it.each(RFC_6238_VECTORS)('at %i s gives %s with %s (RFC 6238 Appendix B)', (seconds, code, algorithm) => {
    expect(codeFor(account({ secret: SEEDS[algorithm], algorithm, digits: 8 }), seconds * 1000).code).toBe(code);
  });

  it.each([
    [0, 30],
    [29_000, 1],
    [29_999, 1],
    [30_000, 30],
    [59_500, 1],
    [1_000, 29],
  ])('at %i ms, %i seconds remain', (ms, remaining) => {
    expect(codeFor(account(), ms).secondsRemaining).toBe(remaining);
  });

  it('takes a Date as well as milliseconds, and follows the period', () => {
    expect(codeFor(account({ period: 60 }), new Date(61_000))).toMatchObject({ secondsRemaining: 59, period: 60 });
  });
});

describe('parseOtpauthUri', () => {
  it('reads the Key URI Format example', () => {
    expect(parseOtpauthUri('otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example')).toEqual(account({ label: 'alice@google.com' }));
  });

  it.each([
    ['spaces after the issuer prefix', 'otpauth://totp/ACME%20Co:%20john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30', { issuer: 'ACME Co', label: 'john.doe@email.com' }],
    ['an encoded colon', 'otpauth://totp/Big%20Corp%3Ajane?secret=JBSWY3DPEHPK3PXP', { issuer: 'Big Corp', label: 'jane' }],
    ['no issuer at all', 'otpauth://totp/jane?secret=JBSWY3DPEHPK3PXP', { issuer: '', label: 'jane' }],
    ['the issuer parameter over the prefix', 'otpauth://totp/Old:jane?secret=JBSWY3DPEHPK3PXP&issuer=New', { issuer: 'New', label: 'jane' }],
    ['a lower-case, padded, spaced secret', 'otpauth://totp/x:y?secret=jbsw%20y3dp%20ehpk%203pxp%3D%3D%3D', { secret: 'JBSWY3DPEHPK3PXP' }],
    ['SHA256, 8 digits, 60 s', 'otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP&algorithm=sha256&digits=8&period=60', { algorithm: 'SHA256', digits: 8, period: 60 }],
    ['TOTP in capitals', 'OTPAUTH://TOTP/x:y?secret=JBSWY3DPEHPK3PXP&algorithm=SHA512', { algorithm: 'SHA512' }],
  ])('reads %s', (_name, uri, expected) => {
    expect(parseOtpauthUri(uri)).toMatchObject(expected);
  });

  it.each([
    ['not a link', 'JBSWY3DPEHPK3PXP', /otpauth:\/\/totp/],
    ['another scheme', 'https://example.com/?secret=JBSWY3DPEHPK3PXP', /otpauth:\/\/totp/],
    ['HOTP', 'otpauth://hotp/x:y?secret=JBSWY3DPEHPK3PXP&counter=0', /counter-based \(HOTP\)/],
    ['no secret', 'otpauth://totp/x:y?issuer=x', /secret is missing/],
    ['a secret that is not base32', 'otpauth://totp/x:y?secret=JBSWY3DPEHPK3PX1', /base32/],
    ['a 40-bit secret', 'otpauth://totp/x:y?secret=JBSWY3DP', /too short/],
    ['5 digits', 'otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP&digits=5', /digits must be a whole number from 6 to 8/],
    ['9 digits', 'otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP&digits=9', /digits/],
    ['a period of zero', 'otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP&period=0', /period/],
    ['a fractional period', 'otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP&period=30.5', /period/],
    ['MD5', 'otpauth://totp/x:y?secret=JBSWY3DPEHPK3PXP&algorithm=MD5', /SHA1, SHA256 or SHA512/],
    ['no account name', 'otpauth://totp/?secret=JBSWY3DPEHPK3PXP', /account name is missing/],
    ['an issuer with no account', 'otpauth://totp/Example:?secret=JBSWY3DPEHPK3PXP', /account name is missing/],
    ['a broken escape', 'otpauth://totp/x%E0%A4%A:y?secret=JBSWY3DPEHPK3PXP', /not properly encoded/],
  ])('refuses %s', (_name, uri, message) => {
    let error: unknown;
    try {
      parseOtpauthUri(uri);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(AuthenticatorError);
    expect((error as AuthenticatorError).code).toBe('otpauth-invalid');
    expect((error as AuthenticatorError).message).toMatch(message);
  });

  it('writes a link that reads back the same', () => {
    const original = account({ issuer: 'ACME Co', label: 'john@example.com', algorithm: 'SHA256', digits: 8, period: 60 });
    expect(parseOtpauthUri(toOtpauthUri(original))).toEqual(original);
  });
});

describe('mergeIntoVault', () => {
  it('adds new accounts with ids and leaves out ones already held', () => {
    const now = new Date('2025-01-01T00:00:00Z');
    const first = mergeIntoVault([], [account()], now);
    expect(first.added).toHaveLength(1);
    expect(first.entries[0]).toMatchObject({ ...account(), addedAt: '2025-01-01T00:00:00.000Z' });
    expect(first.entries[0]!.id).toMatch(/^[0-9a-f-]{36}$/);
    const second = mergeIntoVault(first.entries, [account(), account({ label: 'bob@example.com' })], now);
    expect(second.added.map((e) => e.label)).toEqual(['bob@example.com']);
    expect(second.skipped).toHaveLength(1);
    expect(second.entries).toHaveLength(2);
  });
});

describe('exportVault and importVault', () => {
  const accounts = [account(), account({ issuer: 'Git host', label: 'alice', secret: SEEDS.SHA256, algorithm: 'SHA256', digits: 8 })];
  const passphrase = 'correct horse battery staple';

  it('round-trips, with PBKDF2 at 600,000 iterations, a random salt and IV, and no secret in clear', async () => {
    const text = await exportVault(accounts, passphrase);
    const envelope = JSON.parse(text) as VaultEnvelope;
    expect(envelope).toMatchObject({ format: 'portcullis-vault', version: 1, kdf: { name: 'PBKDF2', hash: 'SHA-256', iterations: 600_000 }, cipher: { name: 'AES-GCM' } });
    expect(Buffer.from(envelope.kdf.salt, 'base64url')).toHaveLength(16);
    expect(Buffer.from(envelope.cipher.iv, 'base64url')).toHaveLength(12);
    expect(text).not.toContain('JBSWY3DPEHPK3PXP');
    expect(text).not.toContain('alice');
    expect(await importVault(text, passphrase)).toEqual(accounts);
    const again = JSON.parse(await exportVault(accounts, passphrase)) as VaultEnvelope;
    expect(again.kdf.salt).not.toBe(envelope.kdf.salt);
    expect(again.cipher.iv).not.toBe(envelope.cipher.iv);
  });

  it('takes the same passphrase in another Unicode form (NFC)', async () => {
    const text = await exportVault(accounts, 'caf\u00e9 au lait');
    expect(await importVault(text, 'cafe\u0301 au lait')).toEqual(accounts);
  });

  it('says when the passphrase is wrong', async () => {
    const text = await exportVault(accounts, passphrase);
    expect(await refusal(importVault(text, 'correct horse battery stable'))).toBe('vault-passphrase-wrong');
    expect(await refusal(importVault(text, ''))).toBe('vault-passphrase-wrong');
  });

  it.each<[string, (e: VaultEnvelope) => void, string]>([
    ['a flipped ciphertext bit', (e) => {
      const bytes = Buffer.from(e.ciphertext, 'base64url');
      bytes[3]! ^= 1;
      e.ciphertext = bytes.toString('base64url');
    }, 'vault-damaged'],
    ['a truncated ciphertext', (e) => (e.ciphertext = e.ciphertext.slice(0, -4)), 'vault-damaged'],
    ['another IV', (e) => (e.cipher.iv = Buffer.alloc(12, 7).toString('base64url')), 'vault-damaged'],
    ['another salt', (e) => (e.kdf.salt = Buffer.alloc(16, 7).toString('base64url')), 'vault-passphrase-wrong'],
    ['more iterations', (e) => (e.kdf.iterations = 600_001), 'vault-passphrase-wrong'],
    ['fewer iterations than the minimum', (e) => (e.kdf.iterations = 1000), 'vault-format'],
    ['a huge iteration count', (e) => (e.kdf.iterations = 1e9), 'vault-format'],
    ['another version', (e) => ((e as { version: number }).version = 2), 'vault-format'],
    ['another format', (e) => ((e as { format: string }).format = 'x'), 'vault-format'],
    ['a ciphertext that is not base64url', (e) => (e.ciphertext = '!!!'), 'vault-format'],
  ])('refuses an export with %s', async (_name, change, code) => {
    const envelope = JSON.parse(await exportVault(accounts, passphrase)) as VaultEnvelope;
    change(envelope);
    expect(await refusal(importVault(JSON.stringify(envelope), passphrase))).toBe(code);
  });

  it('refuses something that is not an export', async () => {
    expect(await refusal(importVault('not json', passphrase))).toBe('vault-format');
    expect(await refusal(importVault('{"format":"portcullis-vault"}', passphrase))).toBe('vault-format');
  });

  it('asks for a passphrase of at least 8 characters', async () => {
    expect(await refusal(exportVault(accounts, 'short'))).toBe('vault-passphrase-short');
  });

  it('checks every account it imports', () => {
    expect(() => checkOtpAccount({ issuer: 'x', label: 'y', secret: 'not base32!' })).toThrow(AuthenticatorError);
  });
});

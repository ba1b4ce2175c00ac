import { compactVerify, decodeProtectedHeader, EmbeddedJWK, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { decodeBase64url } from './base64url.js';
import { exportPrivateJwk, exportPublicJwk, generateDeviceKey, importPrivateJwk } from './device-key.js';
import { authorizationHeader, newJti, signDeviceRequest } from './jws.js';

const NOW = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

describe('signDeviceRequest', () => {
  it('makes an ES256 JWS that jose verifies with the device public key (kid header)', async () => {
    const pair = await generateDeviceKey();
    const jws = await signDeviceRequest({ privateKey: pair.privateKey, kid: 'device-1', method: 'POST', path: '/device/v1/challenges/c1/decision', fields: { decision: 'approve', number: '42' }, now: NOW });
    const key = await importJWK({ ...(await exportPublicJwk(pair.publicKey)) }, 'ES256');
    const { payload, protectedHeader } = await compactVerify(jws, key, { algorithms: ['ES256'] });
    expect(protectedHeader).toEqual({ alg: 'ES256', typ: 'portcullis-device+jwt', kid: 'device-1' });
    const claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
    expect(claims).toMatchObject({ iat: Math.floor(NOW / 1000), htm: 'POST', htu: '/device/v1/challenges/c1/decision', decision: 'approve', number: '42' });
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('verifies for pairing with the public key embedded as jwk, and the jwk has only kty, crv, x, y', async () => {
    const pair = await generateDeviceKey();
    const jwk = await exportPublicJwk(pair.publicKey);
    const jws = await signDeviceRequest({ privateKey: pair.privateKey, jwk, method: 'POST', path: '/device/v1/pair', fields: { activationCode: 'abc', name: 'Laptop' }, now: NOW });
    const header = decodeProtectedHeader(jws);
    expect(Object.keys(header.jwk!).sort()).toEqual(['crv', 'kty', 'x', 'y']);
    // jose's EmbeddedJWK takes the key from the header itself (RFC 7515 §4.1.3).
    const { protectedHeader } = await compactVerify(jws, EmbeddedJWK, { algorithms: ['ES256'] });
    expect(protectedHeader.typ).toBe('portcullis-device+jwt');
    expect(protectedHeader.kid).toBeUndefined();
  });

  it('signs with the raw 64-byte r‖s form RFC 7518 §3.4 requires, not DER', async () => {
    const pair = await generateDeviceKey();
    for (let i = 0; i < 20; i++) {
      const jws = await signDeviceRequest({ privateKey: pair.privateKey, kid: 'd', method: 'GET', path: '/device/v1/challenges', now: NOW });
      // A DER signature would start with 0x30 and vary in length (70–72 bytes).
      expect(decodeBase64url(jws.split('.')[2]!)).toHaveLength(64);
    }
  });

  it('fails verification when the payload is changed or another key is used', async () => {
    const pair = await generateDeviceKey();
    const other = await generateDeviceKey();
    const jws = await signDeviceRequest({ privateKey: pair.privateKey, kid: 'd', method: 'GET', path: '/device/v1/devices', now: NOW });
    const [h, , s] = jws.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ iat: 1, jti: newJti(), htm: 'GET', htu: '/device/v1/devices' })).toString('base64url')}.${s}`;
    const key = await importJWK({ ...(await exportPublicJwk(pair.publicKey)) }, 'ES256');
    await expect(compactVerify(forged, key)).rejects.toThrow();
    await expect(compactVerify(jws, await importJWK({ ...(await exportPublicJwk(other.publicKey)) }, 'ES256'))).rejects.toThrow();
  });

  it('signs with a key imported from a stored private JWK (the CLI store)', async () => {
    const original = await generateDeviceKey({ extractable: true });
    const restored = await importPrivateJwk(await exportPrivateJwk(original.privateKey));
    expect(restored.privateKey.extractable).toBe(false);
    const jws = await signDeviceRequest({ privateKey: restored.privateKey, kid: 'd', method: 'GET', path: '/device/v1/events', now: NOW });
    await expect(compactVerify(jws, await importJWK({ ...(await exportPublicJwk(original.publicKey)) }, 'ES256'))).resolves.toBeTruthy();
  });

  it('gives every request a new jti', async () => {
    const jtis = new Set(Array.from({ length: 100 }, () => newJti()));
    expect(jtis.size).toBe(100);
  });

  it.each([
    ['neither kid nor jwk', { kid: undefined }],
    ['a path with a query', { path: '/device/v1/challenges?x=1' }],
    ['a full URL as htu', { path: 'https://id.example.org/device/v1/challenges' }],
    ['a field that would overwrite iat', { fields: { iat: 1 } }],
  ])('refuses %s', async (_name, change) => {
    const pair = await generateDeviceKey();
    await expect(signDeviceRequest({ privateKey: pair.privateKey, kid: 'd', method: 'GET', path: '/device/v1/challenges', now: NOW, ...change })).rejects.toThrow(TypeError);
  });

  it('keeps a browser key non-extractable by default', async () => {
    const pair = await generateDeviceKey();
    expect(pair.privateKey.extractable).toBe(false);
    await expect(exportPrivateJwk(pair.privateKey)).rejects.toThrow();
  });

  it('puts the JWS in the PortcullisDevice scheme', () => {
    expect(authorizationHeader('a.b.c')).toBe('PortcullisDevice a.b.c');
  });
});

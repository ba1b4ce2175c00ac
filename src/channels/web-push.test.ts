import { createECDH } from 'node:crypto';
// http_ece is the aes128gcm implementation web-push uses; it takes a fixed salt and key, so the
// RFC's worked example can be reproduced to the byte.
import ece from 'http_ece';
import { describe, expect, it } from 'vitest';
import { deriveVapidKeys, isAllowedPushEndpoint } from './web-push.js';

/** RFC 8291 §5 and Appendix A. */
const RFC8291 = {
  plaintext: 'When I grow up, I want to be a watermelon',
  asPrivate: 'yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw',
  asPublic: 'BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8',
  uaPrivate: 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94',
  uaPublic: 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  salt: 'DGv6ra1nlYgDCS1FRnbzlw',
  authSecret: 'BTBZMqHH6r4Tts7J_aSIgg',
  body:
    'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
};

const b = (text: string) => Buffer.from(text, 'base64url');

describe('Web Push encryption (RFC 8291)', () => {
  it('reproduces Appendix A with a fixed salt and key pair', () => {
    const asKey = createECDH('prime256v1');
    asKey.setPrivateKey(b(RFC8291.asPrivate));
    expect(asKey.getPublicKey().toString('base64url')).toBe(RFC8291.asPublic);
    const body = ece.encrypt(Buffer.from(RFC8291.plaintext), {
      version: 'aes128gcm',
      privateKey: asKey,
      dh: b(RFC8291.uaPublic),
      authSecret: b(RFC8291.authSecret),
      salt: b(RFC8291.salt),
      rs: 4096,
    });
    expect(body.toString('base64url')).toBe(RFC8291.body);
  });

  it('decrypts Appendix A as the user agent', () => {
    const uaKey = createECDH('prime256v1');
    uaKey.setPrivateKey(b(RFC8291.uaPrivate));
    const plaintext = ece.decrypt(b(RFC8291.body), { version: 'aes128gcm', privateKey: uaKey, authSecret: b(RFC8291.authSecret) });
    expect(plaintext.toString()).toBe(RFC8291.plaintext);
  });
});

describe('deriveVapidKeys (RFC 8292)', () => {
  it('derives the same valid P-256 key pair from the same seed, and another from another', () => {
    const one = deriveVapidKeys(new Uint8Array(32).fill(1));
    expect(deriveVapidKeys(new Uint8Array(32).fill(1))).toEqual(one);
    expect(deriveVapidKeys(new Uint8Array(32).fill(2)).publicKey).not.toBe(one.publicKey);
    expect(b(one.publicKey)).toHaveLength(65);
    expect(b(one.publicKey)[0]).toBe(4); // uncompressed point
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(b(one.privateKey));
    expect(ecdh.getPublicKey().toString('base64url')).toBe(one.publicKey);
  });
});

describe('isAllowedPushEndpoint (no requests to hosts other than push services)', () => {
  const hosts = ['fcm.googleapis.com', '*.push.apple.com'];
  it.each([
    ['https://fcm.googleapis.com/fcm/send/abc', false, true],
    ['https://web.push.apple.com/QGx', false, true],
    ['https://push.apple.com/x', false, false],
    ['https://evilpush.apple.com.example/x', false, false],
    ['http://fcm.googleapis.com/fcm/send/abc', false, false],
    ['https://user:pass@fcm.googleapis.com/x', false, false],
    ['https://169.254.169.254/latest/meta-data', false, false],
    ['http://localhost:9000/push', false, false],
    ['http://localhost:9000/push', true, true],
    ['https://localhost:9000/push', true, true],
    ['https://localhost:9000/push', false, false],
    ['http://127.0.0.1:9000/push', true, true],
    ['http://10.0.0.5/push', true, false],
    ['not a url', true, false],
  ])('%s (local allowed: %s) → %s', (endpoint, allowLocal, expected) => {
    expect(isAllowedPushEndpoint(endpoint, hosts, allowLocal)).toBe(expected);
  });
});

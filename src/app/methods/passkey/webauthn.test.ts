/**
 * The relying-party checks of WebAuthn Level 3 §7.1 (registration) and §7.2 (authentication), against responses
 * captured from Chromium's virtual authenticator (test/fixtures/webauthn/capture.ts). Negative cases edit a real
 * response in one place, so each test shows that exactly that step refuses it.
 */
import { readFileSync } from 'node:fs';
import { isoBase64URL, isoCBOR, parseAuthenticatorData } from '@simplewebauthn/server/helpers';
import { describe, expect, it } from 'vitest';
import {
  ALLOWED_ALGORITHMS,
  CEREMONY_TIMEOUT_MS,
  CHALLENGE_BYTES,
  algorithmOfPublicKey,
  authenticationOptions,
  checkAssertion,
  checkRegistration,
  counterRegressed,
  credentialIdOf,
  isAllowedAlgorithm,
  isSynced,
  modelOf,
  refusalOfLibraryError,
  registrationOptions,
  relyingPartyFor,
  userHandleOf,
  type RelyingParty,
  type StoredCredential,
} from './webauthn.js';

interface Captured {
  challenge: string;
  response: { id: string; rawId: string; type: string; response: Record<string, unknown> };
}
const fixture = JSON.parse(
  readFileSync(new URL('../../../../test/fixtures/webauthn/chromium-es256.json', import.meta.url), 'utf8'),
) as { origin: string; rpId: string; registration: Captured; assertions: [Captured, Captured] };

const rp: RelyingParty = { id: fixture.rpId, name: 'Portcullis', origin: fixture.origin };
const registration = fixture.registration;
const [first, second] = fixture.assertions;

/** The callback the caller would pass: only this ceremony's challenge, once. */
const only = (expected: string) => (challenge: string) => challenge === expected;
const clone = <T>(value: T): T => structuredClone(value);

function withClientData(captured: Captured, edit: (data: Record<string, unknown>) => void) {
  const copy = clone(captured.response);
  const data = JSON.parse(isoBase64URL.toUTF8String(copy.response.clientDataJSON as string)) as Record<string, unknown>;
  edit(data);
  copy.response.clientDataJSON = isoBase64URL.fromUTF8String(JSON.stringify(data));
  return copy;
}

/** Registration with attestation "none" signs nothing over authData, so it can be edited and still parse. */
function withAuthData(edit: (authData: Uint8Array) => Uint8Array) {
  const copy = clone(registration.response);
  const attestation = isoCBOR.decodeFirst<Map<string, unknown>>(
    isoBase64URL.toBuffer(copy.response.attestationObject as string),
  );
  attestation.set('authData', edit(new Uint8Array(attestation.get('authData') as Uint8Array)));
  copy.response.attestationObject = isoBase64URL.fromBuffer(isoCBOR.encode(attestation as never));
  return copy;
}

const FLAG_UP = 0x01;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const withFlags = (change: (flags: number) => number) =>
  withAuthData((authData) => {
    authData[32] = change(authData[32] ?? 0);
    return authData;
  });

async function registeredCredential(): Promise<StoredCredential> {
  const result = await checkRegistration(rp, registration.response, only(registration.challenge));
  if (!result.ok) throw new Error(`fixture registration refused: ${result.reason}`);
  return result.credential;
}

describe('relying party and options', () => {
  it('takes the RP ID from the host and the origin from the public URL', () => {
    expect(relyingPartyFor('https://id.example.org:8443/portcullis/', 'Portcullis')).toEqual({
      id: 'id.example.org',
      name: 'Portcullis',
      origin: 'https://id.example.org:8443',
    });
  });

  it('keeps the challenge size and timeout within §13.4.3 and the allow-list in preference order', () => {
    expect(CHALLENGE_BYTES).toBeGreaterThanOrEqual(16);
    expect(CEREMONY_TIMEOUT_MS).toBe(300_000);
    expect(ALLOWED_ALGORITHMS).toEqual([-8, -7, -257]);
  });

  it('§5.4 creation options: deterministic for a challenge, attestation none, UV and resident key preferred', () => {
    const user = { handle: 'dXNlcg', name: 'ada@example.org', displayName: 'Ada' };
    const exclude = [{ id: 'AAEC', transports: ['usb'] }];
    const options = registrationOptions(rp, user, exclude, 'Y2hhbGxlbmdl');
    expect(registrationOptions(rp, user, exclude, 'Y2hhbGxlbmdl')).toEqual(options);
    expect(options).toMatchObject({
      rp: { id: rp.id, name: 'Portcullis' },
      user: { id: 'dXNlcg', name: 'ada@example.org', displayName: 'Ada' },
      challenge: 'Y2hhbGxlbmdl',
      attestation: 'none',
      timeout: CEREMONY_TIMEOUT_MS,
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      excludeCredentials: [{ id: 'AAEC', type: 'public-key', transports: ['usb'] }],
    });
    expect(options.pubKeyCredParams.map((p) => p.alg)).toEqual([...ALLOWED_ALGORITHMS]);
  });

  it('§5.5 request options: an empty allow-list asks for a discoverable credential', () => {
    expect(authenticationOptions(rp, [], 'Yw')).toEqual({
      rpId: rp.id,
      challenge: 'Yw',
      timeout: CEREMONY_TIMEOUT_MS,
      userVerification: 'preferred',
    });
    expect(authenticationOptions(rp, [{ id: 'AAEC' }], 'Yw').allowCredentials).toEqual([
      { id: 'AAEC', type: 'public-key' },
    ]);
  });
});

describe('§7.1 registering a new credential', () => {
  it('verifies the captured registration and records alg, UV, flags and AAGUID', async () => {
    const result = await checkRegistration(rp, registration.response, only(registration.challenge));
    expect(result).toEqual({
      ok: true,
      credential: expect.objectContaining({
        id: registration.response.id,
        algorithm: -7,
        counter: 1,
        transports: ['internal'],
        aaguid: '01020304-0506-0708-0102-030405060708',
        backupEligible: false,
        backedUp: false,
        userVerified: true,
      }),
    });
  });

  it('§7.1 "C.type is webauthn.create": an assertion-typed client data is refused', async () => {
    const response = withClientData(registration, (data) => (data.type = 'webauthn.get'));
    expect(await checkRegistration(rp, response, only(registration.challenge))).toEqual({ ok: false, reason: 'type' });
  });

  it('§7.1 "C.challenge equals options.challenge": a challenge the caller does not hold (reused or unknown) is refused', async () => {
    expect(await checkRegistration(rp, registration.response, () => false)).toEqual({ ok: false, reason: 'challenge' });
  });

  it('§7.1 "C.origin is an expected origin": a tampered origin is refused', async () => {
    const response = withClientData(registration, (data) => (data.origin = 'https://evil.example'));
    expect(await checkRegistration(rp, response, only(registration.challenge))).toEqual({ ok: false, reason: 'origin' });
  });

  it('§7.1 "C.origin is an expected origin": an origin that quotes the word "challenge" is still an origin refusal', async () => {
    const response = withClientData(registration, (data) => (data.origin = 'https://challenge.evil.example'));
    expect(await checkRegistration(rp, response, only(registration.challenge))).toEqual({ ok: false, reason: 'origin' });
  });

  it('§7.1 "C.topOrigin" (crossOrigin): a cross-origin (framed) ceremony is refused', async () => {
    const response = withClientData(registration, (data) => (data.crossOrigin = true));
    expect(await checkRegistration(rp, response, only(registration.challenge))).toEqual({ ok: false, reason: 'origin' });
  });

  it('§7.1 "rpIdHash is the SHA-256 of the RP ID": a different RP ID is refused', async () => {
    const other = { ...rp, id: 'example.org' };
    expect(await checkRegistration(other, registration.response, only(registration.challenge))).toEqual({
      ok: false,
      reason: 'rp-id',
    });
  });

  it('§7.1 "the UP bit of flags is set": a response without user presence is refused', async () => {
    const response = withFlags((flags) => flags & ~FLAG_UP);
    expect(await checkRegistration(rp, response, only(registration.challenge))).toEqual({
      ok: false,
      reason: 'user-presence',
    });
  });

  it('§7.1 "if BE is not set, BS is not set" (§6.1): backed up but not backup-eligible is refused', async () => {
    const response = withFlags((flags) => (flags | FLAG_BS) & ~FLAG_BE);
    expect(await checkRegistration(rp, response, only(registration.challenge))).toEqual({
      ok: false,
      reason: 'backup-flags',
    });
  });

  it('§7.1 "alg is one of pubKeyCredParams": a credential key outside the allow-list is refused', async () => {
    const response = withAuthData((authData) => {
      const { credentialPublicKey } = parseAuthenticatorData(new Uint8Array(authData));
      const key = isoCBOR.decodeFirst<Map<number, unknown>>(credentialPublicKey!);
      key.set(3, -35); // ES384: a real algorithm we do not offer
      const reKeyed = isoCBOR.encode(key as never);
      const prefix = authData.subarray(0, authData.length - credentialPublicKey!.length);
      return new Uint8Array([...prefix, ...reKeyed]);
    });
    expect(await checkRegistration(rp, response, only(registration.challenge))).toEqual({
      ok: false,
      reason: 'algorithm',
    });
  });

  it('§7.1 "alg is one of pubKeyCredParams": the allow-list decision and the key reader agree on the captured key', async () => {
    const credential = await registeredCredential();
    expect(await algorithmOfPublicKey(isoBase64URL.toBuffer(credential.publicKey))).toBe(-7);
    expect([-8, -7, -257].map(isAllowedAlgorithm)).toEqual([true, true, true]);
    expect([-35, -36, -37, -65535, -48, 0].map(isAllowedAlgorithm)).toEqual([false, false, false, false, false, false]);
    expect(await algorithmOfPublicKey(new Uint8Array([0xff]))).toBeNull();
  });

  it('§7.1 "credentialId is at most 1023 bytes": an id longer than 1023 bytes is refused', async () => {
    const id = isoBase64URL.fromBuffer(new Uint8Array(1024));
    const response = { ...clone(registration.response), id, rawId: id };
    expect(await checkRegistration(rp, response, only(registration.challenge))).toEqual({
      ok: false,
      reason: 'credential-id',
    });
  });

  const malformed: [string, unknown][] = [
    ['null', null],
    ['an empty object', {}],
    ['a string', 'hello'],
    ['a number', 42],
    ['an array', [registration.response]],
    ['id and rawId that differ', { ...registration.response, rawId: 'AAAA' }],
    ['a non-public-key type', { ...registration.response, type: 'password' }],
    ['a huge clientDataJSON', { ...registration.response, response: { ...registration.response.response, clientDataJSON: 'A'.repeat(5_000_000) } }],
    ['clientDataJSON that is not JSON', { ...registration.response, response: { ...registration.response.response, clientDataJSON: isoBase64URL.fromUTF8String('{not json') } }],
    ['an attestationObject that is not CBOR', { ...registration.response, response: { ...registration.response.response, attestationObject: 'AAAA' } }],
    ['a numeric attestationObject', { ...registration.response, response: { ...registration.response.response, attestationObject: 7 } }],
  ];
  it.each(malformed)('§7.1 "parse clientDataJSON / CBOR-decode attestationObject": %s is refused as malformed without throwing', async (_, input) => {
    expect(await checkRegistration(rp, input, only(registration.challenge))).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('§7.2 verifying an authentication assertion', () => {
  it('verifies the first assertion against the registered credential and returns its counter', async () => {
    const credential = await registeredCredential();
    expect(await checkAssertion(rp, first.response, only(first.challenge), credential)).toEqual({
      ok: true,
      counter: 2,
      userVerified: true,
      backedUp: false,
    });
  });

  it('verifies the second assertion after the first (the counter advances 2 → 3)', async () => {
    const credential = { ...(await registeredCredential()), counter: 2 };
    expect(await checkAssertion(rp, second.response, only(second.challenge), credential)).toMatchObject({
      ok: true,
      counter: 3,
    });
  });

  it('§7.2 "signCount is greater than the stored signCount" (§6.1.1): replaying the first assertion after the second is a counter regression', async () => {
    const credential = { ...(await registeredCredential()), counter: 3 };
    expect(await checkAssertion(rp, first.response, only(first.challenge), credential)).toEqual({
      ok: false,
      reason: 'counter-regression',
    });
  });

  it('§7.2 "signCount": a regression is only reported for a response the authenticator really signed', async () => {
    const credential = { ...(await registeredCredential()), counter: 3 };
    expect(await checkAssertion(rp, tamperedSignature(first), only(first.challenge), credential)).toEqual({
      ok: false,
      reason: 'signature',
    });
  });

  it('counterRegressed: zero on both sides means no counter, anything else must advance', () => {
    expect(counterRegressed(0, 0)).toBe(false);
    expect(counterRegressed(0, 1)).toBe(false);
    expect(counterRegressed(2, 3)).toBe(false);
    expect(counterRegressed(3, 3)).toBe(true);
    expect(counterRegressed(3, 2)).toBe(true);
    expect(counterRegressed(3, 0)).toBe(true);
  });

  it('§7.2 "credential.id identifies a credential of this user": another credential is refused', async () => {
    const credential = { ...(await registeredCredential()), id: 'c29tZS1vdGhlci1jcmVkZW50aWFs' };
    expect(await checkAssertion(rp, first.response, only(first.challenge), credential)).toEqual({
      ok: false,
      reason: 'credential',
    });
  });

  it('§7.2 "C.type is webauthn.get": a registration-typed client data is refused', async () => {
    const response = withClientData(first, (data) => (data.type = 'webauthn.create'));
    expect(await checkAssertion(rp, response, only(first.challenge), await registeredCredential())).toEqual({
      ok: false,
      reason: 'type',
    });
  });

  it('§7.2 "C.challenge equals options.challenge": a challenge the caller rejects is refused', async () => {
    expect(await checkAssertion(rp, first.response, () => false, await registeredCredential())).toEqual({
      ok: false,
      reason: 'challenge',
    });
  });

  it('§7.2 "C.origin is an expected origin": a tampered origin is refused', async () => {
    const response = withClientData(first, (data) => (data.origin = 'https://evil.example'));
    expect(await checkAssertion(rp, response, only(first.challenge), await registeredCredential())).toEqual({
      ok: false,
      reason: 'origin',
    });
  });

  it('§7.2 "rpIdHash is the SHA-256 of the RP ID": a different RP ID is refused', async () => {
    const other = { ...rp, id: 'example.org' };
    expect(await checkAssertion(other, first.response, only(first.challenge), await registeredCredential())).toEqual({
      ok: false,
      reason: 'rp-id',
    });
  });

  it('§7.2 "BE has not changed" (§6.1.3): a credential stored as backup-eligible that now says it is not is refused', async () => {
    const credential = { ...(await registeredCredential()), backupEligible: true };
    expect(await checkAssertion(rp, first.response, only(first.challenge), credential)).toEqual({
      ok: false,
      reason: 'backup-flags',
    });
  });

  it('§7.2 "sig is a valid signature over authData ‖ hash": a tampered signature is refused', async () => {
    expect(await checkAssertion(rp, tamperedSignature(first), only(first.challenge), await registeredCredential())).toEqual({
      ok: false,
      reason: 'signature',
    });
  });

  it('§7.2 "sig is a valid signature over authData ‖ hash": a tampered authenticator data (counter bumped) is refused', async () => {
    const copy = clone(first.response);
    const authData = isoBase64URL.toBuffer(copy.response.authenticatorData as string);
    authData[36] = 0x7f;
    copy.response.authenticatorData = isoBase64URL.fromBuffer(authData);
    expect(await checkAssertion(rp, copy, only(first.challenge), await registeredCredential())).toEqual({
      ok: false,
      reason: 'signature',
    });
  });

  const malformed: [string, unknown][] = [
    ['null', null],
    ['an empty object', {}],
    ['a string', 'hello'],
    ['a huge signature', { ...first.response, response: { ...first.response.response, signature: 'A'.repeat(1_000_000) } }],
    ['a numeric user handle', { ...first.response, response: { ...first.response.response, userHandle: 12 } }],
    ['short authenticator data', { ...first.response, response: { ...first.response.response, authenticatorData: 'AAAA' } }],
  ];
  it.each(malformed)('§7.2 "parse clientDataJSON and authenticatorData": %s is refused as malformed without throwing', async (_, input) => {
    expect(await checkAssertion(rp, input, only(first.challenge), await registeredCredential())).toEqual({
      ok: false,
      reason: 'malformed',
    });
  });
});

/** A small deterministic generator, so a failing flip can be reproduced. */
function flips(bytes: Uint8Array, count: number, seed: number) {
  let state = seed;
  const next = () => (state = (state * 48271) % 2147483647);
  return Array.from({ length: count }, () => {
    const copy = new Uint8Array(bytes);
    const at = next() % copy.length;
    copy[at] = (copy[at] ?? 0) ^ (1 << next() % 8);
    return { at, bytes: copy };
  });
}

describe('§7.2 against single-bit corruption', () => {
  it.each(['authenticatorData', 'clientDataJSON'])('any flipped bit of %s is refused, never thrown', async (field) => {
    const credential = await registeredCredential();
    const original = isoBase64URL.toBuffer(first.response.response[field] as string);
    for (const { bytes } of flips(original, 300, field.length)) {
      const copy = clone(first.response);
      copy.response[field] = isoBase64URL.fromBuffer(bytes);
      const result = await checkAssertion(rp, copy, () => true, credential);
      expect(result.ok).toBe(false);
    }
  });

  it('any flipped bit of the signature is refused, except in the DER header the library reads leniently', async () => {
    const credential = await registeredCredential();
    const original = isoBase64URL.toBuffer(first.response.response.signature as string);
    for (const { at, bytes } of flips(original, 300, 7)) {
      const copy = clone(first.response);
      copy.response.signature = isoBase64URL.fromBuffer(bytes);
      const result = await checkAssertion(rp, copy, () => true, credential);
      // Bytes 0–1 are the SEQUENCE tag and length: the same r and s still verify (see the report on this file).
      if (at > 1) expect(result).toEqual({ ok: false, reason: 'signature' });
    }
  });
});

function tamperedSignature(captured: Captured) {
  const copy = clone(captured.response);
  const signature = isoBase64URL.toBuffer(copy.response.signature as string);
  // A byte inside r of the DER ECDSA signature: still well-formed DER, no longer a valid signature.
  signature[10] = (signature[10] ?? 0) ^ 0x01;
  copy.response.signature = isoBase64URL.fromBuffer(signature);
  return copy;
}

describe('readers and labels', () => {
  it('credentialIdOf and userHandleOf read a response safely before it is verified', () => {
    expect(credentialIdOf(first.response)).toBe(first.response.id);
    expect(userHandleOf(first.response)).toBe(first.response.response.userHandle);
    for (const bad of [null, undefined, 'x', 1, [], {}, { id: 'a b', rawId: 'a b' }, { id: 'AA', rawId: 'AB' }]) {
      expect(credentialIdOf(bad)).toBeNull();
      expect(userHandleOf(bad)).toBeNull();
    }
  });

  it('modelOf names a known AAGUID and says nothing for the zero AAGUID', () => {
    expect(modelOf('ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4')).toBe('Google Password Manager');
    expect(modelOf('EA9B8D66-4D01-1D21-3CE4-B6B48CB575D4')).toBe('Google Password Manager');
    expect(modelOf('00000000-0000-0000-0000-000000000000')).toBeNull();
    expect(modelOf('01020304-0506-0708-0102-030405060708')).toBeNull();
    expect(modelOf('__proto__')).toBeNull();
  });

  it('isSynced follows the BS flag', async () => {
    expect(isSynced(await registeredCredential())).toBe(false);
    expect(isSynced({ backedUp: true })).toBe(true);
  });

  it('unrecognised library errors fail safe as "other"', () => {
    expect(refusalOfLibraryError(new Error('something new'))).toBe('other');
    expect(refusalOfLibraryError('not an error')).toBe('other');
    expect(refusalOfLibraryError(new SyntaxError('Unexpected token'))).toBe('malformed');
  });
});

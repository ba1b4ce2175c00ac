import { describe, expect, it } from 'vitest';
import { FakeDeviceApi } from '../../test/helpers/fake-device-api.js';
import { AuthenticatorClient, parsePairingUrl, retryAfterToMs, serverTimeToMs, type FetchFunction } from './client.js';
import { MemoryKeyStore } from './device-key.js';
import { AuthenticatorError, isRemovalRefused } from './errors.js';
import { backoffDelay, isPermanentError, watchChallenges } from './watch.js';

async function paired(api = new FakeDeviceApi(), options: { clock?: () => number } = {}) {
  const keyStore = new MemoryKeyStore();
  const { client, result } = await AuthenticatorClient.pair({ url: api.pairingUrl(), name: ' Laptop ', keyStore, fetch: api.fetch, ...options });
  return { api, client, result, keyStore };
}

async function refusal(promise: Promise<unknown>): Promise<AuthenticatorError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(AuthenticatorError);
    return error as AuthenticatorError;
  }
  throw new Error('expected a refusal');
}

describe('parsePairingUrl', () => {
  const code = 'AAAAAAAAAAAAAAAAAAAAAA';

  it.each([
    [`https://id.example.org/authenticator/#pair=${code}`, 'https://id.example.org'],
    [`  https://id.example.org:8443/authenticator/#pair=${code}\n`, 'https://id.example.org:8443'],
    [`http://localhost:8080/authenticator/#pair=${code}`, 'http://localhost:8080'],
    [`http://127.0.0.1:3000/authenticator/#pair=${code}`, 'http://127.0.0.1:3000'],
    [`http://[::1]:3000/authenticator/#pair=${code}`, 'http://[::1]:3000'],
  ])('reads %s', (url, origin) => {
    expect(parsePairingUrl(url)).toEqual({ origin, activationCode: code });
  });

  it.each([
    ['http to another host', `http://id.example.org/authenticator/#pair=${code}`, 'pairing-url-insecure'],
    ['no fragment', 'https://id.example.org/authenticator/', 'pairing-url-invalid'],
    ['the code in the query', `https://id.example.org/authenticator/?pair=${code}`, 'pairing-url-invalid'],
    ['a short code', 'https://id.example.org/authenticator/#pair=abc', 'pairing-url-invalid'],
    ['a code with other characters', `https://id.example.org/authenticator/#pair=${code}!`, 'pairing-url-invalid'],
    ['credentials in the link', `https://user:pw@id.example.org/authenticator/#pair=${code}`, 'pairing-url-invalid'],
    ['another scheme', `ftp://id.example.org/#pair=${code}`, 'pairing-url-invalid'],
    ['not a URL', code, 'pairing-url-invalid'],
  ])('refuses %s', (_name, url, errorCode) => {
    expect(() => parsePairingUrl(url)).toThrow(expect.objectContaining({ code: errorCode }));
  });
});

describe('AuthenticatorClient against the contract', () => {
  it('pairs with a JWS carrying only the public key, then signs with kid; saves the key only on success', async () => {
    const { api, client, result, keyStore } = await paired();
    expect(result).toMatchObject({ deviceId: 'device-1', account: { email: 'alice@example.org', organisation: 'Test Trust' }, testChallengeId: 'challenge-1' });
    expect(client.deviceId).toBe('device-1');
    expect(client.origin).toBe('https://id.example.org');
    expect(await keyStore.load()).not.toBeNull();
    const [pairing] = api.requests;
    expect(pairing!.header).toEqual({ alg: 'ES256', typ: 'portcullis-device+jwt', jwk: expect.objectContaining({ kty: 'EC', crv: 'P-256' }) });
    expect(pairing!.payload).toMatchObject({ htm: 'POST', htu: '/device/v1/pair', name: 'Laptop' });
    expect(pairing!.payload).not.toHaveProperty('pushSubscription');

    await client.pendingChallenges();
    expect(api.requests[1]!.header).toEqual({ alg: 'ES256', typ: 'portcullis-device+jwt', kid: 'device-1' });

    const failedStore = new MemoryKeyStore();
    const error = await refusal(AuthenticatorClient.pair({ url: api.pairingUrl('AAAAAAAAAAAAAAAAAAAAAA'), name: 'x', keyStore: failedStore, fetch: api.fetch }));
    expect(error).toMatchObject({ code: 'activation-code-invalid', status: 410 });
    expect(await failedStore.load()).toBeNull();
  });

  it('sends the push subscription with the pairing, and changes it later', async () => {
    const api = new FakeDeviceApi();
    const subscription = { endpoint: 'https://push.example.net/abc', keys: { p256dh: 'p', auth: 'a' } };
    const { client } = await AuthenticatorClient.pair({ url: api.pairingUrl(), name: 'Phone', keyStore: new MemoryKeyStore(), pushSubscription: subscription, fetch: api.fetch });
    expect(api.devices.get(client.deviceId)!.pushSubscription).toEqual(subscription);
    await client.setPushSubscription(null);
    expect(api.devices.get(client.deviceId)!.pushSubscription).toBeNull();
  });

  it('refuses a bad name before asking the server', async () => {
    const api = new FakeDeviceApi();
    expect((await refusal(AuthenticatorClient.pair({ url: api.pairingUrl(), name: '  ', keyStore: new MemoryKeyStore(), fetch: api.fetch }))).code).toBe('device-name-invalid');
    expect((await refusal(AuthenticatorClient.pair({ url: api.pairingUrl(), name: 'x'.repeat(61), keyStore: new MemoryKeyStore(), fetch: api.fetch }))).code).toBe('device-name-invalid');
    expect(api.requests).toHaveLength(0);
  });

  it('lists the test request, approves it with the number as a string, and refuses a second decision', async () => {
    const { api, client, result } = await paired();
    const [test] = await client.pendingChallenges();
    expect(test).toMatchObject({ id: result.testChallengeId, purpose: 'test', numberLength: 2, status: 'pending', account: { email: 'alice@example.org' } });
    expect(await client.decide(test!.id, { decision: 'approve', number: ' 1 7 ' })).toEqual({ status: 'approved' });
    expect(api.requests.at(-1)!.payload).toMatchObject({ htm: 'POST', htu: `/device/v1/challenges/${test!.id}/decision`, decision: 'approve', number: '17' });
    expect(await refusal(client.decide(test!.id, { decision: 'deny' }))).toMatchObject({ code: 'challenge-decided', status: 409 });
    expect(await client.pendingChallenges()).toEqual([]);
  });

  it('keeps leading zeros, and needs digits to approve', async () => {
    const { api, client } = await paired();
    const challenge = api.startChallenge(client.deviceId, { number: '07' });
    expect((await refusal(client.decide(challenge.id, { decision: 'approve' }))).code).toBe('number-invalid');
    expect((await refusal(client.decide(challenge.id, { decision: 'approve', number: 'seven' }))).code).toBe('number-invalid');
    expect(await client.decide(challenge.id, { decision: 'approve', number: '07' })).toEqual({ status: 'approved' });
  });

  it('carries the server’s error code and message for a wrong number, a denial and a report', async () => {
    const { api, client } = await paired();
    const wrong = api.startChallenge(client.deviceId);
    expect(await refusal(client.decide(wrong.id, { decision: 'approve', number: '41' }))).toMatchObject({ code: 'wrong-number', status: 400, message: '(wrong-number)' });
    expect((await client.challenge(wrong.id)).status).toBe('wrong-number');
    expect(await client.decide(api.startChallenge(client.deviceId).id, { decision: 'deny' })).toEqual({ status: 'denied' });
    expect(await client.decide(api.startChallenge(client.deviceId).id, { decision: 'report' })).toEqual({ status: 'reported' });
    expect(await refusal(client.challenge('nope'))).toMatchObject({ code: 'challenge-not-found', status: 404 });
  });

  it('lists devices, renames and removes itself; a removed device is device-unknown', async () => {
    const { client } = await paired();
    expect(await client.devices()).toEqual([{ id: client.deviceId, name: 'Laptop', createdAt: expect.any(String), lastUsedAt: null, current: true }]);
    expect(await client.rename('Desk')).toEqual({ id: client.deviceId, name: 'Desk' });
    await client.remove();
    expect(await refusal(client.devices())).toMatchObject({ code: 'device-unknown', status: 401 });
  });

  it('surfaces a refused removal (the only method meeting the policy) as a typed error, and changes nothing (issue #12)', async () => {
    const { api, client, keyStore } = await paired();
    api.lastCompliant.add(client.deviceId);
    const error = await refusal(client.remove());
    expect(isRemovalRefused(error)).toBe(true);
    expect(error).toMatchObject({
      code: 'method-last-compliant',
      status: 409,
      reason: 'It is your only sign-in method that meets “Those with elevated rights must use push notifications” (from 30 November 2023). Add another one that does first.',
    });
    expect(isRemovalRefused(new AuthenticatorError('device-unknown', 'x', 401))).toBe(false);
    // Still paired, key kept: the app decides what to offer (forgetting the account here only).
    expect(api.devices.has(client.deviceId)).toBe(true);
    expect(await keyStore.load()).not.toBeNull();
    expect(await client.devices()).toHaveLength(1);
  });

  it('is refused all but its test request until that is approved (device-pending), then may do the rest (issue #12)', async () => {
    const api = new FakeDeviceApi();
    api.pendingUntilTested = true;
    const { client, result } = await paired(api);
    expect((await client.pendingChallenges()).map((c) => c.id)).toEqual([result.testChallengeId]);
    const error = await refusal(client.devices());
    expect(error).toMatchObject({ code: 'device-pending', status: 403 });
    // Waiting cures it (the person approves the test request), so a watcher keeps trying.
    expect(isPermanentError(error)).toBe(false);
    await client.decide(result.testChallengeId, { decision: 'approve', number: '17' });
    expect(await client.devices()).toHaveLength(1);
  });

  it('carries the field the server names, and how long it asks to wait (issue #12)', async () => {
    const { keyStore } = await paired();
    const answers = [
      Response.json({ error: 'number-invalid', message: 'Enter the number shown on the sign-in page, using only the digits 0 to 9', field: 'number' }, { status: 400 }),
      Response.json({ error: 'rate-limited', message: 'Too many requests. Wait a moment and try again.' }, { status: 429, headers: { 'retry-after': '17' } }),
    ];
    const client = new AuthenticatorClient({ origin: 'https://id.example.org', deviceId: 'd', keyStore, fetch: async () => answers.shift()! });
    expect(await refusal(client.decide('c', { decision: 'approve', number: '12' }))).toMatchObject({ code: 'number-invalid', status: 400, field: 'number' });
    expect(await refusal(client.devices())).toMatchObject({ code: 'rate-limited', status: 429, retryAfterMs: 17_000, field: undefined });
  });

  it('reads Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3)', () => {
    const now = Date.parse('2026-11-28T12:00:00Z');
    expect(retryAfterToMs('17', now)).toBe(17_000);
    expect(retryAfterToMs(' 0 ', now)).toBe(0);
    expect(retryAfterToMs('Sat, 28 Nov 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterToMs('Sat, 28 Nov 2026 11:59:00 GMT', now)).toBe(0);
    expect(retryAfterToMs('soon', now)).toBeUndefined();
    expect(retryAfterToMs(null, now)).toBeUndefined();
  });

  it('retries once with the server’s clock after device-clock-skew, and keeps the offset', async () => {
    const api = new FakeDeviceApi();
    const local = Date.now();
    api.clock = () => local + 5 * 60_000; // the server is five minutes ahead
    const { client } = await paired(api, { clock: () => local });
    expect(api.requests.map((r) => r.path)).toEqual(['/device/v1/pair', '/device/v1/pair']);
    // serverTime is in whole seconds, so the offset is known to within a second.
    expect(Math.abs(client.clockOffsetMs - 300_000)).toBeLessThan(1000);
    await client.pendingChallenges();
    expect(api.requests).toHaveLength(3); // no second skew
  });

  it('gives up after one retry if the clock is still out', async () => {
    const api = new FakeDeviceApi();
    let skew = 0;
    // A server whose clock jumps ahead on every request.
    api.clock = () => Date.now() + (skew += 10 * 60_000);
    expect(await refusal(AuthenticatorClient.pair({ url: api.pairingUrl(), name: 'x', keyStore: new MemoryKeyStore(), fetch: api.fetch }))).toMatchObject({ code: 'device-clock-skew' });
  });

  it('turns network failures and non-JSON answers into typed errors', async () => {
    const keyStore = new MemoryKeyStore();
    const down: FetchFunction = async () => {
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    };
    const client = new AuthenticatorClient({ origin: 'https://id.example.org', deviceId: 'd', keyStore, fetch: down });
    expect((await refusal(client.devices())).code).toBe('device-key-missing');
    const { keyStore: withKey } = await paired();
    const offline = new AuthenticatorClient({ origin: 'https://id.example.org', deviceId: 'd', keyStore: withKey, fetch: down });
    expect(await refusal(offline.devices())).toMatchObject({ code: 'network-error', message: expect.stringContaining('ECONNREFUSED') });
    const proxy = new AuthenticatorClient({ origin: 'https://id.example.org', deviceId: 'd', keyStore: withKey, fetch: async () => new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }) });
    expect(await refusal(proxy.devices())).toMatchObject({ code: 'response-invalid', status: 502, message: 'The server answered 502 Bad Gateway' });
    const odd = new AuthenticatorClient({ origin: 'https://id.example.org', deviceId: 'd', keyStore: withKey, fetch: async () => Response.json({ devices: [{ id: 1 }] }) });
    expect((await refusal(odd.devices())).code).toBe('response-invalid');
  });

  it('passes through `used` and statuses it does not know, so a newer server does not break it', async () => {
    const { keyStore } = await paired();
    const challenge = { id: 'c', status: 'used', purpose: 'sign-in', account: { email: 'a@example.org' }, app: 'x', ip: null, location: null, createdAt: 't', expiresAt: 't', numberLength: 2 };
    const answers = [challenge, { ...challenge, status: 'escalated' }];
    const client = new AuthenticatorClient({ origin: 'https://id.example.org', deviceId: 'd', keyStore, fetch: async () => Response.json(answers.shift()) });
    expect((await client.challenge('c')).status).toBe('used');
    expect((await client.challenge('c')).status).toBe('escalated');
  });

  it('reads serverTime in seconds, milliseconds or ISO 8601', () => {
    expect(serverTimeToMs(1_700_000_000)).toBe(1_700_000_000_000);
    expect(serverTimeToMs(1_700_000_000_123)).toBe(1_700_000_000_123);
    expect(serverTimeToMs('1700000000')).toBe(1_700_000_000_000);
    expect(serverTimeToMs('2023-11-14T22:13:20Z')).toBe(1_700_000_000_000);
    expect(serverTimeToMs('soon')).toBeUndefined();
    expect(serverTimeToMs(undefined)).toBeUndefined();
  });
});

describe('events', () => {
  it('announces waiting challenges on opening, then new ones as they start, and stops on abort', async () => {
    const { api, client, result } = await paired();
    const controller = new AbortController();
    const seen: string[] = [];
    let opened = 0;
    for await (const event of client.events(controller.signal, { onOpen: () => opened++ })) {
      expect(event.type).toBe('challenge');
      seen.push(event.id);
      if (seen.length === 1) api.startChallenge(client.deviceId);
      if (seen.length === 2) controller.abort();
    }
    expect(seen).toEqual([result.testChallengeId, 'challenge-2']);
    expect(opened).toBe(1);
    expect(api.requests.at(-1)!.payload).toMatchObject({ htm: 'GET', htu: '/device/v1/events' });
  });

  it('ends when the server closes the stream, and closes the request when the loop is left', async () => {
    const { api, client } = await paired();
    const iterator = client.events();
    expect((await iterator.next()).value).toMatchObject({ id: 'challenge-1' });
    api.closeStreams();
    expect((await iterator.next()).done).toBe(true);

    const again = client.events();
    await again.next();
    expect(api.openStreams(client.deviceId)).toBe(1);
    await again.return();
    expect(api.openStreams(client.deviceId)).toBe(0);
  });

  it('takes a silent stream as dead', async () => {
    const { api, client } = await paired();
    await client.decide('challenge-1', { decision: 'deny' });
    const error = await refusal((async () => {
      for await (const _ of client.events(undefined, { idleTimeoutMs: 50 })) void _;
    })());
    expect(error).toMatchObject({ code: 'network-error', message: expect.stringContaining('went quiet') });
    expect(api.openStreams(client.deviceId)).toBe(0);
  });

  it('refuses an answer that is not an event stream', async () => {
    const { keyStore } = await paired();
    const client = new AuthenticatorClient({ origin: 'https://id.example.org', deviceId: 'd', keyStore, fetch: async () => Response.json({}) });
    expect((await refusal(client.events().next())).code).toBe('response-invalid');
  });
});

describe('watchChallenges', () => {
  it('reconnects with backoff after failures and closed streams, and yields each challenge once', async () => {
    const { api, client, result } = await paired();
    api.refuseStreams = 2;
    const controller = new AbortController();
    const waits: number[] = [];
    const retries: string[] = [];
    const seen: string[] = [];
    for await (const event of watchChallenges(client, {
      signal: controller.signal,
      random: () => 0.5,
      sleep: async (ms) => void waits.push(ms),
      onRetry: (error) => retries.push((error as AuthenticatorError).code),
      // On the second stream the test challenge is announced again (not yielded twice), then a new one.
      onOpen: () => void (api.streamsOpened === 2 && api.startChallenge(client.deviceId)),
    })) {
      seen.push(event.id);
      if (seen.length === 1) api.closeStreams(); // the server restarts
      if (seen.length === 2) controller.abort();
    }
    expect(seen).toEqual([result.testChallengeId, 'challenge-2']);
    expect(retries).toEqual(['response-invalid', 'response-invalid', 'network-error']);
    // 1 s and 2 s ceilings with jitter at the middle, then back to the first step once a stream opened.
    expect(waits).toEqual([750, 1500, 750]);
  });

  it('waits as long as the server asks (Retry-After) before trying again, and keeps trying while the device is pending', async () => {
    const api = new FakeDeviceApi();
    api.pendingUntilTested = true;
    const { client, result, keyStore } = await paired(api);
    const limited = Response.json({ error: 'rate-limited', message: 'Too many requests.' }, { status: 429, headers: { 'retry-after': '30' } });
    let limitedOnce = false;
    const watched = new AuthenticatorClient({
      origin: client.origin,
      deviceId: client.deviceId,
      keyStore,
      fetch: async (input, init) => {
        if (!limitedOnce) {
          limitedOnce = true;
          return limited;
        }
        return api.fetch(input, init);
      },
    });
    const controller = new AbortController();
    const waits: number[] = [];
    const retries: string[] = [];
    const seen: string[] = [];
    for await (const event of watchChallenges(watched, {
      signal: controller.signal,
      random: () => 0.5,
      sleep: async (ms) => {
        waits.push(ms);
        // The person approves the test request while the app waits.
        if (waits.length === 2) await client.decide(result.testChallengeId, { decision: 'approve', number: '17' });
      },
      onRetry: (error) => retries.push((error as AuthenticatorError).code),
      onOpen: () => void api.startChallenge(client.deviceId),
    })) {
      seen.push(event.id);
      controller.abort();
    }
    expect(retries).toEqual(['rate-limited', 'device-pending']);
    expect(waits).toEqual([30_000, 1500]);
    expect(seen).toEqual(['challenge-2']);
  });

  it('stops at an error that waiting cannot cure', async () => {
    const { client } = await paired();
    await client.remove();
    const error = await refusal((async () => {
      for await (const _ of watchChallenges(client, { sleep: async () => {} })) void _;
    })());
    expect(error.code).toBe('device-unknown');
  });

  it('waits longer each time, up to a ceiling, never less than half of it', () => {
    expect([0, 1, 2, 3, 10].map((n) => backoffDelay(n, {}, () => 0))).toEqual([500, 1000, 2000, 4000, 30_000]);
    expect([0, 1, 2, 3, 10].map((n) => backoffDelay(n, {}, () => 1))).toEqual([1000, 2000, 4000, 8000, 60_000]);
    expect(backoffDelay(100, { initialDelayMs: 10, maxDelayMs: 100 }, () => 1)).toBe(100);
  });

  it.each([
    [new AuthenticatorError('device-unknown', 'x', 401), true],
    [new AuthenticatorError('device-signature-invalid', 'x', 401), true],
    [new AuthenticatorError('device-replay', 'x', 401), false],
    [new AuthenticatorError('rate-limited', 'x', 429), false],
    [new AuthenticatorError('device-pending', 'x', 403), false],
    [new AuthenticatorError('method-last-compliant', 'x', 409), false],
    [new AuthenticatorError('response-invalid', 'x', 503), false],
    [new AuthenticatorError('response-invalid', 'x', 404), true],
    [AuthenticatorError.client('network-error'), false],
    [new Error('x'), false],
  ])('%s is permanent: %s', (error, permanent) => {
    expect(isPermanentError(error)).toBe(permanent);
  });
});

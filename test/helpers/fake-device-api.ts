/**
 * A stand-in for the device API as docs/device-api.md describes it, answering the SDK's `fetch` in
 * memory: it checks every request's JWS with `jose` (signature, typ, ±60 s, one-time jti, htm/htu), so
 * the client is tested against the contract, not against itself. The real server is tested in
 * test/integration/authenticator-cli.test.ts.
 */
import { compactVerify, decodeProtectedHeader, EmbeddedJWK, importJWK, type JWK } from 'jose';

export interface FakeChallenge {
  id: string;
  deviceId: string;
  number: string;
  status: 'pending' | 'approved' | 'denied' | 'reported' | 'expired' | 'wrong-number';
  purpose: 'sign-in' | 'test';
  app: string;
  ip: string | null;
  location: string | null;
  createdAt: string;
  expiresAt: string;
}

export interface FakeDevice {
  id: string;
  /** `pending` until its test request is approved, when the fake is told to keep that rule (`pendingUntilTested`). */
  status: 'pending' | 'active';
  jwk: JWK;
  name: string;
  email: string;
  pushSubscription: unknown;
  createdAt: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

type Answer = { status: number; body: unknown };

const fail = (status: number, error: string, extra: Record<string, unknown> = {}): Answer => ({ status, body: { error, message: `(${error})`, ...extra } });

export class FakeDeviceApi {
  readonly origin: string;
  /** The server's clock (ms). */
  clock: () => number = () => Date.now();
  readonly activationCodes = new Set<string>();
  readonly devices = new Map<string, FakeDevice>();
  readonly challenges: FakeChallenge[] = [];
  readonly requests: RecordedRequest[] = [];
  private readonly jtis = new Set<string>();
  private readonly streams = new Map<string, Set<ReadableStreamDefaultController<Uint8Array>>>();
  private nextDevice = 1;
  private nextChallenge = 1;
  /** How many event stream requests to refuse with a 503 before accepting (for reconnection tests). */
  refuseStreams = 0;
  /**
   * The server's rule for a device whose pairing is not confirmed: until its test request is approved it
   * may only list, read and answer that request (403 device-pending otherwise). Off by default, so that
   * tests of other things need not approve the test request first.
   */
  pendingUntilTested = false;
  /** Devices that are their person's only method meeting the policy: removing one is refused (409). */
  readonly lastCompliant = new Set<string>();
  streamsOpened = 0;

  constructor(origin = 'https://id.example.org') {
    this.origin = origin;
  }

  addActivationCode(): string {
    const code = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64url');
    this.activationCodes.add(code);
    return code;
  }

  pairingUrl(code = this.addActivationCode()): string {
    return `${this.origin}/authenticator/#pair=${code}`;
  }

  startChallenge(deviceId: string, input: Partial<FakeChallenge> = {}): FakeChallenge {
    const now = this.clock();
    const challenge: FakeChallenge = {
      id: `challenge-${this.nextChallenge++}`,
      deviceId,
      number: '42',
      status: 'pending',
      purpose: 'sign-in',
      app: 'Portcullis sign-in',
      ip: '198.51.100.7',
      location: null,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 60_000).toISOString(),
      ...input,
    };
    this.challenges.push(challenge);
    this.emit(deviceId, 'challenge', JSON.stringify({ id: challenge.id }));
    return challenge;
  }

  emit(deviceId: string, event: string, data: string): void {
    for (const controller of this.streams.get(deviceId) ?? []) controller.enqueue(new TextEncoder().encode(`event: ${event}\ndata: ${data}\n\n`));
  }

  /** Ends every open event stream, as a restarting server would. */
  closeStreams(): void {
    for (const set of this.streams.values()) for (const controller of set) controller.close();
    this.streams.clear();
  }

  openStreams(deviceId: string): number {
    return this.streams.get(deviceId)?.size ?? 0;
  }

  fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const url = new URL(input);
    if (url.origin !== this.origin) throw new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } });
    const method = init.method ?? 'GET';
    const authorization = new Headers(init.headers).get('authorization') ?? '';
    if (init.body !== undefined && init.body !== null) return json(fail(400, 'body-not-expected'));
    const answer = await this.handle(method, url.pathname, authorization, init.signal ?? undefined);
    return answer instanceof Response ? answer : json(answer);
  };

  private async verify(method: string, path: string, authorization: string): Promise<{ device: FakeDevice | null; jwk: JWK | null; payload: Record<string, unknown> } | Answer> {
    const match = /^PortcullisDevice (\S+)$/.exec(authorization);
    if (!match) return fail(401, 'device-signature-invalid');
    const jws = match[1]!;
    const header = decodeProtectedHeader(jws) as Record<string, unknown>;
    if (header.alg !== 'ES256' || header.typ !== 'portcullis-device+jwt') return fail(401, 'device-signature-invalid');
    let device: FakeDevice | null = null;
    let payloadBytes: Uint8Array;
    try {
      if (path === '/device/v1/pair') {
        const jwk = header.jwk as Record<string, unknown> | undefined;
        if (!jwk || Object.keys(jwk).sort().join() !== 'crv,kty,x,y' || 'kid' in header) return fail(401, 'device-signature-invalid');
        payloadBytes = (await compactVerify(jws, EmbeddedJWK, { algorithms: ['ES256'] })).payload;
      } else {
        if (typeof header.kid !== 'string' || 'jwk' in header) return fail(401, 'device-signature-invalid');
        device = this.devices.get(header.kid) ?? null;
        if (!device) return fail(401, 'device-unknown');
        payloadBytes = (await compactVerify(jws, await importJWK(device.jwk, 'ES256'), { algorithms: ['ES256'] })).payload;
      }
    } catch {
      return fail(401, 'device-signature-invalid');
    }
    const payload = JSON.parse(new TextDecoder().decode(payloadBytes)) as Record<string, unknown>;
    this.requests.push({ method, path, header, payload });
    const nowSeconds = Math.floor(this.clock() / 1000);
    if (typeof payload.iat !== 'number' || Math.abs(payload.iat - nowSeconds) > 60) return fail(401, 'device-clock-skew', { serverTime: nowSeconds });
    if (payload.htm !== method || payload.htu !== path) return fail(401, 'device-signature-invalid');
    if (typeof payload.jti !== 'string' || !/^[A-Za-z0-9_-]{22,}$/.test(payload.jti)) return fail(401, 'device-signature-invalid');
    if (this.jtis.has(payload.jti)) return fail(401, 'device-replay');
    this.jtis.add(payload.jti);
    return { device, jwk: (header.jwk as JWK | undefined) ?? null, payload };
  }

  private async handle(method: string, path: string, authorization: string, signal: AbortSignal | undefined): Promise<Answer | Response> {
    const verified = await this.verify(method, path, authorization);
    if ('status' in verified) return verified;
    const { payload } = verified;
    if (method === 'POST' && path === '/device/v1/pair') {
      const code = payload.activationCode;
      if (typeof code !== 'string' || !this.activationCodes.delete(code)) return fail(410, 'activation-code-invalid');
      const device: FakeDevice = { id: `device-${this.nextDevice++}`, status: this.pendingUntilTested ? 'pending' : 'active', jwk: verified.jwk!, name: String(payload.name), email: 'alice@example.org', pushSubscription: payload.pushSubscription ?? null, createdAt: new Date(this.clock()).toISOString() };
      this.devices.set(device.id, device);
      const test = this.startChallenge(device.id, { purpose: 'test', app: 'Set-up check', number: '17' });
      return { status: 201, body: { deviceId: device.id, account: { email: device.email, organisation: 'Test Trust' }, server: { origin: this.origin, name: 'Portcullis' }, testChallengeId: test.id } };
    }
    const device = verified.device!;
    const view = (c: FakeChallenge) => ({
      id: c.id,
      status: c.status,
      purpose: c.purpose,
      account: { email: device.email },
      app: c.app,
      ip: c.ip,
      location: c.location,
      createdAt: c.createdAt,
      expiresAt: c.expiresAt,
      numberLength: c.number.length,
    });
    const pending = device.status === 'pending';
    if (method === 'GET' && path === '/device/v1/challenges') {
      const listed = this.challenges.filter((c) => c.deviceId === device.id && c.status === 'pending' && (!pending || c.purpose === 'test'));
      return { status: 200, body: { challenges: listed.reverse().map(view) } };
    }
    const one = /^\/device\/v1\/challenges\/([^/]+)(\/decision)?$/.exec(path);
    if (one) {
      const challenge = this.challenges.find((c) => c.id === decodeURIComponent(one[1]!) && c.deviceId === device.id);
      if (!challenge) return fail(404, 'challenge-not-found');
      if (pending && challenge.purpose !== 'test') return fail(403, 'device-pending');
      if (method === 'GET' && !one[2]) return { status: 200, body: view(challenge) };
      if (method === 'POST' && one[2]) {
        if (challenge.status !== 'pending') return fail(409, 'challenge-decided');
        if (payload.decision === 'approve') {
          if (payload.number !== challenge.number) {
            challenge.status = 'wrong-number';
            return fail(400, 'wrong-number');
          }
          challenge.status = 'approved';
          if (challenge.purpose === 'test') device.status = 'active';
        } else if (payload.decision === 'deny') challenge.status = 'denied';
        else if (payload.decision === 'report') challenge.status = 'reported';
        else return fail(400, 'request-invalid');
        return { status: 200, body: { status: challenge.status } };
      }
    }
    if (pending) return fail(403, 'device-pending');
    if (method === 'GET' && path === '/device/v1/devices') {
      const devices = [...this.devices.values()].filter((d) => d.email === device.email);
      return { status: 200, body: { devices: devices.map((d) => ({ id: d.id, name: d.name, createdAt: d.createdAt, lastUsedAt: null, current: d.id === device.id })) } };
    }
    if (method === 'POST' && path === '/device/v1/device/name') {
      device.name = String(payload.name);
      return { status: 200, body: { id: device.id, name: device.name } };
    }
    if (method === 'POST' && path === '/device/v1/device/remove') {
      if (this.lastCompliant.has(device.id)) {
        const reason = 'It is your only sign-in method that meets “Those with elevated rights must use push notifications” (from 30 November 2023). Add another one that does first.';
        return { status: 409, body: { error: 'method-last-compliant', message: `You cannot delete App based authentication – notification – ${device.name}. ${reason}`, reason } };
      }
      this.devices.delete(device.id);
      return { status: 200, body: { removed: true } };
    }
    if (method === 'POST' && path === '/device/v1/push-subscription') {
      device.pushSubscription = payload.pushSubscription;
      return { status: 200, body: { ok: true } };
    }
    if (method === 'GET' && path === '/device/v1/events') {
      if (this.refuseStreams > 0) {
        this.refuseStreams--;
        return { status: 503, body: 'busy' };
      }
      this.streamsOpened++;
      const streams = this.streams;
      const pending = this.challenges.filter((c) => c.deviceId === device.id && c.status === 'pending');
      let self: ReadableStreamDefaultController<Uint8Array>;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          self = controller;
          const set = streams.get(device.id) ?? new Set();
          set.add(controller);
          streams.set(device.id, set);
          controller.enqueue(new TextEncoder().encode(': open\n\n'));
          for (const c of pending) controller.enqueue(new TextEncoder().encode(`event: challenge\ndata: ${JSON.stringify({ id: c.id })}\n\n`));
        },
        cancel() {
          streams.get(device.id)?.delete(self);
        },
      });
      signal?.addEventListener('abort', () => {
        streams.get(device.id)?.delete(self);
        try {
          self.error(new DOMException('aborted', 'AbortError'));
        } catch {
          // already closed
        }
      });
      return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream; charset=utf-8' } });
    }
    return fail(404, 'not-found');
  }
}

function json(answer: Answer): Response {
  return new Response(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body), {
    status: answer.status,
    headers: { 'content-type': typeof answer.body === 'string' ? 'text/plain' : 'application/json' },
  });
}

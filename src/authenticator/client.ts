/**
 * The client of the device API (docs/device-api.md), shared by the PWA and the CLI authenticator. It
 * runs in browsers and in Node 20 alike: only `fetch`, `crypto.subtle` and `TextEncoder`.
 *
 * Every request is signed afresh (a new `jti` each time, RFC 9449-style `htm`/`htu` binding) and carries
 * its fields in the JWS payload, never in a body.
 */
import { AuthenticatorError } from './errors.js';
import { exportPublicJwk, generateDeviceKey, type DeviceKeyStore, type PublicJwk } from './device-key.js';
import { authorizationHeader, signDeviceRequest } from './jws.js';
import { EventStreamParser } from './sse.js';

export const API_PREFIX = '/device/v1';
/** The device name the server accepts: 1 to 60 characters once trimmed. */
export const DEVICE_NAME_MAX = 60;
/** A request that has had no answer in this long is abandoned. */
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * The server writes a comment every 25 s; a stream silent for this long is taken as dead (a sleeping
 * laptop, a proxy that dropped it without closing) and closed, so the caller can reconnect.
 */
const EVENT_STREAM_IDLE_MS = 75_000;

// ── The contract's shapes ───────────────────────────────────────────────────────────────────────────

/** A Web Push subscription as `PushSubscription.toJSON()` gives it (W3C Push API). */
export interface PushSubscriptionJson {
  endpoint: string;
  expirationTime?: number | null;
  keys: { p256dh: string; auth: string };
}

/**
 * The statuses of docs/device-api.md, and `used` (approved, then consumed by the sign-in it was for),
 * which the server also sends. A status this client does not know is passed through as it came, so a
 * newer server does not break an older app: treat anything but `pending` as "no longer waiting".
 */
export type KnownChallengeStatus = 'pending' | 'approved' | 'denied' | 'reported' | 'expired' | 'wrong-number' | 'used';
export type ChallengeStatus = KnownChallengeStatus | (string & {});

export interface Challenge {
  id: string;
  status: ChallengeStatus;
  /** `test` is the set-up check that follows pairing. */
  purpose: 'sign-in' | 'test';
  account: { email: string };
  /** The application being signed in to. */
  app: string;
  /** The address the sign-in came from. */
  ip: string | null;
  /** A coarse location for that address, when the server can tell. */
  location: string | null;
  createdAt: string;
  expiresAt: string;
  /** How many digits the user must type (the number itself is never sent to the device). */
  numberLength: number;
}

export interface PairingResult {
  deviceId: string;
  account: { email: string; organisation: string };
  /** What the server says of itself; the client talks to the origin of the pairing link regardless. */
  server: { origin: string; name: string };
  testChallengeId: string;
}

export interface DeviceInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  /** true for the device making the request. */
  current: boolean;
}

export type Decision = 'approve' | 'deny' | 'report';

export interface DecisionInput {
  decision: Decision;
  /** The digits the user typed; required to approve. Sent as a string, so leading zeros survive. */
  number?: string;
}

/** An event from `GET /device/v1/events`. */
export interface DeviceEvent {
  type: 'challenge';
  id: string;
}

// ── Pairing links ───────────────────────────────────────────────────────────────────────────────────

export interface PairingLink {
  /** The server's origin, e.g. `https://id.example.org`. */
  origin: string;
  activationCode: string;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '127.0.0.1' || hostname === '[::1]';
}

/**
 * Reads `{PUBLIC_URL}/authenticator/#pair={activation code}`. The code travels in the fragment so that
 * it never reaches a server log; the link must be https (http only for localhost, for development),
 * since whoever serves it receives the new device's requests.
 */
export function parsePairingUrl(input: string): PairingLink {
  let url: URL;
  try {
    url = new URL(input.trim());
  } catch {
    throw AuthenticatorError.client('pairing-url-invalid');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw AuthenticatorError.client('pairing-url-invalid');
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) throw AuthenticatorError.client('pairing-url-insecure');
  if (url.username || url.password) throw AuthenticatorError.client('pairing-url-invalid');
  // The server makes 16 random bytes (22 base64url characters); allow longer codes from later servers.
  const match = /^#pair=([A-Za-z0-9_-]{22,128})$/.exec(url.hash);
  if (!match) throw AuthenticatorError.client('pairing-url-invalid');
  return { origin: url.origin, activationCode: match[1]! };
}

/** Checks a device name as the server will (1–60 characters once trimmed) and returns it trimmed. */
export function checkDeviceName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length < 1 || trimmed.length > DEVICE_NAME_MAX) throw AuthenticatorError.client('device-name-invalid');
  return trimmed;
}

// ── Answers from the server, checked by hand (no schema library in the browser bundle) ──────────────

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const isString = (value: unknown): value is string => typeof value === 'string';
const isStringOrNull = (value: unknown): value is string | null => value === null || typeof value === 'string';

function invalid(what: string): AuthenticatorError {
  return AuthenticatorError.client('response-invalid', `(${what})`);
}

function asChallenge(value: unknown): Challenge {
  if (
    !isObject(value) ||
    !isString(value.id) ||
    !isString(value.status) ||
    (value.purpose !== 'sign-in' && value.purpose !== 'test') ||
    !isObject(value.account) ||
    !isString(value.account.email) ||
    !isString(value.app) ||
    !isStringOrNull(value.ip ?? null) ||
    !isStringOrNull(value.location ?? null) ||
    !isString(value.createdAt) ||
    !isString(value.expiresAt) ||
    typeof value.numberLength !== 'number'
  ) {
    throw invalid('challenge');
  }
  return {
    id: value.id,
    status: value.status,
    purpose: value.purpose,
    account: { email: value.account.email },
    app: value.app,
    ip: (value.ip as string | null | undefined) ?? null,
    location: (value.location as string | null | undefined) ?? null,
    createdAt: value.createdAt,
    expiresAt: value.expiresAt,
    numberLength: value.numberLength,
  };
}

function asPairingResult(value: unknown): PairingResult {
  if (
    !isObject(value) ||
    !isString(value.deviceId) ||
    !isObject(value.account) ||
    !isString(value.account.email) ||
    !isObject(value.server) ||
    !isString(value.testChallengeId)
  ) {
    throw invalid('pairing');
  }
  return {
    deviceId: value.deviceId,
    account: { email: value.account.email, organisation: isString(value.account.organisation) ? value.account.organisation : '' },
    server: { origin: isString(value.server.origin) ? value.server.origin : '', name: isString(value.server.name) ? value.server.name : '' },
    testChallengeId: value.testChallengeId,
  };
}

function asDevice(value: unknown): DeviceInfo {
  if (!isObject(value) || !isString(value.id) || !isString(value.name) || !isString(value.createdAt) || !isStringOrNull(value.lastUsedAt ?? null)) throw invalid('device');
  return { id: value.id, name: value.name, createdAt: value.createdAt, lastUsedAt: (value.lastUsedAt as string | null | undefined) ?? null, current: value.current === true };
}

/** The contract gives `serverTime` without a unit: read seconds, milliseconds or an ISO 8601 string. */
export function serverTimeToMs(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value < 1e11 ? value * 1000 : value;
  if (typeof value === 'string') {
    const parsed = /^\d+$/.test(value) ? serverTimeToMs(Number(value)) : Date.parse(value);
    return parsed !== undefined && Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}

/** `Retry-After` (RFC 9110 §10.2.3): whole seconds, or an HTTP date; undefined when absent or unreadable. */
export function retryAfterToMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

// ── Transport ───────────────────────────────────────────────────────────────────────────────────────

export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

export interface TransportOptions {
  /** `fetch` to use; the global one by default. */
  fetch?: FetchFunction;
  /** The local clock, milliseconds since the epoch; `Date.now` by default. */
  clock?: () => number;
  /**
   * A known difference between the server's clock and this one (server − local, milliseconds), learnt
   * from an earlier `device-clock-skew` answer; the client updates it itself when it learns one.
   */
  clockOffsetMs?: number;
}

/** The key a request is signed with: a paired device's (`kid`), or a new one being paired (`jwk`). */
interface SigningKey {
  privateKey: CryptoKey;
  kid?: string;
  jwk?: PublicJwk;
}

interface SignedRequest {
  method: 'GET' | 'POST';
  path: string;
  fields?: Record<string, unknown>;
  accept?: string;
  signal?: AbortSignal;
  /** false for the event stream, which lives as long as the caller wants. */
  timeout?: boolean;
}

/** Aborts when the caller's signal does, or after `timeoutMs` (AbortSignal.any is too new for some phones). */
function linkedController(signal: AbortSignal | undefined, timeoutMs: number | null): { controller: AbortController; dispose(): void; timedOut(): boolean } {
  const controller = new AbortController();
  let timedOut = false;
  const onAbort = () => controller.abort(signal?.reason);
  if (signal?.aborted) controller.abort(signal.reason);
  else signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    timeoutMs === null
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs);
  return {
    controller,
    dispose() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
    timedOut: () => timedOut,
  };
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return (error as Error)?.message ?? String(error);
}

function isAbort(error: unknown): boolean {
  return (error as { name?: unknown })?.name === 'AbortError';
}

async function errorFrom(response: Response): Promise<AuthenticatorError> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  if (isObject(body) && isString(body.error)) {
    const message = isString(body.message) ? body.message : body.error;
    const serverTimeMs = serverTimeToMs(body.serverTime);
    const retryAfterMs = retryAfterToMs(response.headers.get('retry-after'), Date.now());
    return new AuthenticatorError(body.error, message, response.status, {
      ...(serverTimeMs !== undefined ? { serverTimeMs } : {}),
      ...(isString(body.field) ? { field: body.field } : {}),
      ...(isString(body.reason) ? { reason: body.reason } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  return new AuthenticatorError('response-invalid', `The server answered ${response.status} ${response.statusText}`.trim(), response.status);
}

/** Signs and sends device requests for one key (a paired device, or a key being paired). */
class Transport {
  private readonly fetchFn: FetchFunction;
  private readonly clock: () => number;
  clockOffsetMs: number;

  constructor(
    readonly origin: string,
    options: TransportOptions,
  ) {
    // Bound, because a browser's fetch called as a method of another object throws "Illegal invocation".
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.clock = options.clock ?? (() => Date.now());
    this.clockOffsetMs = options.clockOffsetMs ?? 0;
  }

  /**
   * Sends a signed request and returns the successful response. On `device-clock-skew` it learns the
   * offset from the server's `serverTime` and tries once more with a new signature.
   */
  async send(request: SignedRequest, key: SigningKey): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const jws = await signDeviceRequest({ privateKey: key.privateKey, kid: key.kid, jwk: key.jwk, method: request.method, path: request.path, fields: request.fields, now: this.clock() + this.clockOffsetMs });
      const response = await this.fetch(request, jws);
      if (response.ok) return response;
      const error = await errorFrom(response);
      if (error.code === 'device-clock-skew' && error.serverTimeMs !== undefined && attempt === 0) {
        this.clockOffsetMs = error.serverTimeMs - this.clock();
        continue;
      }
      throw error;
    }
  }

  private async fetch(request: SignedRequest, jws: string): Promise<Response> {
    // The event stream's signal is passed straight through (its watchdog is the caller's); other
    // requests are abandoned if no answer comes in time.
    const link = request.timeout === false ? null : linkedController(request.signal, REQUEST_TIMEOUT_MS);
    try {
      return await this.fetchFn(`${this.origin}${request.path}`, {
        method: request.method,
        headers: { authorization: authorizationHeader(jws), accept: request.accept ?? 'application/json' },
        // Answers depend on who asks and when; never from a cache.
        cache: 'no-store',
        credentials: 'omit',
        redirect: 'error',
        signal: link ? link.controller.signal : (request.signal ?? null),
      });
    } catch (error) {
      if (link?.timedOut()) throw AuthenticatorError.client('network-error', `(${this.origin} did not answer in ${REQUEST_TIMEOUT_MS / 1000} seconds)`);
      if (isAbort(error)) throw error;
      throw AuthenticatorError.client('network-error', `(${this.origin}: ${describeNetworkError(error)})`);
    } finally {
      link?.dispose();
    }
  }

  async json(request: SignedRequest, key: SigningKey): Promise<unknown> {
    const response = await this.send(request, key);
    try {
      return await response.json();
    } catch {
      throw invalid('not JSON');
    }
  }
}

// ── The client ──────────────────────────────────────────────────────────────────────────────────────

export interface ClientOptions extends TransportOptions {
  /** The server's origin, from the pairing link. */
  origin: string;
  deviceId: string;
  keyStore: DeviceKeyStore;
}

export interface PairOptions extends TransportOptions {
  /** The pairing link from Security info (`…/authenticator/#pair=…`). */
  url: string;
  /** The device's name as the user will see it on Security info (1–60 characters). */
  name: string;
  /** Where the new key pair is kept once the server has accepted it. */
  keyStore: DeviceKeyStore;
  pushSubscription?: PushSubscriptionJson | null;
  /** false (the default) for browsers; true for the CLI, which writes the private key to its store file. */
  extractable?: boolean;
}

export interface Paired {
  client: AuthenticatorClient;
  result: PairingResult;
}

export interface EventsOptions {
  /** Called once the server has accepted the stream (a caller's backoff can reset then). */
  onOpen?: () => void;
  /** How long a silent stream is kept before it is taken as dead (default 75 s; the server writes every 25 s). */
  idleTimeoutMs?: number;
}

export class AuthenticatorClient {
  readonly origin: string;
  readonly deviceId: string;
  private readonly keyStore: DeviceKeyStore;
  private readonly transport: Transport;

  constructor(options: ClientOptions) {
    this.origin = new URL(options.origin).origin;
    this.deviceId = options.deviceId;
    this.keyStore = options.keyStore;
    this.transport = new Transport(this.origin, options);
  }

  /**
   * Pairs a new key with the account whose Security info page showed the link: makes an ECDSA P-256
   * key pair, proves possession by signing the pairing request with it (the public key rides in the
   * JWS header as `jwk`), and saves the pair once the server has accepted it. The server then waits for
   * the test request (`result.testChallengeId`) to be approved with the number on that page.
   */
  static async pair(options: PairOptions): Promise<Paired> {
    const link = parsePairingUrl(options.url);
    const name = checkDeviceName(options.name);
    const pair = await generateDeviceKey({ extractable: options.extractable ?? false });
    const jwk = await exportPublicJwk(pair.publicKey);
    const transport = new Transport(link.origin, options);
    const fields: Record<string, unknown> = { activationCode: link.activationCode, name };
    if (options.pushSubscription) fields.pushSubscription = options.pushSubscription;
    const result = asPairingResult(await transport.json({ method: 'POST', path: `${API_PREFIX}/pair`, fields }, { privateKey: pair.privateKey, jwk }));
    await options.keyStore.save(pair);
    const client = new AuthenticatorClient({ ...options, origin: link.origin, deviceId: result.deviceId, clockOffsetMs: transport.clockOffsetMs });
    return { client, result };
  }

  /** The offset (server − local, ms) learnt from the server; keep it with the account if you like. */
  get clockOffsetMs(): number {
    return this.transport.clockOffsetMs;
  }

  private async key(): Promise<SigningKey> {
    const pair = await this.keyStore.load();
    if (!pair) throw AuthenticatorError.client('device-key-missing');
    return { privateKey: pair.privateKey, kid: this.deviceId };
  }

  private async call(method: 'GET' | 'POST', path: string, fields?: Record<string, unknown>): Promise<unknown> {
    return this.transport.json({ method, path: `${API_PREFIX}${path}`, fields }, await this.key());
  }

  /** The challenges waiting for this device, newest first (polling, for when no push arrives). */
  async pendingChallenges(): Promise<Challenge[]> {
    const body = await this.call('GET', '/challenges');
    if (!isObject(body) || !Array.isArray(body.challenges)) throw invalid('challenges');
    return body.challenges.map(asChallenge);
  }

  async challenge(id: string): Promise<Challenge> {
    return asChallenge(await this.call('GET', `/challenges/${encodeURIComponent(id)}`));
  }

  /**
   * Approve (with the number the user typed), deny, or report ("No, it's not me"). A wrong number ends
   * the challenge on the server, which answers `wrong-number`.
   */
  async decide(id: string, input: DecisionInput): Promise<{ status: ChallengeStatus }> {
    const fields: Record<string, unknown> = { decision: input.decision };
    if (input.decision === 'approve' || input.number !== undefined) {
      const number = (input.number ?? '').replace(/\s+/g, '');
      if (!/^\d{1,10}$/.test(number)) throw AuthenticatorError.client('number-invalid');
      fields.number = number;
    }
    if (input.decision !== 'approve' && input.decision !== 'deny' && input.decision !== 'report') throw new TypeError('decision must be approve, deny or report');
    const body = await this.call('POST', `/challenges/${encodeURIComponent(id)}/decision`, fields);
    if (!isObject(body) || !isString(body.status)) throw invalid('decision');
    return { status: body.status };
  }

  /** The user's authenticator devices; `current` marks this one. */
  async devices(): Promise<DeviceInfo[]> {
    const body = await this.call('GET', '/devices');
    if (!isObject(body) || !Array.isArray(body.devices)) throw invalid('devices');
    return body.devices.map(asDevice);
  }

  async rename(name: string): Promise<{ id: string; name: string }> {
    const body = await this.call('POST', '/device/name', { name: checkDeviceName(name) });
    if (!isObject(body) || !isString(body.id) || !isString(body.name)) throw invalid('rename');
    return { id: body.id, name: body.name };
  }

  /**
   * Removes this device from the account (the user is emailed). Forget the account afterwards. Refused
   * with `method-last-compliant` (409; see `isRemovalRefused`) when this device is the person's only
   * sign-in method meeting their organisation's policy: nothing changes, on the server or here.
   */
  async remove(): Promise<void> {
    const body = await this.call('POST', '/device/remove');
    if (!isObject(body) || body.removed !== true) throw invalid('remove');
  }

  /** Gives the server this device's Web Push subscription, or takes it away with null. */
  async setPushSubscription(subscription: PushSubscriptionJson | null): Promise<void> {
    await this.call('POST', '/push-subscription', { pushSubscription: subscription });
  }

  /**
   * The device's live event stream: yields `{ type: 'challenge', id }` as challenges start (and, on
   * opening, for those already waiting — so expect repeats after a reconnection). Read with `fetch`,
   * because EventSource cannot send the Authorization header. It ends when the server closes the
   * stream, throws when it cannot be opened or goes silent, and returns quietly when `signal` aborts.
   * Reconnecting is the caller's choice: see `watchChallenges`.
   */
  async *events(signal?: AbortSignal, options: EventsOptions = {}): AsyncGenerator<DeviceEvent, void, undefined> {
    if (signal?.aborted) return;
    const idleMs = options.idleTimeoutMs ?? EVENT_STREAM_IDLE_MS;
    // One controller for the whole stream: the caller's abort, the idle watchdog, or leaving the loop.
    const stream = new AbortController();
    const onAbort = () => stream.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let idle = false;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const feedWatchdog = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        idle = true;
        stream.abort();
      }, idleMs);
    };
    try {
      let response: Response;
      // The watchdog also bounds the wait for the server to answer at all.
      feedWatchdog();
      try {
        response = await this.transport.send({ method: 'GET', path: `${API_PREFIX}/events`, accept: 'text/event-stream', signal: stream.signal, timeout: false }, await this.key());
      } catch (error) {
        if (signal?.aborted) return;
        if (idle) throw AuthenticatorError.client('network-error', `(${this.origin} did not open the event stream)`);
        throw error;
      }
      if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream') || !response.body) {
        await response.body?.cancel().catch(() => {});
        throw invalid('not an event stream');
      }
      options.onOpen?.();
      feedWatchdog();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      const parser = new EventStreamParser();
      try {
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (error) {
            if (signal?.aborted) return;
            if (idle) throw AuthenticatorError.client('network-error', `(the event stream from ${this.origin} went quiet)`);
            throw AuthenticatorError.client('network-error', `(${this.origin}: ${describeNetworkError(error)})`);
          }
          if (chunk.done) {
            for (const event of parser.end()) yield* toDeviceEvents(event.event, event.data);
            return;
          }
          feedWatchdog();
          for (const event of parser.feed(decoder.decode(chunk.value, { stream: true }))) yield* toDeviceEvents(event.event, event.data);
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    } finally {
      clearTimeout(watchdog);
      signal?.removeEventListener('abort', onAbort);
      stream.abort();
    }
  }
}

function* toDeviceEvents(event: string, data: string): Generator<DeviceEvent> {
  if (event !== 'challenge') return; // later servers may send other events; this client ignores them
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return;
  }
  if (isObject(parsed) && isString(parsed.id)) yield { type: 'challenge', id: parsed.id };
}

/** Pairs a new device: the same as `AuthenticatorClient.pair`. */
export function pair(options: PairOptions): Promise<Paired> {
  return AuthenticatorClient.pair(options);
}

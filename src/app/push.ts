/**
 * Push with number matching (docs/device-api.md): pairing a device from Security info, verifying the
 * device's signed requests, sending challenges (Web Push, the device's event stream, and polling),
 * recording decisions, and what a fraud report does.
 */
import { createHash, randomUUID } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { PortcullisError } from '../core/errors.js';
import { describeDuration } from '../core/duration.js';
import { labelMethod, methodDefinitions } from '../core/methods/registry.js';
import {
  checkRequestTime,
  decidePush,
  decidePushStart,
  deviceMay,
  deviceRequestWindow,
  isWellFormedId,
  numberDigitsFor,
  numberFromRandom,
  readDecision,
  readDeviceName,
  type DeviceAction,
  type PushSettings,
} from '../core/methods/push.js';
import { openText, sealText } from '../crypto/seal.js';
import { randomToken, secureRandomBytes } from '../crypto/tokens.js';
import { deriveVapidKeys, isPushSubscription, sendChallengePush, type PushSubscriptionJson, type VapidKeys } from '../channels/web-push.js';
import type { DeviceRow, MethodRow, PushChallengeRow, UserRow } from '../store/schema.js';
import { isLocalHostname } from '../config/load.js';
import type { AppContext } from './context.js';
import { notifyUser } from './notifications.js';
import { evaluateUser } from './policy.js';
import { removeMethod } from './method-removal.js';
import { signOutOfApplications } from './oidc/sign-out.js';
import { recordSecondFactorFailure } from './sign-in.js';

/** How long a pairing code shown on Security info stays usable (DESIGN.md: 10 minutes). */
export const PAIRING_SECONDS = 10 * 60;
/** The `typ` of device request JWSs. */
export const DEVICE_JWS_TYPE = 'portcullis-device+jwt';
/** How long a `jti` is remembered: longer than the ±60 s window in which its `iat` is accepted. */
const JTI_MEMORY_SECONDS = 180;
const ACTIVATION_CODE_BYTES = 16;
/** How long starting a push may hold the user's lease: a read, an insert and handing it to the bus. */
const PUSH_START_LEASE_SECONDS = 10;

export const busTopics = {
  /** A decision on a challenge: the sign-in page waiting on it looks again. */
  challenge: (challengeId: string) => `push:${challengeId}`,
  /** A new challenge for a device: its open event stream tells the app. */
  device: (methodId: string) => `device:${methodId}`,
  /** A device paired, or its test challenge was answered: the Security info page looks again. */
  enrolment: (enrolmentId: string) => `enrolment:${enrolmentId}`,
};

let vapidCache: { seed: Uint8Array; keys: VapidKeys } | undefined;

export function vapidKeys(ctx: AppContext): VapidKeys {
  if (vapidCache?.seed !== ctx.keys.vapidSeed) vapidCache = { seed: ctx.keys.vapidSeed, keys: deriveVapidKeys(ctx.keys.vapidSeed) };
  return vapidCache.keys;
}

function acceptsSubscription(ctx: AppContext, value: unknown): value is PushSubscriptionJson {
  return isPushSubscription(value, ctx.config.push.serviceHosts, isLocalHostname(ctx.config.publicUrl.hostname));
}

function pushSettings(ctx: AppContext): PushSettings {
  return ctx.config.push;
}

function hashCode(code: string): string {
  return createHash('sha256').update(code).digest('hex');
}

function randomBelow(limit: number): number {
  // Rejection sampling over 32-bit values: no modulo bias.
  const ceiling = Math.floor(0x1_0000_0000 / limit) * limit;
  for (;;) {
    const value = secureRandomBytes(4).readUInt32BE(0);
    if (value < ceiling) return value % limit;
  }
}

// ── Pairing ─────────────────────────────────────────────────────────────────────────────────────────

export interface PairingStart {
  enrolmentId: string;
  /** `{PUBLIC_URL}/authenticator/#pair={code}`: shown once as a QR code and a link; the code is kept only hashed. */
  url: string;
  expiresAt: Date;
}

export async function startPairing(ctx: AppContext, user: UserRow): Promise<PairingStart> {
  if ((await ctx.store.methods.countActive(user.id, 'push')) >= methodDefinitions.push.maxPerUser) {
    throw new PortcullisError('method-limit', { max: methodDefinitions.push.maxPerUser });
  }
  const code = randomToken(ACTIVATION_CODE_BYTES);
  const id = randomUUID();
  const now = ctx.clock();
  const expiresAt = new Date(now.getTime() + PAIRING_SECONDS * 1000);
  await ctx.store.push.insertEnrolment({ id, userId: user.id, codeHash: hashCode(code), now, expiresAt });
  const url = new URL('/authenticator/', ctx.config.publicUrl);
  url.hash = `pair=${code}`;
  return { enrolmentId: id, url: url.toString(), expiresAt };
}

export interface PairingStatus {
  state: 'waiting' | 'paired' | 'approved' | 'refused' | 'expired';
  /** Once paired: the number to type into the app for the test request. */
  number?: string;
  methodId?: string;
  testChallengeId?: string;
}

export async function pairingStatus(ctx: AppContext, user: UserRow, enrolmentId: string): Promise<PairingStatus> {
  const enrolment = await ctx.store.push.findEnrolment(enrolmentId, user.id);
  const now = ctx.clock();
  if (!enrolment) return { state: 'expired' };
  if (!enrolment.method_id || !enrolment.test_challenge_id) {
    return { state: Date.parse(enrolment.expires_at) <= now.getTime() ? 'expired' : 'waiting' };
  }
  const challenge = await ctx.store.push.findChallenge(enrolment.test_challenge_id);
  const method = await ctx.store.methods.find(enrolment.method_id);
  if (method?.status === 'active') return { state: 'approved', methodId: method.id, testChallengeId: enrolment.test_challenge_id };
  if (!challenge || challenge.status === 'expired' || (challenge.status === 'pending' && Date.parse(challenge.expires_at) <= now.getTime())) {
    return { state: 'expired' };
  }
  // Approved but not active yet: the decision is being recorded (decideChallenge activates the method
  // next, then tells the Security info page). Still "paired", so that page keeps listening instead of
  // saying the set-up failed.
  if (challenge.status === 'approved') return { state: 'paired', number: challenge.number, methodId: enrolment.method_id };
  if (challenge.status !== 'pending') return { state: 'refused' };
  return { state: 'paired', number: challenge.number, methodId: enrolment.method_id };
}

// ── Signed device requests ──────────────────────────────────────────────────────────────────────────

export interface DeviceRequest {
  authorization: string | undefined;
  method: string;
  path: string;
  ip: string;
}

export interface VerifiedDevice {
  device: DeviceRow;
  method: MethodRow;
  user: UserRow;
  claims: Record<string, unknown>;
}

const AUTH_SCHEME = /^PortcullisDevice ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;

/**
 * Checks a device JWS: signature, time, method and path, one-time `jti`. `admit`, when given, runs
 * once the signature and binding hold and before the `jti` is recorded or any work is done (the
 * request allowance: only the key's holder can use it up).
 */
async function verifyJws(
  ctx: AppContext,
  request: DeviceRequest,
  key: CryptoKey | Uint8Array,
  jws: string,
  kid: string,
  admit?: () => Promise<void>,
): Promise<Record<string, unknown>> {
  let payload: Record<string, unknown>;
  try {
    const verified = await compactVerify(jws, key, { algorithms: ['ES256'] });
    payload = JSON.parse(new TextDecoder().decode(verified.payload)) as Record<string, unknown>;
  } catch {
    throw new PortcullisError('device-signature-invalid');
  }
  if (typeof payload !== 'object' || payload === null) throw new PortcullisError('device-signature-invalid');
  const now = ctx.clock();
  const time = checkRequestTime(payload.iat, now);
  if (time !== 'ok') throw new PortcullisError(time === 'missing' ? 'device-signature-invalid' : 'device-clock-skew');
  // DPoP-style binding (RFC 9449 §4.2): the signature is for this method and path only.
  if (payload.htm !== request.method || payload.htu !== request.path) throw new PortcullisError('device-signature-invalid');
  const jti = payload.jti;
  if (typeof jti !== 'string' || !/^[A-Za-z0-9_-]{22,128}$/.test(jti)) throw new PortcullisError('device-signature-invalid');
  await admit?.();
  const seen = await ctx.throttles.increment(`device-jti:${kid}:${jti}`, now, new Date(now.getTime() + JTI_MEMORY_SECONDS * 1000));
  if (seen > 1) throw new PortcullisError('device-replay');
  return payload;
}

function jwsOf(request: DeviceRequest): { jws: string; header: ReturnType<typeof decodeProtectedHeader> } {
  const match = AUTH_SCHEME.exec(request.authorization ?? '');
  if (!match) throw new PortcullisError('device-signature-invalid');
  const jws = match[1]!;
  let header;
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    throw new PortcullisError('device-signature-invalid');
  }
  if (header.alg !== 'ES256' || header.typ !== DEVICE_JWS_TYPE) throw new PortcullisError('device-signature-invalid');
  return { jws, header };
}

/**
 * Verifies a request from a paired device: its signature, time, one-time jti, method and path, its
 * place within the request allowance, and that the device may do `action` (a device whose pairing is
 * not confirmed may only answer its test request). The actions on one challenge depend on what the
 * challenge is for, so `challengeForDevice` and `decideChallenge` decide those.
 */
export async function verifyDeviceRequest(ctx: AppContext, request: DeviceRequest, action: DeviceAction): Promise<VerifiedDevice> {
  const { jws, header } = jwsOf(request);
  if (!isWellFormedId(header.kid)) throw new PortcullisError('device-signature-invalid', { field: 'kid' });
  const device = await ctx.store.push.findDevice(header.kid);
  if (!device) throw new PortcullisError('device-unknown');
  const key = await importJWK(JSON.parse(device.public_jwk) as JWK, 'ES256');
  const claims = await verifyJws(ctx, request, key, jws, device.id, () => admitDeviceRequest(ctx, device.id));
  const [method, user] = await Promise.all([ctx.store.methods.find(device.id), ctx.store.users.findById(device.user_id)]);
  if (!method || !user || user.status !== 'active') throw new PortcullisError('device-unknown');
  const verified = { device, method, user, claims };
  if (action !== 'read-challenge' && action !== 'decide-challenge') assertDeviceMay(verified, action);
  await ctx.store.push.touchDevice(device.id, ctx.clock());
  return verified;
}

function assertDeviceMay(verified: VerifiedDevice, action: DeviceAction, challenge?: PushChallengeRow): void {
  if (!deviceMay(verified.method.status, action, challenge?.purpose)) throw new PortcullisError('device-pending');
}

/**
 * The device API's request allowance (DEVICE_API_REQUESTS_PER_MINUTE, docs/device-api.md "Limits"):
 * one counter per device and clock minute in the shared throttle store (the database, or Redis), so
 * it holds across nodes. It is incremented first and compared after — one atomic step — so requests
 * arriving together cannot all slip under it; over it, the request is refused before its work.
 */
async function admitDeviceRequest(ctx: AppContext, deviceId: string): Promise<void> {
  const now = ctx.clock();
  const window = deviceRequestWindow(now);
  const count = await ctx.throttles.increment(`device-requests:${deviceId}:${window.key}`, now, window.endsAt);
  if (count > ctx.config.push.deviceRequestsPerMinute) throw new PortcullisError('rate-limited', { retryAfterSeconds: window.retryAfterSeconds });
}

/** The pairing key from the JWS header: a P-256 public key as a JWK of `kty`, `crv`, `x` and `y` only. */
async function pairingKeyOf(value: unknown): Promise<{ jwk: JWK; key: CryptoKey | Uint8Array }> {
  const refused = () => new PortcullisError('device-signature-invalid', { field: 'jwk' });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw refused();
  const jwk = value as JWK;
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string' || 'd' in jwk) throw refused();
  const publicJwk: JWK = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
  try {
    // WebCrypto's import validates the public key (SEC 1 §3.2.2: coordinates of the right size, a point
    // on P-256), so a key that is not one is refused here rather than failing later as a 500.
    return { jwk: publicJwk, key: await importJWK(publicJwk, 'ES256') };
  } catch {
    throw refused();
  }
}

export interface PairingResult {
  deviceId: string;
  account: { email: string; organisation: string };
  server: { origin: string; name: string };
  testChallengeId: string;
}

/** POST /device/v1/pair: the pairing JWS carries the new key as `jwk` and is signed by it. */
export async function pairDevice(ctx: AppContext, request: DeviceRequest): Promise<PairingResult> {
  const { jws, header } = jwsOf(request);
  const { jwk, key } = await pairingKeyOf(header.jwk);
  const thumb = createHash('sha256').update(`${jwk.x}.${jwk.y}`).digest('base64url');
  const claims = await verifyJws(ctx, request, key, jws, `pairing:${thumb}`);
  const code = claims.activationCode;
  const name = readDeviceName(claims.name);
  if (name === null) throw new PortcullisError('device-name-invalid', { field: 'name' });
  const subscription = claims.pushSubscription;
  if (subscription !== undefined && subscription !== null && !acceptsSubscription(ctx, subscription)) throw new PortcullisError('push-subscription-invalid', { field: 'pushSubscription' });
  if (typeof code !== 'string' || !/^[A-Za-z0-9_-]{22,64}$/.test(code)) throw new PortcullisError('activation-code-invalid');

  const now = ctx.clock();
  const enrolment = await ctx.store.push.consumeEnrolment(hashCode(code), now);
  if (!enrolment) throw new PortcullisError('activation-code-invalid');
  const user = await ctx.store.users.findById(enrolment.user_id);
  if (!user || user.status !== 'active') throw new PortcullisError('activation-code-invalid');
  if ((await ctx.store.methods.countActive(user.id, 'push')) >= methodDefinitions.push.maxPerUser) {
    throw new PortcullisError('method-limit', { max: methodDefinitions.push.maxPerUser });
  }

  const methodId = randomUUID();
  await ctx.store.transaction(async (repos) => {
    await repos.methods.insertPending({
      id: methodId,
      userId: user.id,
      kind: 'push',
      label: name,
      phoneE164: null,
      secretSealed: null,
      now,
      pendingExpiresAt: new Date(now.getTime() + PAIRING_SECONDS * 1000),
    });
    await repos.push.insertDevice({
      id: methodId,
      userId: user.id,
      publicJwk: JSON.stringify(jwk),
      subscriptionSealed: subscription ? sealText(ctx.keys.keyEncryption, JSON.stringify(subscription), `push-subscription:${methodId}`) : null,
      now,
    });
  });
  const method = (await ctx.store.methods.find(methodId))!;
  const challenge = await createChallenge(ctx, user, method, { purpose: 'test', binding: `enrolment:${enrolment.id}`, app: 'Set-up check', ip: request.ip });
  await ctx.store.push.completeEnrolment(enrolment.id, methodId, challenge.id);
  await ctx.bus.publish(busTopics.enrolment(enrolment.id), 'paired');
  const organisation = await ctx.store.organisations.findById(user.organisation_id);
  return {
    deviceId: methodId,
    account: { email: user.email, organisation: organisation?.name ?? '' },
    server: { origin: ctx.config.publicOrigin, name: ctx.config.organisationName },
    testChallengeId: challenge.id,
  };
}

// ── Challenges ──────────────────────────────────────────────────────────────────────────────────────

async function createChallenge(
  ctx: AppContext,
  user: UserRow,
  method: MethodRow,
  input: { purpose: PushChallengeRow['purpose']; binding: string; app: string; ip: string; location?: string | null },
): Promise<PushChallengeRow> {
  const now = ctx.clock();
  // The policy's push setting for this user's roles and groups when it states one (the shipped example:
  // 6 digits for those with elevated rights, NIST SP 800-63B-4); otherwise PUSH_NUMBER_DIGITS(_ELEVATED).
  const { pushNumberDigits, subject } = await evaluateUser(ctx, user);
  const digits = pushNumberDigits ?? numberDigitsFor(subject.elevated, pushSettings(ctx));
  const row: PushChallengeRow = {
    id: randomUUID(),
    user_id: user.id,
    method_id: method.id,
    number: numberFromRandom(digits, randomBelow),
    purpose: input.purpose,
    binding: input.binding,
    app: input.app,
    ip: input.ip,
    // Coarse location comes from the proxy in front (LOCATION_HEADER), which has a GeoIP resolver.
    location: input.location ?? null,
    status: 'pending',
    created_at: now.toISOString(),
    expires_at: new Date(now.getTime() + pushSettings(ctx).challengeSeconds * 1000).toISOString(),
    decided_at: null,
  };
  await ctx.store.push.insertChallenge(row);
  await deliverChallenge(ctx, row);
  return row;
}

/** Web Push (if the device gave a subscription) and the device's event stream; the app can also poll. */
async function deliverChallenge(ctx: AppContext, challenge: PushChallengeRow): Promise<void> {
  await ctx.bus.publish(busTopics.device(challenge.method_id), JSON.stringify({ id: challenge.id }));
  const device = await ctx.store.push.findDevice(challenge.method_id);
  if (!device?.push_subscription_sealed) return;
  let subscription: PushSubscriptionJson;
  try {
    subscription = JSON.parse(openText(ctx.keys.keyEncryption, device.push_subscription_sealed, `push-subscription:${device.id}`)) as PushSubscriptionJson;
  } catch {
    return;
  }
  // Not awaited by the sign-in: a slow push service must not hold the page.
  void sendChallengePush(subscription, challenge.id, { vapid: vapidKeys(ctx), subject: ctx.config.push.vapidSubject, ttlSeconds: ctx.config.push.challengeSeconds }).then(
    async ({ result, status }) => {
      ctx.metrics.webPushes.inc({ result });
      if (result === 'gone') await ctx.store.push.setSubscription(device.id, null);
      if (result !== 'sent') ctx.logger.info({ deviceId: device.id, result, status }, 'Web Push not delivered');
    },
    (error: unknown) => ctx.logger.warn({ err: (error as Error).message }, 'Web Push failed'),
  );
}

/** For the push strategy: start (or reuse) the challenge of a sign-in attempt, within the limits. */
export async function startSignInChallenge(
  ctx: AppContext,
  user: UserRow,
  method: MethodRow,
  input: { binding: string; ip: string; location: string | null; purpose: PushChallengeRow['purpose'] },
): Promise<string> {
  const now = ctx.clock();
  const settings = pushSettings(ctx);
  // The limits below are read and then a challenge is written: one start at a time per user (a lease in
  // the shared throttle store, on every node), so requests arriving together cannot all pass (issue #12).
  const held = await ctx.throttles.acquire(`push-start:user:${user.id}`, now, new Date(now.getTime() + PUSH_START_LEASE_SECONDS * 1000));
  if (!held) throw new PortcullisError('push-pending', { wait: describeDuration(settings.challengeSeconds) });
  try {
    return await startWithinLimits(ctx, user, method, input, now);
  } finally {
    await ctx.throttles.release(held.lease);
  }
}

async function startWithinLimits(
  ctx: AppContext,
  user: UserRow,
  method: MethodRow,
  input: { binding: string; ip: string; location: string | null; purpose: PushChallengeRow['purpose'] },
  now: Date,
): Promise<string> {
  const settings = pushSettings(ctx);
  const [pending, sent] = await Promise.all([ctx.store.push.pendingForUser(user.id, now), ctx.store.push.sentSince(user.id, new Date(now.getTime() - 3_600_000))]);
  const decision = decidePushStart(
    {
      pending: pending[0] ? { id: pending[0].id, binding: pending[0].binding } : null,
      lastSentAt: sent.last,
      sentInLastHour: sent.count,
      blocked: user.push_blocked_at !== null,
    },
    input.binding,
    now,
    settings,
  );
  if (decision.start === 'reuse') return decision.challengeId;
  if (decision.start === 'refused') {
    throw new PortcullisError(decision.code, { wait: describeDuration(decision.retryAfterSeconds) });
  }
  const challenge = await createChallenge(ctx, user, method, { purpose: input.purpose, binding: input.binding, app: `${ctx.config.organisationName} sign-in`, ip: input.ip, location: input.location });
  return challenge.id;
}

export interface ChallengeView {
  id: string;
  status: PushChallengeRow['status'];
  purpose: 'sign-in' | 'test';
  account: { email: string };
  app: string;
  ip: string | null;
  location: string | null;
  createdAt: string;
  expiresAt: string;
  numberLength: number;
}

export function viewChallenge(row: PushChallengeRow, user: UserRow, now: Date): ChallengeView {
  const expired = row.status === 'pending' && Date.parse(row.expires_at) <= now.getTime();
  return {
    id: row.id,
    status: expired ? 'expired' : row.status,
    purpose: row.purpose === 'test' ? 'test' : 'sign-in',
    account: { email: user.email },
    app: row.app,
    ip: row.ip,
    location: row.location,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    numberLength: row.number.length,
  };
}

export async function pendingForDevice(ctx: AppContext, verified: VerifiedDevice): Promise<ChallengeView[]> {
  const now = ctx.clock();
  const rows = await ctx.store.push.pendingForMethod(verified.method.id, now);
  // A device whose pairing is not confirmed lists its test request only.
  return rows.filter((row) => deviceMay(verified.method.status, 'read-challenge', row.purpose)).map((row) => viewChallenge(row, verified.user, now));
}

/** The device's own challenge `id`, when it may `action` it; an id of another shape is no challenge at all. */
async function ownChallenge(ctx: AppContext, verified: VerifiedDevice, id: string, action: 'read-challenge' | 'decide-challenge'): Promise<PushChallengeRow> {
  const row = isWellFormedId(id) ? await ctx.store.push.findChallenge(id) : null;
  if (!row || row.method_id !== verified.method.id) throw new PortcullisError('challenge-not-found');
  assertDeviceMay(verified, action, row);
  return row;
}

export async function challengeForDevice(ctx: AppContext, verified: VerifiedDevice, id: string): Promise<ChallengeView> {
  return viewChallenge(await ownChallenge(ctx, verified, id, 'read-challenge'), verified.user, ctx.clock());
}

/** A decision from the device: the signature was checked; here the rules and what follows. */
export async function decideChallenge(ctx: AppContext, verified: VerifiedDevice, id: string, ip: string): Promise<{ status: string }> {
  const row = await ownChallenge(ctx, verified, id, 'decide-challenge');
  const { claims, user, method } = verified;
  // A malformed field is refused before anything is decided: the challenge stays as it was.
  const input = readDecision(claims);
  if ('refused' in input) throw new PortcullisError(input.refused, { field: input.field });

  const now = ctx.clock();
  const outcome = decidePush({ status: row.status, expiresAt: new Date(row.expires_at), number: row.number }, input, now);
  if ('refused' in outcome) throw new PortcullisError(outcome.refused);
  if (!(await ctx.store.push.decide(row.id, outcome.status, now))) throw new PortcullisError('challenge-decided');
  await ctx.bus.publish(busTopics.challenge(row.id), outcome.status);

  if (row.purpose === 'test') {
    const enrolmentId = row.binding.replace(/^enrolment:/, '');
    if (outcome.status === 'approved') await activatePairedDevice(ctx, user, method, ip);
    await ctx.bus.publish(busTopics.enrolment(enrolmentId), outcome.status);
  } else if (outcome.status !== 'approved') {
    // Denials, wrong numbers and reports count toward the lockout when they happen, whether or not the
    // sign-in page ever looks again (an attacker's page would not).
    await recordSecondFactorFailure(ctx, user.id, ip);
  }
  if (outcome.status === 'reported') await handleFraudReport(ctx, user, row, ip);
  await ctx.store.audit.append({
    type: 'push.decided',
    at: now,
    actor: { kind: 'user', userId: user.id },
    subjectUserId: user.id,
    ip,
    details: { challengeId: row.id, deviceId: method.id, purpose: row.purpose, status: outcome.status, signInIp: row.ip },
  });
  if (outcome.status === 'wrong-number') throw new PortcullisError('wrong-number');
  return { status: outcome.status };
}

async function activatePairedDevice(ctx: AppContext, user: UserRow, method: MethodRow, ip: string): Promise<void> {
  const now = ctx.clock();
  if (!(await ctx.store.methods.activate(user.id, method.id, now, null))) return;
  await ctx.store.audit.append({
    type: 'method.added',
    at: now,
    actor: { kind: 'user', userId: user.id },
    subjectUserId: user.id,
    ip,
    details: { methodId: method.id, kind: 'push', via: 'pairing' },
  });
  await notifyUser(ctx, user, { kind: 'method-added', method: `${methodDefinitions.push.name} (${method.label})`, withoutSecondFactor: false });
}

/**
 * "No, it's not me": the sign-in is refused (by the status), push is blocked for the user until an
 * administrator lifts it (when PUSH_BLOCK_ON_FRAUD), the user is emailed and administrators alerted.
 */
async function handleFraudReport(ctx: AppContext, user: UserRow, challenge: PushChallengeRow, ip: string): Promise<void> {
  const now = ctx.clock();
  if (ctx.config.push.blockOnFraud) await ctx.store.push.setUserBlocked(user.id, now);
  // Someone else may hold the password: end the person's Portcullis sessions and what applications hold
  // (docs/oidc.md#signing-out-of-applications). The device's request does not wait for the back-channel logouts.
  await ctx.store.sessions.deleteAllForUser(user.id);
  void (await signOutOfApplications(ctx, user.id, 'push-fraud-reported')).deliveries;
  ctx.metrics.fraudReports.inc();
  ctx.logger.error({ event: 'push.fraud-reported', userId: user.id, signInIp: challenge.ip, deviceIp: ip }, 'a push sign-in request was reported as fraud');
  await ctx.store.audit.append({
    type: 'push.fraud-reported',
    at: now,
    actor: { kind: 'user', userId: user.id },
    subjectUserId: user.id,
    ip,
    details: { challengeId: challenge.id, signInIp: challenge.ip, pushBlocked: ctx.config.push.blockOnFraud },
  });
  await notifyUser(ctx, user, { kind: 'push-fraud-reported', blocked: ctx.config.push.blockOnFraud, signInIp: challenge.ip ?? 'unknown' });
  await alertAdministrators(ctx, user, challenge);
}

/** Emails the global administrators and the local administrators of the user's organisation. */
async function alertAdministrators(ctx: AppContext, user: UserRow, challenge: PushChallengeRow): Promise<void> {
  const admins = await ctx.store.roles.administratorsFor(user.organisation_id);
  for (const admin of admins) {
    await ctx.delivery.enqueue({
      channel: 'email',
      to: admin.email,
      purpose: 'fraud-alert',
      subject: `Fraud reported: a sign-in request to ${user.email} was reported as not them`,
      text: [
        `Dear ${admin.display_name},`,
        '',
        `${user.display_name} (${user.email}) answered a sign-in request with "No, it's not me" on ${now(ctx)}.`,
        `The sign-in came from the address ${challenge.ip ?? 'unknown'}. It was refused.`,
        ctx.config.push.blockOnFraud
          ? 'Sign-in requests to their authenticator app are blocked until an administrator lifts the block.'
          : 'Their authenticator app can still receive sign-in requests.',
        '',
        'Their password may be known to someone else: check the sign-in log and consider requiring a new password.',
      ].join('\n'),
    });
  }
}

function now(ctx: AppContext): string {
  return new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/London' }).format(ctx.clock());
}

// ── The device's own settings ───────────────────────────────────────────────────────────────────────

export async function devicesOf(ctx: AppContext, verified: VerifiedDevice) {
  const rows = await ctx.store.methods.activeForUser(verified.user.id);
  return rows
    .filter((m) => m.kind === 'push')
    .map((m) => ({ id: m.id, name: m.label, createdAt: m.activated_at ?? m.created_at, lastUsedAt: m.last_used_at, current: m.id === verified.method.id }));
}

export async function renameDevice(ctx: AppContext, verified: VerifiedDevice): Promise<{ id: string; name: string }> {
  const name = readDeviceName(verified.claims.name);
  if (name === null) throw new PortcullisError('device-name-invalid', { field: 'name' });
  await ctx.store.methods.rename(verified.method.id, name);
  return { id: verified.method.id, name };
}

/**
 * The device removes itself, within the rule Security info applies to a deletion: not the person's
 * last method meeting an enforced requirement of the policy (the same decision, in `removeMethod`;
 * the policy says which authenticators meet the level, as NIST SP 800-63B-4 leaves to the verifier).
 * Otherwise removing it here would leave them unable to sign in as their organisation requires.
 * The person is emailed, as for every change of their authenticators (NIST SP 800-63B-4 asks that the
 * subscriber be told when an authenticator is bound to or removed from their account).
 */
export async function removeDevice(ctx: AppContext, verified: VerifiedDevice, ip: string): Promise<void> {
  const { user, method } = verified;
  await removeMethod(ctx, user, method, { label: labelMethod(methodDefinitions.push.name, method.label), ip, by: 'device' });
}

export async function setDeviceSubscription(ctx: AppContext, verified: VerifiedDevice): Promise<void> {
  const subscription = verified.claims.pushSubscription;
  if (subscription === null) return ctx.store.push.setSubscription(verified.device.id, null);
  if (!acceptsSubscription(ctx, subscription)) throw new PortcullisError('push-subscription-invalid', { field: 'pushSubscription' });
  await ctx.store.push.setSubscription(verified.device.id, sealText(ctx.keys.keyEncryption, JSON.stringify(subscription), `push-subscription:${verified.device.id}`));
}

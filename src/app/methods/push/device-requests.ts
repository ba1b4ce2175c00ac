/**
 * The device's signed requests (docs/device-api.md): the JWS checks, the request allowance, and
 * pairing a new device key from its first request.
 */
import { createHash, randomUUID } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { PortcullisError } from '../../../core/errors.js';
import { methodDefinitions } from '../../../core/methods/registry.js';
import { checkRequestTime, deviceMay, deviceRequestWindow, isWellFormedId, readDeviceName, type DeviceAction } from '../../../core/methods/push.js';
import { sealText } from '../../../crypto/seal.js';
import type { DeviceRow, MethodRow, PushChallengeRow, UserRow } from '../../../store/schema.js';
import type { AppContext } from '../../context.js';
import { DEVICE_JWS_TYPE, JTI_MEMORY_SECONDS, PAIRING_SECONDS, acceptsSubscription, busTopics, hashCode } from './shared.js';
import { createChallenge } from './challenges.js';

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
  // The allowance and the replay record together (one round trip in a pipelined request); the
  // allowance's refusal comes first.
  const [admitted, recorded] = await Promise.allSettled([admit?.(), ctx.throttles.increment(`device-jti:${kid}:${jti}`, now, new Date(now.getTime() + JTI_MEMORY_SECONDS * 1000))]);
  if (admitted.status === 'rejected') throw admitted.reason;
  if (recorded.status === 'rejected') throw recorded.reason;
  if (recorded.value > 1) throw new PortcullisError('device-replay');
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
  return (await verifyDeviceRequestWith(ctx, request, action, async () => undefined)).verified;
}

/**
 * `verifyDeviceRequest`, with `read` (a read the request needs once the device is known: its challenge)
 * issued together with the device's method and user — one round trip on PostgreSQL inside a pipelined
 * scope. What `read` found is used only once the request has been verified.
 */
export async function verifyDeviceRequestWith<T>(ctx: AppContext, request: DeviceRequest, action: DeviceAction, read: () => Promise<T>): Promise<{ verified: VerifiedDevice; read: T }> {
  const { jws, header } = jwsOf(request);
  if (!isWellFormedId(header.kid)) throw new PortcullisError('device-signature-invalid', { field: 'kid' });
  const device = await ctx.store.push.findDevice(header.kid);
  if (!device) throw new PortcullisError('device-unknown');
  const key = await importJWK(JSON.parse(device.public_jwk) as JWK, 'ES256');
  const claims = await verifyJws(ctx, request, key, jws, device.id, () => admitDeviceRequest(ctx, device.id));
  const [method, user, found] = await Promise.all([ctx.store.methods.find(device.id), ctx.store.users.findById(device.user_id), read()]);
  if (!method || !user) throw new PortcullisError('device-unknown');
  // A disabled account may be enabled again: the device keeps its pairing and waits (issue #15), rather
  // than being told it is unknown, which makes the app forget its key.
  if (user.status !== 'active') throw new PortcullisError('device-account-disabled');
  const verified = { device, method, user, claims };
  if (action !== 'read-challenge' && action !== 'decide-challenge') assertDeviceMay(verified, action);
  await ctx.store.push.touchDevice(device.id, ctx.clock());
  return { verified, read: found };
}

export function assertDeviceMay(verified: VerifiedDevice, action: DeviceAction, challenge?: PushChallengeRow): void {
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

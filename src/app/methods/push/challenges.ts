/**
 * Push challenges: starting one for a sign-in within the push-bombing limits, delivering it (Web
 * Push and the device's event stream), and what a device may read of its own.
 */
import { randomUUID } from 'node:crypto';
import { PortcullisError } from '../../../core/errors.js';
import { describeDuration } from '../../../core/duration.js';
import { decidePushStart, deviceMay, isWellFormedId, numberDigitsFor, numberFromRandom } from '../../../core/methods/push.js';
import { openText } from '../../../crypto/seal.js';
import { sendChallengePush, type PushSubscriptionJson } from '../../../channels/web-push.js';
import type { MethodRow, PushChallengeRow, UserRow } from '../../../store/schema.js';
import type { AppContext } from '../../context.js';
import { evaluateUser } from '../../policy.js';
import { PUSH_START_LEASE_SECONDS, busTopics, pushSettings, randomBelow, vapidKeys } from './shared.js';
import { assertDeviceMay, type VerifiedDevice } from './device-requests.js';

export async function createChallenge(
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
export async function ownChallenge(
  ctx: AppContext,
  verified: VerifiedDevice,
  id: string,
  action: 'read-challenge' | 'decide-challenge',
  /** The row, when it was read with the device's (verifyDeviceRequestWith). */
  read?: PushChallengeRow | null,
): Promise<PushChallengeRow> {
  const row = read !== undefined ? read : isWellFormedId(id) ? await ctx.store.push.findChallenge(id) : null;
  if (!row || row.method_id !== verified.method.id) throw new PortcullisError('challenge-not-found');
  assertDeviceMay(verified, action, row);
  return row;
}

export async function challengeForDevice(ctx: AppContext, verified: VerifiedDevice, id: string): Promise<ChallengeView> {
  return viewChallenge(await ownChallenge(ctx, verified, id, 'read-challenge'), verified.user, ctx.clock());
}

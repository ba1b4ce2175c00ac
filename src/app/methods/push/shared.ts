/**
 * What the push unit's parts share: its constants, its bus topics, the VAPID keys and small helpers.
 */
import { createHash } from 'node:crypto';
import type { PushSettings } from '../../../core/methods/push.js';
import { secureRandomBytes } from '../../../crypto/tokens.js';
import { deriveVapidKeys, isPushSubscription, type PushSubscriptionJson, type VapidKeys } from '../../../channels/web-push.js';
import { isLocalHostname } from '../../../config/load.js';
import type { AppContext } from '../../context.js';
/** How long a pairing code shown on Security info stays usable (DESIGN.md: 10 minutes). */
export const PAIRING_SECONDS = 10 * 60;
/** The `typ` of device request JWSs. */
export const DEVICE_JWS_TYPE = 'portcullis-device+jwt';
/** How long a `jti` is remembered: longer than the ±60 s window in which its `iat` is accepted. */
export const JTI_MEMORY_SECONDS = 180;
export const ACTIVATION_CODE_BYTES = 16;
/** How long starting a push may hold the user's lease: a read, an insert and handing it to the bus. */
export const PUSH_START_LEASE_SECONDS = 10;

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

export function acceptsSubscription(ctx: AppContext, value: unknown): value is PushSubscriptionJson {
  return isPushSubscription(value, ctx.config.push.serviceHosts, isLocalHostname(ctx.config.publicUrl.hostname));
}

export function pushSettings(ctx: AppContext): PushSettings {
  return ctx.config.push;
}

export function hashCode(code: string): string {
  return createHash('sha256').update(code).digest('hex');
}

export function randomBelow(limit: number): number {
  // Rejection sampling over 32-bit values: no modulo bias.
  const ceiling = Math.floor(0x1_0000_0000 / limit) * limit;
  for (;;) {
    const value = secureRandomBytes(4).readUInt32BE(0);
    if (value < ceiling) return value % limit;
  }
}

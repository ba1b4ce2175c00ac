/**
 * The device's own settings: the person's devices, renaming, removing itself, its push subscription.
 */
import { PortcullisError } from '../../../core/errors.js';
import { labelMethod, methodDefinitions } from '../../../core/methods/registry.js';
import { readDeviceName } from '../../../core/methods/push.js';
import { sealText } from '../../../crypto/seal.js';
import type { AppContext } from '../../context.js';
import { removeMethod } from '../../method-removal.js';
import { acceptsSubscription } from './shared.js';
import type { VerifiedDevice } from './device-requests.js';

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

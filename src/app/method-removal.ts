/**
 * Removing a sign-in method, from Security info or from the phone itself, under one rule: the last
 * method that meets a requirement the person complies with cannot go (NIST SP 800-63B-4 §6.1.2.3;
 * `deletionRefusal` in the core). One removal at a time per person (a lease in the shared throttle
 * store): two removals sent together would each see the other method still there, and both pass.
 */
import { PortcullisError } from '../core/errors.js';
import type { MethodRow, UserRow } from '../store/schema.js';
import type { AppContext } from './context.js';
import { notifyUser } from './notifications.js';
import { deletionRefusalFor } from './policy.js';

/** A read of the policy and one transaction: far less than this. */
const REMOVAL_LEASE_SECONDS = 10;

export async function removeMethod(
  ctx: AppContext,
  user: UserRow,
  method: MethodRow,
  input: { label: string; ip: string | null; by?: 'device' },
): Promise<void> {
  const started = ctx.clock();
  const held = await ctx.throttles.acquire(`method-removal:user:${user.id}`, started, new Date(started.getTime() + REMOVAL_LEASE_SECONDS * 1000));
  if (!held) throw new PortcullisError('attempt-in-progress');
  try {
    const refusal = await deletionRefusalFor(ctx, user, method.id);
    if (refusal) throw new PortcullisError('method-last-compliant', { method: input.label, reason: refusal });
    const now = ctx.clock();
    await ctx.store.transaction(async (repos) => {
      await repos.methods.delete(user.id, method.id);
      if (user.default_method_id === method.id) await repos.users.setDefaultMethod(user.id, null, now);
      await repos.audit.append({
        type: 'method.removed',
        at: now,
        actor: { kind: 'user', userId: user.id },
        subjectUserId: user.id,
        ip: input.ip,
        details: { methodId: method.id, kind: method.kind, ...(input.by ? { by: input.by } : {}) },
      });
    });
  } finally {
    await ctx.throttles.release(held.lease);
  }
  await notifyUser(ctx, user, { kind: 'method-removed', method: input.label });
}

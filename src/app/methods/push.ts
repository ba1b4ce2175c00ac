/**
 * App based authentication – notification (push with number matching). The device pairs itself from
 * the code Security info shows (src/app/push.ts), so this strategy has no enrolment steps; at sign-in it
 * sends a challenge within the push-bombing limits, and the sign-in completes when the device's
 * approval (with the right number) has been recorded — an outside event, not a typed code.
 */
import { verifyPushStatus } from '../../core/methods/push.js';
import { methodDefinitions } from '../../core/methods/registry.js';
import type { CodeVerification } from '../../core/sign-in/flow.js';
import { startSignInChallenge } from '../push.js';
import type { MethodStrategy } from './strategy.js';

export const pushStrategy: MethodStrategy = {
  definition: methodDefinitions.push,

  detail: (method) => method.label || 'Authenticator app',

  async beginChallenge(ctx, user, method, context) {
    const purpose = context.purpose === 'enrolment' ? 'sign-in' : context.purpose;
    return { challengeId: await startSignInChallenge(ctx, user, method, { binding: context.binding, ip: context.ip, location: context.location ?? null, purpose }) };
  },

  async verify(ctx, _user, method, challengeId, _code, context): Promise<CodeVerification> {
    if (!challengeId) return { ok: false, reason: 'push-timeout' };
    const challenge = await ctx.store.push.findChallenge(challengeId);
    // A challenge answers only the attempt it was sent for.
    if (!challenge || challenge.binding !== context.binding || challenge.method_id !== method.id) return { ok: false, reason: 'push-timeout' };
    const now = ctx.clock();
    const result = verifyPushStatus(challenge.status, new Date(challenge.expires_at), now);
    if (!result.ok) return result;
    // One approval, one sign-in: of two racing requests only one turns it into a session.
    if (!(await ctx.store.push.useApproval(challenge.id, now))) return { ok: false, reason: 'push-timeout' };
    await ctx.store.methods.markUsed(method.id, now);
    return { ok: true };
  },
};

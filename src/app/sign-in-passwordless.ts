/**
 * Passwordless sign-in from the email page, by a method unit that offers it (a discoverable passkey:
 * src/app/methods/passkey/). The method is both factors, so the person's policy must allow it and give
 * a full session; otherwise they sign in with their password as usual. Throttled like a second factor
 * (the client address's budget), audited and counted like every sign-in.
 */
import { describeDuration } from '../core/duration.js';
import { PortcullisError } from '../core/errors.js';
import { methodDefinitions, isSecondFactorKind } from '../core/methods/registry.js';
import type { AppContext } from './context.js';
import { summarise, units } from './methods/index.js';
import type { MethodPage, MethodUnit } from './methods/unit.js';
import { currentPolicy, signInPolicy } from './policy.js';
import { startSession, type ClientInfo } from './sessions.js';

const firstFactorUnit = () => units.find((unit) => unit.firstFactor);

/**
 * Whether the policy lets the unit's kind sign anyone in on its own: enabled for someone, and its
 * `passwordless` setting not turned off (policy document: `methods.passkey.settings.passwordless`).
 */
async function passwordlessAllowed(ctx: AppContext, unit: MethodUnit): Promise<boolean> {
  const { policy } = await currentPolicy(ctx);
  return unit.strategies.some((s) => {
    const entry = policy.methods[s.definition.kind];
    return entry !== undefined && entry.enabled && entry.passwordless;
  });
}

/** The block the email page shows for it (with fresh options), or null when no unit offers one the policy allows. */
export async function passwordlessPage(ctx: AppContext): Promise<MethodPage | null> {
  const unit = firstFactorUnit();
  if (!unit?.firstFactor || !(await passwordlessAllowed(ctx, unit))) return null;
  return unit.firstFactor.page(ctx);
}

function looksLikeCredential(text: string): boolean {
  if (text.length === 0 || text.length > 16_384) return false;
  try {
    const value = JSON.parse(text) as { id?: unknown; response?: unknown };
    return typeof value === 'object' && value !== null && typeof value.id === 'string' && typeof value.response === 'object' && value.response !== null;
  } catch {
    return false;
  }
}

/** Verifies the posted response and starts the session; `passkey-refused` when it does not sign anyone in. */
export async function signInPasswordless(ctx: AppContext, form: Record<string, string>, client: ClientInfo & { ip: string }): Promise<{ sessionToken: string; userId: string }> {
  const unit = firstFactorUnit();
  if (!unit?.firstFactor || !(await passwordlessAllowed(ctx, unit))) throw new PortcullisError('passkey-refused');
  // What is not a credential at all is refused before anything is counted or written (bad input changes nothing).
  if (!looksLikeCredential(form.credential ?? '')) throw new PortcullisError('passkey-refused');
  const now = ctx.clock();
  // The client address's budget, as for every password: a flood of assertions is refused before its work.
  const window = ctx.config.signIn.ipWindowSeconds;
  const budget = await ctx.throttles.increment(`passwordless:ip:${client.ip}`, now, new Date(now.getTime() + window * 1000));
  if (budget > ctx.config.signIn.ipFailureLimit) throw new PortcullisError('sign-in-throttled', { wait: describeDuration(window) });
  const result = await unit.firstFactor.verify(ctx, form, client);
  const refuse = async (why: string, userId: string | null) => {
    await ctx.store.audit.append({
      type: 'passkey.sign-in-refused',
      at: now,
      actor: userId ? { kind: 'user', userId } : { kind: 'anonymous' },
      subjectUserId: userId,
      ip: client.ip,
      details: { reason: why },
    });
    ctx.metrics.signIns.inc({ outcome: 'failure', reason: 'code-incorrect' });
    return new PortcullisError('passkey-refused');
  };
  if (!result.ok) throw await refuse(result.reason, null);
  const user = await ctx.store.users.findById(result.method.user_id);
  if (!user || user.status !== 'active') throw await refuse('account-not-active', user?.id ?? null);
  const kind = result.method.kind;
  if (!isSecondFactorKind(kind)) throw await refuse('method-unknown', user.id);
  // The policy decides as at the password: the method must be one it lets this person use, with a full session.
  const allowed = await signInPolicy(ctx, user, await ctx.store.methods.activeForUser(user.id));
  const usable = summarise([result.method]).some((m) => allowed.usable.some((u) => u.id === m.id));
  if (!usable || allowed.policy.session !== 'full') throw await refuse('policy', user.id);
  const methods = [{ method: kind, at: now.toISOString() }];
  const sessionToken = await startSession(ctx, { userId: user.id, methods, restricted: null, client });
  await ctx.store.audit.append({
    type: 'sign-in.succeeded',
    at: now,
    actor: { kind: 'user', userId: user.id },
    subjectUserId: user.id,
    ip: client.ip,
    details: { methods: [kind], purpose: 'sign-in', passwordless: true, method: methodDefinitions[kind].name },
  });
  ctx.metrics.signIns.inc({ outcome: 'success', reason: 'success' });
  return { sessionToken, userId: user.id };
}

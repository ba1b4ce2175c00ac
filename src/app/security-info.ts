/**
 * Security info use cases: list a user's methods, add one (through its strategy), make one the
 * default, delete one, change the password, sign out everywhere. Every change is audited and emailed;
 * every change needs a recent second factor (or, for a first method, the grant right after the password).
 */
import { describeDuration } from '../core/duration.js';
import { PortcullisError } from '../core/errors.js';
import { labelMethod, methodDefinitions, orderMethods, type SecondFactorKind } from '../core/methods/registry.js';
import type { MethodRow } from '../store/schema.js';
import type { AppContext } from './context.js';
import { strategyFor, strategyOf, unitOf, units } from './methods/index.js';
import type { EnrolmentInput, MethodChoice, MethodUnit } from './methods/unit.js';
import { pendingMethod, requireAccess } from './methods/enrolment.js';

export { changeAccess } from './methods/enrolment.js';
import { notifyUser } from './notifications.js';
import { assertAcceptablePassword } from './passwords.js';
import { assertMayBeDefault, assertMayRegister, deletionRefusalFor, registrableFor, signInPolicy } from './policy.js';
import { renewSession, type ActiveSession, type ClientInfo } from './sessions.js';
import { beginPasswordAttempt } from './sign-in-attempts.js';
import { removeMethod } from './method-removal.js';
import { signOutOfApplications } from './oidc/sign-out.js';
import type { MethodUse } from '../core/methods.js';

export interface MethodListing {
  id: string;
  kind: SecondFactorKind;
  name: string;
  detail: string;
  /** "Phone – text message – +44 7••• •••456": name and detail, as a choice or a sentence says it. */
  label: string;
  /** What else its unit shows ("Synced passkey", the model). */
  facts: string[];
  renamable: boolean;
  addedAt: Date;
  lastUsedAt: Date | null;
  isDefault: boolean;
}

export function describeMethod(method: MethodRow): string {
  const strategy = strategyOf(method);
  return labelMethod(strategy.definition.name, strategy.detail(method));
}

export async function listMethods(ctx: AppContext, userId: string, defaultMethodId: string | null): Promise<MethodListing[]> {
  const rows = await ctx.store.methods.activeForUser(userId);
  const listings = rows.flatMap((row) => {
    const strategy = strategyFor(row.kind);
    if (!strategy) return [];
    return [
      {
        id: row.id,
        kind: strategy.definition.kind,
        name: strategy.definition.name,
        detail: strategy.detail(row),
        label: labelMethod(strategy.definition.name, strategy.detail(row)),
        ...(unitOf(row.kind)?.facts?.(row) ?? { facts: [], renamable: false }),
        addedAt: new Date(row.activated_at ?? row.created_at),
        lastUsedAt: row.last_used_at ? new Date(row.last_used_at) : null,
        isDefault: false,
      },
    ];
  });
  // The effective default: the chosen one, or the one sign-in would prompt (system-preferred).
  const ordered = orderMethods(listings, defaultMethodId);
  const effective = ordered[0]?.id ?? null;
  return listings.map((l) => ({ ...l, isDefault: l.id === effective }));
}

export async function setDefaultMethod(ctx: AppContext, session: ActiveSession, methodId: string, client: ClientInfo): Promise<MethodRow> {
  await requireAccess(ctx, session, 'change');
  const method = await ctx.store.methods.findForUser(session.user.id, methodId);
  if (!method || method.status !== 'active' || !strategyFor(method.kind)) throw new PortcullisError('method-choice-missing');
  const strategy = strategyOf(method);
  await assertMayBeDefault(ctx, session.user, { id: method.id, kind: strategy.definition.kind, detail: strategy.detail(method) }, describeMethod(method));
  const now = ctx.clock();
  // The change and its audit event together, as for a deletion.
  await ctx.store.transaction(async (repos) => {
    await repos.users.setDefaultMethod(session.user.id, method.id, now);
    await repos.audit.append({
      type: 'method.default-changed',
      at: now,
      actor: { kind: 'user', userId: session.user.id },
      subjectUserId: session.user.id,
      ip: client.ip,
      details: { methodId: method.id, kind: method.kind },
    });
  });
  await notifyUser(ctx, session.user, { kind: 'default-changed', method: describeMethod(method) });
  return method;
}

export async function deleteMethod(ctx: AppContext, session: ActiveSession, methodId: string, client: ClientInfo): Promise<MethodRow> {
  await requireAccess(ctx, session, 'change');
  const method = await ctx.store.methods.findForUser(session.user.id, methodId);
  if (!method || method.status !== 'active') throw new PortcullisError('method-not-found');
  await removeMethod(ctx, session.user, method, { label: describeMethod(method), ip: client.ip });
  return method;
}

/** Current password and a recent second factor; every other session ends (OWASP ASVS 5 V7.4.3). */
export async function changePassword(
  ctx: AppContext,
  session: ActiveSession,
  input: { current: string; next: string },
  client: ClientInfo & { ip: string },
): Promise<void> {
  await requireAccess(ctx, session, 'change');
  // The current password is a password attempt like the sign-in's: the same reservation, the same
  // lockout, and a wrong one is audited (issue #12: guessing here must not be free).
  const started = await beginPasswordAttempt(ctx, { email: session.user.email_normalised, ip: client.ip });
  if (!started.granted) {
    const { reason, retryAfterSeconds } = started.throttle;
    throw new PortcullisError(reason === 'attempt-in-progress' ? 'attempt-in-progress' : 'sign-in-throttled', { wait: describeDuration(retryAfterSeconds) });
  }
  const { attempt } = started;
  try {
    const hash = session.user.password_hash;
    let correct = false;
    if (hash) correct = await ctx.hasher.verify(hash, input.current);
    else await ctx.hasher.verifyDummy(input.current);
    ctx.metrics.passwordVerifications.inc();
    if (!correct) {
      await attempt.fail(session.user.id);
      await ctx.store.audit.append({
        type: 'user.password-change-refused',
        at: ctx.clock(),
        actor: { kind: 'user', userId: session.user.id },
        subjectUserId: session.user.id,
        ip: client.ip,
        details: { reason: 'password-incorrect' },
      });
      throw new PortcullisError('current-password-incorrect');
    }
    await attempt.succeed();
  } finally {
    await attempt.end();
  }
  assertAcceptablePassword(input.next, ctx.config, session.user.email);
  const nextHash = await ctx.hasher.hash(input.next);
  const now = ctx.clock();
  const ended = await ctx.store.transaction(async (repos) => {
    await repos.users.setPasswordHash(session.user.id, nextHash, now, true);
    const count = await repos.sessions.deleteOthersForUser(session.user.id, session.id);
    await repos.audit.append({
      type: 'user.password-changed',
      at: now,
      actor: { kind: 'user', userId: session.user.id },
      subjectUserId: session.user.id,
      ip: client.ip,
      details: { sessionsEnded: count },
    });
    return count;
  });
  ctx.logger.info({ userId: session.user.id, sessionsEnded: ended }, 'password changed');
  await notifyUser(ctx, session.user, { kind: 'password-changed' });
}

/**
 * Ends every session, this one included. It needs no recent second factor: it only takes access away,
 * and someone who fears their account is in use elsewhere must be able to do it at once.
 */
export async function signOutEverywhere(ctx: AppContext, session: ActiveSession, client: ClientInfo): Promise<number> {
  const now = ctx.clock();
  const ended = await ctx.store.sessions.deleteAllForUser(session.user.id);
  // Applications too (docs/oidc.md#signing-out-of-applications); the back-channel logouts finish after the response.
  void (await signOutOfApplications(ctx, session.user.id, 'signed-out-everywhere')).deliveries;
  await ctx.store.audit.append({
    type: 'sessions.ended-everywhere',
    at: now,
    actor: { kind: 'user', userId: session.user.id },
    subjectUserId: session.user.id,
    ip: client.ip,
    details: { sessionsEnded: ended },
  });
  await notifyUser(ctx, session.user, { kind: 'signed-out-everywhere' });
  return ended;
}

export function methodName(kind: SecondFactorKind): string {
  return methodDefinitions[kind].name;
}

/**
 * A new method was just proved in this session (its first code, or the phone's approval of the test
 * request): the session gets a new id with the method among its methods and, when it was restricted
 * to registering and the policy now lets the person sign in fully, the restriction is lifted — as
 * registering during sign-in completes the sign-in in Microsoft Entra.
 */
export async function renewAfterRegistration(ctx: AppContext, session: ActiveSession, proved: MethodUse, client: ClientInfo): Promise<string> {
  let restricted = session.restricted;
  if (restricted) {
    const user = (await ctx.store.users.findById(session.user.id)) ?? session.user;
    const allowed = await signInPolicy(ctx, user);
    if (allowed.policy.session === 'full') {
      restricted = null;
      await ctx.store.audit.append({
        type: 'session.restriction-lifted',
        at: ctx.clock(),
        actor: { kind: 'user', userId: user.id },
        subjectUserId: user.id,
        ip: client.ip,
        details: { method: proved.method },
      });
    }
  }
  return renewSession(ctx, session, [...session.methods, proved], client, { restricted });
}

/**
 * What a unit's set-up step is given: the person, their client, the form, and what the policy offers
 * them now (in a session restricted to registration, only the kinds that would lift the restriction).
 */
export async function enrolmentInputFor(
  ctx: AppContext,
  session: ActiveSession,
  client: ClientInfo & { ip: string },
  form: Record<string, string>,
  query: Record<string, string>,
): Promise<EnrolmentInput> {
  const registrable = await registrableFor(ctx, session.user);
  const kinds = new Set<string>(session.restricted ? registrable.liftsRestriction : registrable.enabled);
  return { ctx, session, client, form, query, offers: (kind) => kinds.has(kind), recommended: registrable.meetsAll[0] ?? null };
}

export interface AddChoices {
  /** The radios of "Add sign-in method", in the units' order. */
  items: Array<{ value: string; text: string; hint: { text: string } }>;
  /** The units the policy lets this person set up now (shown or not: of a group, only the first shows). */
  offered: Set<MethodUnit>;
}

/** The "Add sign-in method" choices the policy allows: of units in one group, the first that offers one. */
export async function addChoices(ctx: AppContext, input: EnrolmentInput): Promise<AddChoices> {
  const hasMethods = await hasActiveMethods(ctx, input.session.user.id);
  const recommended = input.recommended;
  const groups = new Set<string>();
  const items: AddChoices['items'] = [];
  const offered = new Set<MethodUnit>();
  for (const unit of units) {
    if (!unit.enrolment) continue;
    const choice: MethodChoice | null = await unit.enrolment.choice(input, hasMethods);
    if (!choice) continue;
    offered.add(unit);
    if (groups.has(choice.group)) continue;
    groups.add(choice.group);
    const note = recommended && unit.strategies.some((s) => s.definition.kind === recommended) ? ' (recommended by your organisation)' : '';
    items.push({ value: unit.enrolment.value, text: `${choice.text}${note}`, hint: { text: choice.hint } });
  }
  return { items, offered };
}

/** Why a unit's set-up was not offered, as the policy says it (throws its refusal). */
export async function refuseChoice(ctx: AppContext, session: ActiveSession, unit: MethodUnit): Promise<void> {
  const kind = unit.strategies[0]?.definition.kind;
  if (!kind) throw new PortcullisError('method-choice-missing');
  await assertMayRegister(ctx, session.user, session.restricted !== null, kind);
  throw new PortcullisError('method-choice-missing');
}

/** A pending method of the person's, with its unit; `enrolment-expired` when there is none (or it lapsed). */
export async function pendingOf(ctx: AppContext, session: ActiveSession, methodId: string): Promise<{ unit: MethodUnit; method: MethodRow }> {
  const method = await pendingMethod(ctx, session, methodId);
  const unit = unitOf(method.kind);
  if (!unit) throw new PortcullisError('enrolment-expired');
  return { unit, method };
}

export async function hasActiveMethods(ctx: AppContext, userId: string): Promise<boolean> {
  return (await ctx.store.methods.countActive(userId)) > 0;
}

/** "Authenticator app added": the new method, and whether to offer to make it the default. */
export async function addedMethod(ctx: AppContext, session: ActiveSession, methodId: string) {
  const method = await ctx.store.methods.findForUser(session.user.id, methodId);
  if (!method || method.status !== 'active') throw new PortcullisError('method-not-found');
  const methods = await listMethods(ctx, session.user.id, session.user.default_method_id);
  const current = methods.find((m) => m.isDefault);
  return { methodId: method.id, device: method.label, isDefault: current?.id === method.id, currentDefault: current ? labelMethod(current.name, current.detail) : '' };
}

/** The delete page: which method, whether it is the last one, why it may not go, and what deleting it means. */
export async function deletionView(ctx: AppContext, session: ActiveSession, methodId: string, withRefusal: boolean) {
  const method = await ctx.store.methods.findForUser(session.user.id, methodId);
  if (!method || method.status !== 'active' || !strategyFor(method.kind)) throw new PortcullisError('method-not-found');
  // Said before the button, not only after it: the last method meeting a requirement cannot go.
  const refusal = withRefusal ? await deletionRefusalFor(ctx, session.user, method.id) : null;
  return {
    methodId: method.id,
    method: describeMethod(method),
    lastOne: (await ctx.store.methods.countActive(session.user.id)) === 1,
    refusal,
    note: strategyOf(method).deletionNote ?? null,
  };
}

/** The rename page's method: one whose unit lets the person name it (a passkey). */
export async function renamableMethod(ctx: AppContext, session: ActiveSession, methodId: string): Promise<{ methodId: string; name: string }> {
  const method = await ctx.store.methods.findForUser(session.user.id, methodId);
  const unit = method && method.status === 'active' ? unitOf(method.kind) : undefined;
  if (!method || !unit?.rename) throw new PortcullisError('method-not-found');
  return { methodId: method.id, name: method.label };
}

/** Renames a method its unit lets the person name; audited. */
export async function renameMethod(ctx: AppContext, session: ActiveSession, methodId: string, name: string, client: ClientInfo): Promise<void> {
  await requireAccess(ctx, session, 'change');
  const method = await ctx.store.methods.findForUser(session.user.id, methodId);
  const unit = method && method.status === 'active' ? unitOf(method.kind) : undefined;
  if (!method || !unit?.rename) throw new PortcullisError('method-not-found');
  const checked = unit.rename(name);
  if (checked === null) throw new PortcullisError('method-name-invalid');
  await ctx.store.transaction(async (repos) => {
    await repos.methods.rename(method.id, checked);
    await repos.audit.append({
      type: 'method.renamed',
      at: ctx.clock(),
      actor: { kind: 'user', userId: session.user.id },
      subjectUserId: session.user.id,
      ip: client.ip,
      details: { methodId: method.id, kind: method.kind },
    });
  });
}

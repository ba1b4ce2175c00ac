/**
 * Drives the core's sign-in state machine: loads and saves the flow, performs the effects the reducer
 * asks for (verify a password or a code, start a challenge, count a failure, write audit events) and
 * feeds their results back in. Shared by the sign-in pages, step-up and, later, the OpenID Connect
 * interaction.
 */
import { isPortcullisError } from '../core/errors.js';
import { reduceSignIn, startSignIn, startStepUp, UNRESTRICTED, type SignInEffect, type SignInError, type SignInEvent, type SignInResult, type SignInState } from '../core/sign-in/flow.js';
import { type ThrottleAssessment } from '../core/throttle.js';
import { describeUse, methodDefinitions, type SecondFactorKind } from '../core/methods/registry.js';
import { safeReturnTo } from '../core/return-to.js';
import { openText, sealText } from '../crypto/seal.js';
import { hashToken, randomToken } from '../crypto/tokens.js';
import { normaliseEmail } from '../core/email.js';
import type { PolicyFacts } from '../store/repositories/policy.js';
import type { MethodRow, UserRow } from '../store/schema.js';
import type { AppContext } from './context.js';
import { strategyFor, strategyOf } from './methods/index.js';
import type { MethodPage } from './methods/unit.js';
import { passMethodRow, TAP_METHOD_ID } from './methods/tap/index.js';
import { signInPolicy, stepUpOptions } from './policy.js';
import type { ChallengeContext, ChallengeResponse } from './methods/strategy.js';
import type { ActiveSession, ClientInfo } from './sessions.js';
import { beginPasswordAttempt, beginSecondFactorAttempt, beginWith, type Attempt } from './sign-in-attempts.js';

/** How long a sign-in may take from the email step to the last step. */
export const SIGN_IN_FLOW_SECONDS = 15 * 60;

export interface SignInOutcome {
  state: SignInState;
  error: SignInError | null;
}

/** Challenges started in a flow are bound to it: a code sent for one sign-in works only there. */
export function flowBinding(token: string): string {
  return `flow:${hashToken(token)}`;
}

export async function createSignInFlow(ctx: AppContext, state: SignInState): Promise<{ token: string; state: SignInState }> {
  const token = randomToken(32);
  await storeSignInFlow(ctx, token, state);
  return { token, state };
}

async function storeSignInFlow(ctx: AppContext, token: string, state: SignInState): Promise<void> {
  const now = ctx.clock();
  await ctx.store.signInFlows.insert(hashToken(token), state, now, new Date(now.getTime() + SIGN_IN_FLOW_SECONDS * 1000));
}

/*
 * A flow at the password step holds nothing but the address typed and where to go afterwards: it lives
 * in its cookie, sealed (AES-256-GCM under the key-encryption key, bound to this use), with its expiry.
 * Nothing is stored until the password is right and a second factor is due, so an email step costs the
 * database nothing and a password-only sign-in writes only its audit event and its session. Sending a
 * copy of the cookie again is the same as typing the address again: the password step is throttled by
 * the address and the IP, not by the flow.
 */
const SEALED_FLOW = 'p.';
const SEALED_FLOW_USE = 'sign-in-flow/password-step';
/**
 * Browsers keep cookies up to about 4 KB, name and attributes included. A password step that would not
 * fit sealed (a long `returnTo`: up to 2,048 characters) is stored like any other step instead.
 */
const MAX_SEALED_FLOW = 3000;

/** A flow token that is the sealed password step itself, not the key of a stored flow. */
export function isSealedFlow(token: string): boolean {
  return token.startsWith(SEALED_FLOW);
}

/** The cookie value for a flow at the password step: the step itself, sealed, when it fits in a cookie. */
export async function startPasswordStep(ctx: AppContext, state: Extract<SignInState, { step: 'password' }>): Promise<string> {
  const expires = ctx.clock().getTime() + SIGN_IN_FLOW_SECONDS * 1000;
  const sealed = SEALED_FLOW + sealText(ctx.keys.keyEncryption, JSON.stringify({ email: state.email, returnTo: state.returnTo, expires }), SEALED_FLOW_USE);
  if (sealed.length <= MAX_SEALED_FLOW) return sealed;
  return (await createSignInFlow(ctx, state)).token;
}

function openPasswordStep(ctx: AppContext, token: string): SignInState | undefined {
  try {
    const value: unknown = JSON.parse(openText(ctx.keys.keyEncryption, token.slice(SEALED_FLOW.length), SEALED_FLOW_USE));
    if (typeof value !== 'object' || value === null) return undefined;
    const { email, returnTo, expires } = value as Record<string, unknown>;
    if (typeof email !== 'string' || typeof returnTo !== 'string' || typeof expires !== 'number') return undefined;
    if (expires <= ctx.clock().getTime()) return undefined;
    return { step: 'password', email, returnTo: safeReturnTo(returnTo) };
  } catch {
    // Altered, sealed under another secret, or not a sealed value at all: no flow.
    return undefined;
  }
}

export async function loadSignInFlow(ctx: AppContext, token: string | undefined): Promise<SignInState | undefined> {
  if (!token) return undefined;
  if (isSealedFlow(token)) return token.length <= MAX_SEALED_FLOW ? openPasswordStep(ctx, token) : undefined;
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
  return ctx.store.signInFlows.find(hashToken(token), ctx.clock());
}

/**
 * Runs a sign-in step's work with its statements pipelined (src/store/pipeline.ts): the reads issued
 * together go together, and the closing writes go together and are written before it returns. What the
 * work decides is answered after it returns.
 */
export function signInStep<T>(ctx: AppContext, work: () => Promise<T>): Promise<T> {
  return ctx.store.pipelined(work);
}

export async function finishSignInFlow(ctx: AppContext, token: string): Promise<void> {
  if (isSealedFlow(token)) return;
  await ctx.store.signInFlows.delete(hashToken(token));
}

export interface AdvanceInput {
  /** The flow's cookie token (its hash keys the flow and binds its challenges). */
  token: string;
  state: SignInState;
  event: SignInEvent;
  client: ClientInfo & { ip: string };
  /** The password or code typed, when the event carries one; it lives only in this call. */
  secret?: string;
  /** The answer to a second-factor challenge (a code, an outside event, a ceremony's response). */
  response?: ChallengeResponse;
  /** Persist the new state (false when the caller stores it itself, as a brand-new flow). */
  persist?: boolean;
  /**
   * Whether the flow is stored under `token` (false for a sealed password step: its first state past the
   * password is inserted under `token`, a new one the caller then puts in the cookie).
   */
  stored?: boolean;
  /**
   * The attempt a password or code event was reserved under (src/app/sign-in-attempts.ts): its failure
   * or success is recorded through it. A password or code is never checked outside one.
   */
  attempt?: Attempt;
  /** Rows read with the attempt's reservation (one round trip), used instead of reading them again. */
  known?: { account?: AccountRows; user?: UserRow; method?: MethodRow };
}

/** What the password step needs of an address's account, read with its reservation. */
export interface AccountRows {
  email: string;
  user: UserRow | undefined;
  methods: MethodRow[];
  facts: PolicyFacts;
}

/**
 * The account behind an address, its active methods and its directory facts, read together (one round
 * trip on PostgreSQL, src/store/pipeline.ts) and beside the attempt's reservation. They are only looked
 * at once the password is right: nothing about methods or policy is decided before.
 */
export async function accountByEmail(ctx: AppContext, email: string): Promise<AccountRows> {
  const normalised = normaliseEmail(email);
  const [user, methods, facts] = await Promise.all([
    ctx.store.users.findByEmail(email),
    ctx.store.methods.activeForEmail(normalised),
    ctx.store.policy.factsByEmail(normalised, ctx.clock()),
  ]);
  return { email, user, methods: user ? methods : [], facts };
}

/**
 * Applies one event, performing effects until none is left, and saves the new state.
 * Effects that answer with an event (verify-password, begin-challenge, verify-code) feed it back in.
 */
export async function advanceSignIn(ctx: AppContext, input: AdvanceInput): Promise<SignInOutcome> {
  const { token, client, attempt } = input;
  const now = ctx.clock();
  const attemptFor = (effect: SignInEffect['type']): Attempt => {
    if (!attempt) throw new Error(`${effect} outside an attempt: a password or code is checked only within one`);
    return attempt;
  };
  let result: SignInResult = reduceSignIn(input.state, input.event, now);
  let error = result.error;
  const pending: SignInEffect[] = [...result.effects];
  let verifiedHash: { userId: string; hash: string } | null = null;
  let passwordUser: UserRow | undefined;
  // Rows read once in this call and reused by later effects (the password step reads the user and their
  // methods; starting the first challenge needs both again).
  const users = new Map<string, UserRow | undefined>();
  if (input.known?.user) users.set(input.known.user.id, input.known.user);
  const userById = async (id: string) => {
    if (!users.has(id)) users.set(id, await ctx.store.users.findById(id));
    return users.get(id);
  };
  const methodRows = new Map<string, MethodRow>();
  if (input.known?.method) methodRows.set(input.known.method.id, input.known.method);
  const remember = (rows: MethodRow[]) => {
    for (const row of rows) methodRows.set(row.id, row);
    return rows;
  };
  const activeMethods = async (userId: string) => remember(await ctx.store.methods.activeForUser(userId));
  const methodOf = async (userId: string, methodId: string) =>
    methodId === TAP_METHOD_ID ? passMethodRow(userId) : (methodRows.get(methodId) ?? (await ctx.store.methods.findForUser(userId, methodId)));
  const feed = (event: SignInEvent) => {
    result = reduceSignIn(result.state, event, now);
    // Within one call, an error once raised stands: later events only follow from it.
    error = result.error ?? error;
    pending.push(...result.effects);
  };
  const challengeContext = (): ChallengeContext => ({
    purpose: result.state.step === 'second-factor' ? result.state.purpose : 'sign-in',
    binding: flowBinding(token),
    ip: client.ip,
    location: client.location ?? null,
  });

  while (pending.length) {
    const effect = pending.shift()!;
    switch (effect.type) {
      case 'verify-password': {
        attemptFor(effect.type);
        const known = input.known?.account?.email === effect.email ? input.known.account : undefined;
        const user = known ? known.user : await ctx.store.users.findByEmail(effect.email);
        passwordUser = user;
        if (user) users.set(user.id, user);
        let correct = false;
        if (user?.password_hash && input.secret !== undefined) {
          correct = await ctx.hasher.verify(user.password_hash, input.secret);
          if (correct) verifiedHash = { userId: user.id, hash: user.password_hash };
        } else {
          await ctx.hasher.verifyDummy(input.secret ?? '');
        }
        ctx.metrics.passwordVerifications.inc();
        // Only looked up once the password is right: nothing about methods or policy leaks before.
        const allowed =
          user && correct ? await (known ? signInPolicy(ctx, user, remember(known.methods), known.facts) : signInPolicy(ctx, user, await activeMethods(user.id))) : null;
        feed({
          type: 'password-verified',
          account: user
            ? {
                id: user.id,
                email: user.email,
                status: user.status,
                hasPassword: user.password_hash !== null,
                secondFactors: allowed?.usable ?? [],
                defaultMethodId: user.default_method_id,
                policy: allowed?.policy ?? UNRESTRICTED,
              }
            : null,
          passwordCorrect: correct,
          needsRehash: correct && user?.password_hash ? ctx.hasher.needsRehash(user.password_hash) : false,
        });
        break;
      }
      case 'record-password-failure':
        // The client address's budget was reserved when the attempt began; the address's count is here.
        await attemptFor(effect.type).fail(passwordUser?.id ?? null);
        break;
      case 'clear-password-failures':
        await attemptFor(effect.type).succeed();
        break;
      case 'rehash-password':
        if (input.secret !== undefined && verifiedHash?.userId === effect.userId) {
          const next = await ctx.hasher.hash(input.secret);
          await ctx.store.users.replacePasswordHash(effect.userId, verifiedHash.hash, next);
          ctx.logger.info({ userId: effect.userId }, 'password hash upgraded to the current parameters');
        }
        break;
      case 'begin-challenge': {
        const user = await userById(effect.userId);
        const method = await methodOf(effect.userId, effect.methodId);
        if (!user || !method || method.status !== 'active') {
          feed({ type: 'challenge-refused', error: { code: 'method-not-found', params: {} } });
          break;
        }
        try {
          const { challengeId } = await strategyOf(method).beginChallenge(ctx, user, method, challengeContext());
          feed({ type: 'challenge-started', challengeId });
        } catch (caught) {
          if (!isPortcullisError(caught)) throw caught;
          feed({ type: 'challenge-refused', error: { code: caught.code, params: caught.params } });
        }
        break;
      }
      case 'verify-code': {
        attemptFor(effect.type);
        const user = await userById(effect.userId);
        const method = await methodOf(effect.userId, effect.methodId);
        if (!user || !method || method.status !== 'active') {
          feed({ type: 'code-verified', result: { ok: false, reason: 'code-expired' } });
          break;
        }
        const response: ChallengeResponse = input.response ?? { type: 'code', code: input.secret ?? '' };
        const verification = await strategyOf(method).verify(ctx, user, method, effect.challengeId, response, challengeContext());
        feed({ type: 'code-verified', result: verification });
        break;
      }
      case 'record-second-factor-failure':
        await attemptFor(effect.type).fail(effect.userId);
        break;
      case 'clear-second-factor-failures':
        await attemptFor(effect.type).succeed();
        break;
      case 'audit':
        await ctx.store.audit.append({ ...effect.event, ip: client.ip });
        break;
      case 'count-sign-in':
        ctx.metrics.signIns.inc({ outcome: effect.reason === 'success' ? 'success' : 'failure', reason: effect.reason });
        break;
    }
  }

  if ((input.persist ?? true) && result.state.step !== 'complete' && result.state !== input.state) {
    if (input.stored ?? true) await ctx.store.signInFlows.update(hashToken(token), result.state);
    // A sealed password step stays in its cookie until it moves on.
    else if (result.state.step !== 'password') await storeSignInFlow(ctx, token, result.state);
  }
  return { state: result.state, error };
}

/**
 * The password form, posted: the attempt is reserved first (the address's lease, its lockout, the
 * client address's budget), then the password is checked and the result recorded through it.
 */
export async function submitPassword(
  ctx: AppContext,
  input: { token: string; state: Extract<SignInState, { step: 'password' }>; password: string; client: ClientInfo & { ip: string } },
): Promise<SignInOutcome & { token: string }> {
  // A sealed password step is stored, under a new token (the flow's new cookie), only once it moves on
  // to a second factor.
  const sealed = isSealedFlow(input.token);
  const token = sealed ? randomToken(32) : input.token;
  const outcome = await submitPasswordAs(ctx, { ...input, token, stored: !sealed });
  return { ...outcome, token: outcome.state.step === 'second-factor' ? token : input.token };
}

async function submitPasswordAs(
  ctx: AppContext,
  input: { token: string; state: Extract<SignInState, { step: 'password' }>; password: string; client: ClientInfo & { ip: string }; stored: boolean },
): Promise<SignInOutcome> {
  const passwordGiven = input.password.length > 0;
  // The reservation and the account's rows at once: one round trip on PostgreSQL.
  const [started, account] = passwordGiven
    ? await beginWith(beginPasswordAttempt(ctx, { email: input.state.email, ip: input.client.ip }), accountByEmail(ctx, input.state.email))
    : [null, undefined];
  const throttle: ThrottleAssessment = started && !started.granted ? started.throttle : { allowed: true };
  const attempt = started?.granted ? started.attempt : undefined;
  try {
    return await advanceSignIn(ctx, {
      token: input.token,
      state: input.state,
      event: { type: 'password-submitted', passwordGiven, throttle },
      client: input.client,
      secret: input.password,
      stored: input.stored,
      ...(attempt ? { attempt } : {}),
      ...(account ? { known: { account } } : {}),
    });
  } finally {
    await attempt?.end();
  }
}

/** The answer a challenge's form brought, by how the method is answered (its definition's challenge style). */
export function responseFrom(kind: SecondFactorKind, form: Record<string, string>): ChallengeResponse {
  const style = methodDefinitions[kind].challengeStyle;
  if (style === 'external') return { type: 'event' };
  if (style === 'ceremony') {
    try {
      return { type: 'ceremony', response: JSON.parse(form.credential ?? '') as unknown };
    } catch {
      return { type: 'ceremony', response: null };
    }
  }
  return { type: 'code', code: form.code ?? '' };
}

/** The second-factor form, posted: the user's attempt is reserved first, then the answer is checked. */
export async function submitCode(
  ctx: AppContext,
  input: { token: string; state: Extract<SignInState, { step: 'second-factor' }>; form: Record<string, string>; client: ClientInfo & { ip: string } },
): Promise<SignInOutcome> {
  const response = responseFrom(input.state.current.kind, input.form);
  const codeGiven = response.type === 'code' ? response.code.trim().length > 0 : response.type === 'event' || response.response !== null;
  // An empty code field is refused before anything is reserved; a push ("has it been approved?") has
  // no code to type and is checked under the attempt like a code.
  const checked = codeGiven || methodDefinitions[input.state.current.kind].challengeStyle === 'external';
  // The reservation, the user and the method at once: one round trip on PostgreSQL.
  const { userId, current } = input.state;
  const [started, [user, method]] = checked
    ? await beginWith(
        beginSecondFactorAttempt(ctx, { userId, ip: input.client.ip }),
        Promise.all([ctx.store.users.findById(userId), current.methodId === TAP_METHOD_ID ? undefined : ctx.store.methods.findForUser(userId, current.methodId)]),
      )
    : [null, [undefined, undefined]];
  const attempt = started?.granted ? started.attempt : undefined;
  try {
    return await advanceSignIn(ctx, {
      token: input.token,
      state: input.state,
      event: { type: 'code-submitted', codeGiven, throttle: started && !started.granted ? started.throttle : { allowed: true } },
      client: input.client,
      response,
      ...(attempt ? { attempt } : {}),
      known: { ...(user ? { user } : {}), ...(method ? { method } : {}) },
    });
  } finally {
    await attempt?.end();
  }
}

/** The sign-in page of the challenge in progress, as its method's strategy draws it. */
export async function challengePage(ctx: AppContext, token: string, state: Extract<SignInState, { step: 'second-factor' }>): Promise<MethodPage> {
  const current = state.options.find((o) => o.id === state.current.methodId);
  const method = state.current.methodId === TAP_METHOD_ID ? passMethodRow(state.userId) : await ctx.store.methods.findForUser(state.userId, state.current.methodId);
  const strategy = strategyFor(state.current.kind);
  if (!method || !strategy) return { template: 'sign-in/verify.njk', data: { heading: 'Sign in another way', prompt: '', codeLabel: 'Code', canResend: false } };
  const page = await strategy.challengePage(ctx, {
    user: { id: state.userId, email: state.email },
    method,
    detail: current?.detail ?? '',
    challengeId: state.current.challengeId,
    context: { purpose: state.purpose, binding: flowBinding(token), ip: '' },
  });
  return { ...page, data: { ...page.data, hasOtherMethods: state.options.length > 1, canResend: Boolean(page.data.canResend) && strategy.resend !== undefined } };
}

/** What the challenge page's event stream follows (push: the phone's decision), or null when nothing. */
export async function challengeEvents(ctx: AppContext, state: Extract<SignInState, { step: 'second-factor' }>) {
  const strategy = strategyFor(state.current.kind);
  if (!strategy?.challengeEvents || !state.current.challengeId) return null;
  return strategy.challengeEvents(ctx, state.current.challengeId);
}

/** Resends the current challenge's code (text or call), within the resend and quota rules. */
export async function resendChallenge(ctx: AppContext, token: string, state: Extract<SignInState, { step: 'second-factor' }>, ip: string): Promise<void> {
  const user = await ctx.store.users.findById(state.userId);
  const method = await ctx.store.methods.findForUser(state.userId, state.current.methodId);
  if (!user || !method || !state.current.challengeId) return;
  const strategy = strategyOf(method);
  if (!strategy.resend) return;
  await strategy.resend(ctx, user, method, state.current.challengeId, { purpose: state.purpose, binding: flowBinding(token), ip });
}

/** The email form, posted: the first step of the state machine (nothing is looked up or stored yet). */
export function submitEmail(ctx: AppContext, email: string, returnTo: string): SignInResult {
  return reduceSignIn(startSignIn(returnTo), { type: 'email-submitted', email }, ctx.clock());
}

/** "Sign in another way": each of the flow's methods as its option text says it. */
export function otherMethodOptions(state: Extract<SignInState, { step: 'second-factor' }>): Array<{ value: string; text: string; checked: boolean }> {
  return state.options.map((o) => ({ value: o.id, text: describeUse(o), checked: o.id === state.current.methodId }));
}

/**
 * A step-up for someone signed in: the methods their policy lets them confirm with (those reaching an
 * application's `acr` when it asked for one), or null when nothing more is needed.
 */
export async function beginStepUp(ctx: AppContext, session: ActiveSession, returnTo: string, acr: unknown): Promise<Extract<SignInState, { step: 'second-factor' }> | null> {
  return startStepUp({
    userId: session.user.id,
    email: session.user.email,
    options: stepUpOptions(await signInPolicy(ctx, session.user), true, acr),
    defaultMethodId: session.user.default_method_id,
    methods: session.methods,
    returnTo,
  });
}

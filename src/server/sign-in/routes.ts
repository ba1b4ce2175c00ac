/**
 * The sign-in pages: /sign-in (email address, "Continue"), /sign-in/password (password, "Sign in"),
 * /sign-in/verify (the second factor: "Code", "Verify"), /sign-in/other ("Sign in another way"),
 * /sign-in/step-up (confirm with a second factor while signed in), and /sign-out. The steps are the
 * core's state machine; these routes only translate HTTP into its events and its results into pages,
 * cookies and redirects.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { dropSession, endSession, renewSession, startSession, type ClientInfo } from '../../app/sessions.js';
import {
  advanceSignIn,
  beginStepUp,
  challengeEvents,
  challengePage,
  createSignInFlow,
  finishSignInFlow,
  otherMethodOptions,
  resendChallenge,
  signInStep,
  startPasswordStep,
  SIGN_IN_FLOW_SECONDS,
  submitCode,
  submitEmail,
  submitPassword,
} from '../../app/sign-in.js';
import { errorCatalogue, isPortcullisError } from '../../core/errors.js';
import { safeReturnTo } from '../../core/return-to.js';
import type { SignInError, SignInState } from '../../core/sign-in/flow.js';
import { passwordlessPage, signInPasswordless } from '../../app/sign-in-passwordless.js';
import { SESSION_COOKIE, SIGN_IN_COOKIE, cookieOptions } from '../cookies.js';
import { openEventStream } from '../device-api/routes.js';
import { flowAt as flowAtStep } from './flow-cookie.js';
import { field, formError } from '../forms.js';

type SecondFactorState = Extract<SignInState, { step: 'second-factor' }>;
type CompleteState = Extract<SignInState, { step: 'complete' }>;

/**
 * The client's address (behind TRUST_PROXY), user agent, and coarse location when the configured
 * LOCATION_HEADER carries one — only if the request came through a trusted proxy, which set it.
 */
export function clientInfo(request: FastifyRequest, locationHeader?: string | null): ClientInfo & { ip: string } {
  const userAgent = request.headers['user-agent'];
  let location: string | null = null;
  if (locationHeader && request.ip !== request.socket.remoteAddress) {
    const value = request.headers[locationHeader];
    if (typeof value === 'string' && /^[\p{L}\p{N} ,.'()-]{1,60}$/u.test(value.trim())) location = value.trim();
  }
  return { ip: request.ip, userAgent: typeof userAgent === 'string' ? userAgent : null, location };
}

function statusOf(error: SignInError | null): number {
  return error ? errorCatalogue[error.code].status : 200;
}

async function renderEmailStep(ctx: AppContext, reply: FastifyReply, data: { email?: string; returnTo: string; error?: SignInError | null; notice?: string }) {
  const errorView = data.error ? formError(data.error) : {};
  // "Sign in with a passkey", where a method offers passwordless sign-in (src/app/sign-in-passwordless.ts).
  const passwordless = await passwordlessPage(ctx);
  return reply.render(
    'sign-in/email.njk',
    { email: data.email ?? '', returnTo: data.returnTo, notice: data.notice, ...(passwordless ? { passwordlessTemplate: passwordless.template, ...passwordless.data } : {}), ...errorView },
    statusOf(data.error ?? null),
  );
}

function renderPasswordStep(reply: FastifyReply, state: Extract<SignInState, { step: 'password' }>, error: SignInError | null = null) {
  if (error?.retryAfterSeconds) reply.header('retry-after', String(error.retryAfterSeconds));
  return reply.render(
    'sign-in/password.njk',
    { email: state.email, returnTo: state.returnTo, backHref: `/sign-in?returnTo=${encodeURIComponent(state.returnTo)}`, ...(error ? formError(error) : {}) },
    statusOf(error),
  );
}

/** The challenge's page, as its method draws it (a code form, the number for the phone, a passkey ceremony). */
async function renderVerifyStep(ctx: AppContext, reply: FastifyReply, token: string, state: SecondFactorState, error: SignInError | null = null, notice?: string) {
  if (error?.retryAfterSeconds) reply.header('retry-after', String(error.retryAfterSeconds));
  const page = await challengePage(ctx, token, state);
  const errorView = error ? formError({ ...error, field: error.field ?? (error.code.startsWith('code') ? 'code' : undefined) }) : {};
  return reply.render(page.template, { ...page.data, notice, ...errorView }, statusOf(error));
}

export async function signInRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const flowAt = <S extends SignInState['step']>(request: FastifyRequest, step: S) => flowAtStep(ctx, request, step);

  /**
   * The flow finished: start (or renew) the session. Its token, or null for a step-up that is not this
   * browser's session's. Writes only: inside a pipelined request they travel together (src/store/pipeline.ts).
   */
  async function openSession(request: FastifyRequest, token: string, state: CompleteState): Promise<string | null> {
    const client = clientInfo(request);
    await finishSignInFlow(ctx, token);
    if (state.purpose === 'step-up') {
      const session = request.auth;
      if (!session || session.user.id !== state.userId) return null;
      return renewSession(ctx, session, [...session.methods, ...state.methods.filter((m) => m.method !== 'password')], client);
    }
    const sessionToken = await startSession(ctx, {
      userId: state.userId,
      methods: state.methods,
      restricted: state.restricted,
      client,
      registrationGrant: state.offerRegistration,
    });
    // A session this browser already had ends: one sign-in, one session.
    if (request.auth) await dropSession(ctx, request.auth.id);
    return sessionToken;
  }

  /** The flow finished: start (or renew) the session and go where the sign-in was for. */
  async function finish(request: FastifyRequest, reply: FastifyReply, token: string, state: CompleteState) {
    return sendFinished(reply, state, await openSession(request, token, state));
  }

  /** The answer to a finished flow, once its session is written: the cookies, and where to go. */
  function sendFinished(reply: FastifyReply, state: CompleteState, sessionToken: string | null) {
    reply.clearCookie(SIGN_IN_COOKIE, cookieOptions());
    if (!sessionToken) return reply.redirect('/sign-in', 303);
    if (state.purpose === 'step-up') {
      reply.setCookie(SESSION_COOKIE, sessionToken, cookieOptions(ctx.config.sessions.absoluteSeconds));
      reply.rotateCsrf();
      return reply.redirect(state.returnTo, 303);
    }
    // A new session id at sign-in (OWASP ASVS 5 V7.2.4), and a new CSRF seed with it.
    reply.setCookie(SESSION_COOKIE, sessionToken, cookieOptions(ctx.config.sessions.absoluteSeconds));
    reply.rotateCsrf();
    const returnTo = encodeURIComponent(state.returnTo);
    if (state.offerRegistration) return reply.redirect(`/security-info/get-started?returnTo=${returnTo}`, 303);
    // A session restricted by the method policy can only register a compliant method.
    if (state.restricted) return reply.redirect('/security-info', 303);
    // Interrupts the policy has due, decided with the rest of the policy at the password: a campaign's
    // "Set it up now" or "Remind me later".
    if (state.campaignDue) return reply.redirect(`/security-info/campaign?returnTo=${returnTo}`, 303);
    return reply.redirect(state.returnTo, 303);
  }

  app.get('/sign-in', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const returnTo = safeReturnTo(query.returnTo);
    // `prompt=login`: an application asked for a fresh sign-in (OpenID Connect Core 1.0 §3.1.2.1 prompt=login,
    // max_age): a signed-in person signs in again, which ends their old session (finish, above).
    if (request.auth && request.auth.restricted === null && query.prompt !== 'login') return reply.redirect(returnTo, 303);
    const notice =
      query.activated === '1'
        ? 'Your password has been saved. Sign in with it now.'
        : query.reset === '1'
          ? 'Your password has been changed. Sign in with your new password.'
          : undefined;
    // An application's login_hint (OpenID Connect Core 1.0 §3.1.2.1, passed on by src/app/oidc/interactions.ts)
    // fills in the field; the person still chooses Continue.
    const hint = typeof query.login_hint === 'string' && query.login_hint.length <= 320 ? query.login_hint : undefined;
    return renderEmailStep(ctx, reply, { returnTo, notice, ...(hint ? { email: hint } : {}) });
  });

  app.post('/sign-in', async (request, reply) => {
    const email = field(request.body, 'email');
    const returnTo = safeReturnTo(field(request.body, 'returnTo'));
    const result = submitEmail(ctx, email, returnTo);
    if (result.error || result.state.step !== 'password') return renderEmailStep(ctx, reply, { email, returnTo, error: result.error });
    const previous = request.cookies[SIGN_IN_COOKIE];
    if (previous) await finishSignInFlow(ctx, previous);
    // Nothing is stored yet: the password step lives sealed in its cookie (src/app/sign-in.ts).
    reply.setCookie(SIGN_IN_COOKIE, await startPasswordStep(ctx, result.state), cookieOptions(SIGN_IN_FLOW_SECONDS));
    return reply.redirect('/sign-in/password', 303);
  });

  app.get('/sign-in/password', async (request, reply) => {
    const flow = await flowAt(request, 'password');
    if (!flow) return reply.redirect('/sign-in', 303);
    return renderPasswordStep(reply, flow.state);
  });

  app.post('/sign-in/password', async (request, reply) => {
    const flow = await flowAt(request, 'password');
    if (!flow) return renderEmailStep(ctx, reply, { returnTo: '/account', error: { code: 'sign-in-expired', params: {}, field: 'email' } });
    const password = field(request.body, 'password');
    const client = clientInfo(request, ctx.config.locationHeader);
    // The attempt and the account's rows in one round trip, the closing writes in another
    // (src/store/pipeline.ts); the answer goes once they are written.
    const { outcome, sessionToken } = await signInStep(ctx, async () => {
      const outcome = await submitPassword(ctx, { token: flow.token, state: flow.state, password, client });
      return { outcome, sessionToken: outcome.state.step === 'complete' ? await openSession(request, flow.token, outcome.state) : null };
    });
    if (outcome.state.step === 'complete') return sendFinished(reply, outcome.state, sessionToken);
    if (outcome.state.step === 'second-factor') {
      if (outcome.token !== flow.token) reply.setCookie(SIGN_IN_COOKIE, outcome.token, cookieOptions(SIGN_IN_FLOW_SECONDS));
      if (outcome.error) return renderVerifyStep(ctx, reply, outcome.token, outcome.state, outcome.error);
      return reply.redirect('/sign-in/verify', 303);
    }
    if (outcome.state.step !== 'password') return reply.redirect('/sign-in', 303);
    return renderPasswordStep(reply, outcome.state, outcome.error);
  });

  app.get('/sign-in/verify', async (request, reply) => {
    const flow = await flowAt(request, 'second-factor');
    if (!flow) return reply.redirect('/sign-in', 303);
    const notice = (request.query as Record<string, unknown>).resent === '1' ? 'We have sent you a new code.' : undefined;
    return renderVerifyStep(ctx, reply, flow.token, flow.state, null, notice);
  });

  app.post('/sign-in/verify', async (request, reply) => {
    const flow = await flowAt(request, 'second-factor');
    if (!flow) return renderEmailStep(ctx, reply, { returnTo: '/account', error: { code: 'sign-in-expired', params: {}, field: 'email' } });
    const form = { code: field(request.body, 'code'), credential: field(request.body, 'credential') };
    // As the password step: the reservation with the user and method, then the closing writes together.
    const { outcome, sessionToken } = await signInStep(ctx, async () => {
      const outcome = await submitCode(ctx, { token: flow.token, state: flow.state, form, client: clientInfo(request) });
      return { outcome, sessionToken: outcome.state.step === 'complete' ? await openSession(request, flow.token, outcome.state) : null };
    });
    if (outcome.state.step === 'complete') return sendFinished(reply, outcome.state, sessionToken);
    if (outcome.state.step === 'reset-new-password') return reply.redirect('/forgot-password/new-password', 303);
    if (outcome.state.step !== 'second-factor') return reply.redirect('/sign-in', 303);
    return renderVerifyStep(ctx, reply, flow.token, outcome.state, outcome.error);
  });

  /**
   * The challenge page's event stream, for a method answered elsewhere (push: the phone): one `decision`
   * event when it is answered, or at its expiry.
   */
  app.get('/sign-in/push-events', async (request, reply) => {
    const flow = await flowAt(request, 'second-factor');
    const events = flow ? await challengeEvents(ctx, flow.state) : null;
    if (!events) return reply.code(204).send();
    let unsubscribe = () => {};
    let timer: NodeJS.Timeout | undefined;
    const stream = openEventStream(reply, () => {
      unsubscribe();
      clearTimeout(timer);
    });
    unsubscribe = ctx.bus.subscribe(events.topic, (status) => {
      stream.send('decision', JSON.stringify({ status }));
      stream.end();
    });
    if (events.status !== null) {
      stream.send('decision', JSON.stringify({ status: events.status }));
      return stream.end();
    }
    // At expiry, tell the page too: continuing shows that the request timed out.
    timer = setTimeout(() => {
      stream.send('decision', JSON.stringify({ status: 'expired' }));
      stream.end();
    }, Math.max(0, events.expiresAt.getTime() - ctx.clock().getTime()) + 500);
    timer.unref();
  });

  app.post('/sign-in/resend', async (request, reply) => {
    const flow = await flowAt(request, 'second-factor');
    if (!flow) return reply.redirect('/sign-in', 303);
    try {
      await resendChallenge(ctx, flow.token, flow.state, request.ip);
    } catch (error) {
      if (!isPortcullisError(error)) throw error;
      return renderVerifyStep(ctx, reply, flow.token, flow.state, { code: error.code, params: error.params });
    }
    return reply.redirect('/sign-in/verify?resent=1', 303);
  });

  const renderOther = (reply: FastifyReply, state: SecondFactorState, error: SignInError | null = null) =>
    reply.render(
      'sign-in/other.njk',
      {
        backHref: '/sign-in/verify',
        options: otherMethodOptions(state),
        ...(error ? formError({ ...error, field: 'method' }) : {}),
      },
      statusOf(error),
    );

  app.get('/sign-in/other', async (request, reply) => {
    const flow = await flowAt(request, 'second-factor');
    if (!flow) return reply.redirect('/sign-in', 303);
    return renderOther(reply, flow.state);
  });

  app.post('/sign-in/other', async (request, reply) => {
    const flow = await flowAt(request, 'second-factor');
    if (!flow) return reply.redirect('/sign-in', 303);
    const outcome = await advanceSignIn(ctx, {
      token: flow.token,
      state: flow.state,
      event: { type: 'method-chosen', methodId: field(request.body, 'method') },
      client: clientInfo(request, ctx.config.locationHeader),
    });
    if (outcome.state.step !== 'second-factor') return reply.redirect('/sign-in', 303);
    if (outcome.error?.code === 'method-choice-missing') return renderOther(reply, outcome.state, outcome.error);
    if (outcome.error) return renderVerifyStep(ctx, reply, flow.token, outcome.state, outcome.error);
    return reply.redirect('/sign-in/verify', 303);
  });

  /** Confirm it is you with a second factor, for changes that need one (Security info). */
  app.get('/sign-in/step-up', async (request, reply) => {
    const returnTo = safeReturnTo((request.query as Record<string, unknown>).returnTo);
    const session = request.auth;
    if (!session) return reply.redirect(`/sign-in?returnTo=${encodeURIComponent(returnTo)}`, 303);
    // Starting a step-up may send a text or make a call: not at another site's bidding (a cross-site
    // link or image), only from our own pages or a typed address (Fetch Metadata).
    const site = request.headers['sec-fetch-site'];
    if (site === 'cross-site' || site === 'same-site') return reply.redirect('/security-info', 303);
    const started = await beginStepUp(ctx, session, returnTo, (request.query as Record<string, unknown>).acr);
    if (!started) return reply.redirect(returnTo, 303);
    const previous = request.cookies[SIGN_IN_COOKIE];
    if (previous) await finishSignInFlow(ctx, previous);
    const { token } = await createSignInFlow(ctx, started);
    reply.setCookie(SIGN_IN_COOKIE, token, cookieOptions(SIGN_IN_FLOW_SECONDS));
    // Start the prompted method's challenge (send its code) like any other choice of method.
    const outcome = await advanceSignIn(ctx, {
      token,
      state: started,
      event: { type: 'method-chosen', methodId: started.current.methodId },
      client: clientInfo(request, ctx.config.locationHeader),
    });
    if (outcome.error && outcome.state.step === 'second-factor') return renderVerifyStep(ctx, reply, token, outcome.state, outcome.error);
    return reply.redirect('/sign-in/verify', 303);
  });

  /** Passwordless sign-in: the email page's "Sign in with a passkey" (or the browser's autofill of one). */
  app.post('/sign-in/passwordless', async (request, reply) => {
    const returnTo = safeReturnTo(field(request.body, 'returnTo'));
    try {
      const { sessionToken } = await signInPasswordless(ctx, { credential: field(request.body, 'credential') }, clientInfo(request));
      if (request.auth) await dropSession(ctx, request.auth.id);
      // A new session id at sign-in (OWASP ASVS 5 V7.2.4), and a new CSRF seed with it.
      reply.setCookie(SESSION_COOKIE, sessionToken, cookieOptions(ctx.config.sessions.absoluteSeconds));
      reply.rotateCsrf();
      return reply.redirect(returnTo, 303);
    } catch (error) {
      if (!isPortcullisError(error)) throw error;
      return renderEmailStep(ctx, reply, { returnTo, error: { code: error.code, params: error.params, field: 'passwordless' } });
    }
  });

  app.post('/sign-out', async (request, reply) => {
    if (request.auth) await endSession(ctx, request.auth, clientInfo(request));
    reply.clearCookie(SESSION_COOKIE, cookieOptions());
    reply.rotateCsrf();
    return reply.redirect('/signed-out', 303);
  });

  app.get('/signed-out', async (request, reply) => {
    if (request.auth) return reply.redirect('/account', 303);
    return reply.render('signed-out.njk', { everywhere: (request.query as Record<string, unknown>).everywhere === '1' });
  });
}

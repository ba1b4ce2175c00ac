/**
 * The sign-in pages: /sign-in (email address, "Continue"), /sign-in/password (password, "Sign in"),
 * and /sign-out. The steps are the core's state machine; these routes only translate HTTP into its
 * events and its results into pages, cookies and redirects.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { endSession, startSession, type ClientInfo } from '../../app/sessions.js';
import { advanceSignIn, assessThrottle, createSignInFlow, finishSignInFlow, loadSignInFlow, SIGN_IN_FLOW_SECONDS } from '../../app/sign-in.js';
import { errorCatalogue } from '../../core/errors.js';
import { safeReturnTo } from '../../core/return-to.js';
import { reduceSignIn, startSignIn, type SignInError, type SignInState } from '../../core/sign-in/flow.js';
import { SESSION_COOKIE, SIGN_IN_COOKIE, cookieOptions } from '../cookies.js';
import { field, formError } from '../forms.js';

export function clientInfo(request: FastifyRequest): ClientInfo & { ip: string } {
  const userAgent = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof userAgent === 'string' ? userAgent : null };
}

function renderEmailStep(reply: FastifyReply, data: { email?: string; returnTo: string; error?: SignInError | null; notice?: string }) {
  const errorView = data.error ? formError(data.error) : {};
  return reply.render(
    'sign-in/email.njk',
    { email: data.email ?? '', returnTo: data.returnTo, notice: data.notice, ...errorView },
    data.error ? errorCatalogue[data.error.code].status : 200,
  );
}

function renderPasswordStep(reply: FastifyReply, state: Extract<SignInState, { step: 'password' }>, error: SignInError | null = null) {
  if (error?.retryAfterSeconds) reply.header('retry-after', String(error.retryAfterSeconds));
  return reply.render(
    'sign-in/password.njk',
    { email: state.email, returnTo: state.returnTo, backHref: `/sign-in?returnTo=${encodeURIComponent(state.returnTo)}`, ...(error ? formError(error) : {}) },
    error ? errorCatalogue[error.code].status : 200,
  );
}

export async function signInRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get('/sign-in', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const returnTo = safeReturnTo(query.returnTo);
    if (request.auth && request.auth.restricted === null) return reply.redirect(returnTo, 303);
    const notice = query.activated === '1' ? 'Your password has been saved. Sign in with it now.' : undefined;
    return renderEmailStep(reply, { returnTo, notice });
  });

  app.post('/sign-in', async (request, reply) => {
    const email = field(request.body, 'email');
    const returnTo = safeReturnTo(field(request.body, 'returnTo'));
    const result = reduceSignIn(startSignIn(returnTo), { type: 'email-submitted', email }, ctx.clock());
    if (result.error) return renderEmailStep(reply, { email, returnTo, error: result.error });
    const previous = request.cookies[SIGN_IN_COOKIE];
    if (previous) await finishSignInFlow(ctx, previous);
    const { token } = await createSignInFlow(ctx, result.state);
    reply.setCookie(SIGN_IN_COOKIE, token, cookieOptions(SIGN_IN_FLOW_SECONDS));
    return reply.redirect('/sign-in/password', 303);
  });

  app.get('/sign-in/password', async (request, reply) => {
    const state = await loadSignInFlow(ctx, request.cookies[SIGN_IN_COOKIE]);
    if (state?.step !== 'password') return reply.redirect('/sign-in', 303);
    return renderPasswordStep(reply, state);
  });

  app.post('/sign-in/password', async (request, reply) => {
    const token = request.cookies[SIGN_IN_COOKIE];
    const state = await loadSignInFlow(ctx, token);
    if (!token || state?.step !== 'password') {
      return renderEmailStep(reply, { returnTo: '/account', error: { code: 'sign-in-expired', params: {}, field: 'email' } });
    }
    const password = field(request.body, 'password');
    const client = clientInfo(request);
    const throttle = await assessThrottle(ctx, state.email, client.ip, ctx.clock());
    const outcome = await advanceSignIn(ctx, token, state, { type: 'password-submitted', passwordGiven: password.length > 0, throttle }, client, password);

    if (outcome.state.step === 'complete') {
      const sessionToken = await startSession(ctx, {
        userId: outcome.state.userId,
        methods: outcome.state.methods,
        restricted: outcome.state.restricted,
        client,
      });
      await finishSignInFlow(ctx, token);
      // A session this browser already had ends: one sign-in, one session.
      if (request.auth) await ctx.store.sessions.delete(request.auth.id);
      // A new session id at sign-in (OWASP ASVS 5 V7.2.4), and a new CSRF seed with it.
      reply.setCookie(SESSION_COOKIE, sessionToken, cookieOptions(ctx.config.sessions.absoluteSeconds));
      reply.clearCookie(SIGN_IN_COOKIE, cookieOptions());
      reply.rotateCsrf();
      return reply.redirect(outcome.state.returnTo, 303);
    }
    if (outcome.state.step !== 'password') return reply.redirect('/sign-in', 303);
    return renderPasswordStep(reply, outcome.state, outcome.error);
  });

  app.post('/sign-out', async (request, reply) => {
    if (request.auth) await endSession(ctx, request.auth, clientInfo(request));
    reply.clearCookie(SESSION_COOKIE, cookieOptions());
    reply.rotateCsrf();
    return reply.redirect('/signed-out', 303);
  });

  app.get('/signed-out', async (request, reply) => {
    if (request.auth) return reply.redirect('/account', 303);
    return reply.render('signed-out.njk');
  });
}

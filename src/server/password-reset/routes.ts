/**
 * "Forgot your password?": /forgot-password (email address), /forgot-password/code (the emailed code),
 * then the sign-in second-factor pages (/sign-in/verify, "Sign in another way"), then
 * /forgot-password/new-password. The flow rides on the sign-in flow cookie and state machine.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { completePasswordReset, requestPasswordReset, verifyResetEmailCode } from '../../app/password-reset.js';
import { finishSignInFlow, SIGN_IN_FLOW_SECONDS } from '../../app/sign-in.js';
import { errorCatalogue, isPortcullisError, type ErrorCode, type ErrorParams } from '../../core/errors.js';
import { passwordLength } from '../../core/password-rules.js';
import type { SignInState } from '../../core/sign-in/flow.js';
import { SIGN_IN_COOKIE, cookieOptions } from '../cookies.js';
import { flowAt as flowAtStep } from '../sign-in/flow-cookie.js';
import { field, formError } from '../forms.js';
import { clientInfo } from '../sign-in/routes.js';

type FormProblem = { code: ErrorCode; params?: ErrorParams; field?: string };

export async function passwordResetRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const flowAt = <S extends SignInState['step']>(request: FastifyRequest, step: S) => flowAtStep(ctx, request, step);

  const status = (problem: FormProblem | null) => (problem ? errorCatalogue[problem.code].status : 200);

  const renderEmail = (reply: FastifyReply, email = '', problem: FormProblem | null = null) =>
    reply.render('password-reset/email.njk', { backHref: '/sign-in', email, ...(problem ? formError(problem) : {}) }, status(problem));

  app.get('/forgot-password', async (_request, reply) => renderEmail(reply));

  app.post('/forgot-password', async (request, reply) => {
    const email = field(request.body, 'email');
    try {
      const { token } = await requestPasswordReset(ctx, email, clientInfo(request), '/account');
      const previous = request.cookies[SIGN_IN_COOKIE];
      if (previous) await finishSignInFlow(ctx, previous);
      reply.setCookie(SIGN_IN_COOKIE, token, cookieOptions(SIGN_IN_FLOW_SECONDS));
    } catch (error) {
      if (!isPortcullisError(error)) throw error;
      return renderEmail(reply, email, { code: error.code, params: error.params, field: 'email' });
    }
    return reply.redirect('/forgot-password/code', 303);
  });

  const renderCode = (reply: FastifyReply, email: string, problem: FormProblem | null = null) =>
    reply.render('password-reset/code.njk', { backHref: '/forgot-password', email, ...(problem ? formError(problem) : {}) }, status(problem));

  app.get('/forgot-password/code', async (request, reply) => {
    const flow = await flowAt(request, 'reset-email-code');
    if (!flow) return reply.redirect('/forgot-password', 303);
    return renderCode(reply, flow.state.email);
  });

  app.post('/forgot-password/code', async (request, reply) => {
    const flow = await flowAt(request, 'reset-email-code');
    if (!flow) return reply.redirect('/forgot-password', 303);
    const outcome = await verifyResetEmailCode(ctx, flow.token, flow.state, field(request.body, 'code'), clientInfo(request));
    if (outcome.state.step === 'second-factor') return reply.redirect('/sign-in/verify', 303);
    if (outcome.error?.code === 'reset-needs-second-method') {
      return reply.render('error.njk', { title: 'You cannot reset your password here', message: formatMessage(outcome.error.code), linkHref: '/sign-in', linkText: 'Go to sign in' }, 403);
    }
    return renderCode(reply, flow.state.email, outcome.error ? { code: outcome.error.code, params: outcome.error.params, field: 'code' } : null);
  });

  const renderNewPassword = (reply: FastifyReply, email: string, problem: FormProblem | null = null) =>
    reply.render('password-reset/new-password.njk', { email, minLength: ctx.config.passwordRules.minLength, ...(problem ? formError(problem) : {}) }, status(problem));

  app.get('/forgot-password/new-password', async (request, reply) => {
    const flow = await flowAt(request, 'reset-new-password');
    if (!flow) return reply.redirect('/forgot-password', 303);
    return renderNewPassword(reply, flow.state.email);
  });

  app.post('/forgot-password/new-password', async (request, reply) => {
    const flow = await flowAt(request, 'reset-new-password');
    if (!flow) return reply.redirect('/forgot-password', 303);
    const password = field(request.body, 'password');
    const confirm = field(request.body, 'confirm');
    if (password !== '' && passwordLength(password) >= ctx.config.passwordRules.minLength && password !== confirm) {
      return renderNewPassword(reply, flow.state.email, { code: 'new-password-mismatch', field: 'confirm' });
    }
    try {
      await completePasswordReset(ctx, flow.token, flow.state, password, clientInfo(request));
    } catch (error) {
      if (!isPortcullisError(error) || !error.code.startsWith('new-password-')) throw error;
      return renderNewPassword(reply, flow.state.email, { code: error.code, params: error.params, field: 'password' });
    }
    reply.clearCookie(SIGN_IN_COOKIE, cookieOptions());
    return reply.redirect('/sign-in?reset=1', 303);
  });
}

function formatMessage(code: ErrorCode): string {
  return errorCatalogue[code].message;
}

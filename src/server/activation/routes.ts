/**
 * Activation links: a new user (imported, or added without a password) sets a first password from a
 * one-time link. The token sits in the path; logs redact it and Referrer-Policy: same-origin keeps it
 * from leaking to other sites.
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { activateAccount, findActivation } from '../../app/directory.js';
import { formatErrorMessage, isPortcullisError } from '../../core/errors.js';
import { passwordLength } from '../../core/password-rules.js';
import { field, formError } from '../forms.js';
import { clientInfo } from '../sign-in/routes.js';

export async function activationRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const invalid = (reply: import('fastify').FastifyReply) =>
    reply.render('error.njk', { title: 'This link has expired', message: formatErrorMessage('activation-link-invalid') }, 410);

  app.get<{ Params: { token: string } }>('/activate/:token', async (request, reply) => {
    const user = await findActivation(ctx, request.params.token);
    if (!user) return invalid(reply);
    return reply.render('activate.njk', {
      email: user.email,
      minLength: ctx.config.passwordRules.minLength,
      formAction: `/activate/${request.params.token}`,
    });
  });

  app.post<{ Params: { token: string } }>('/activate/:token', async (request, reply) => {
    const { token } = request.params;
    const user = await findActivation(ctx, token);
    if (!user) return invalid(reply);
    const password = field(request.body, 'password');
    const confirm = field(request.body, 'confirm');
    const page = { email: user.email, minLength: ctx.config.passwordRules.minLength, formAction: `/activate/${token}` };
    if (password.length > 0 && passwordLength(password) >= ctx.config.passwordRules.minLength && password !== confirm) {
      return reply.render('activate.njk', { ...page, ...formError({ code: 'new-password-mismatch', field: 'confirm' }) }, 400);
    }
    try {
      await activateAccount(ctx, token, password, clientInfo(request).ip);
    } catch (error) {
      if (isPortcullisError(error) && error.code.startsWith('new-password-')) {
        return reply.render('activate.njk', { ...page, ...formError({ code: error.code, params: error.params, field: 'password' }) }, error.status);
      }
      if (isPortcullisError(error) && error.code === 'activation-link-invalid') return invalid(reply);
      throw error;
    }
    return reply.redirect('/sign-in?activated=1', 303);
  });
}

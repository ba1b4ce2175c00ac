/**
 * Resolves the session cookie into `request.auth` on page surfaces, and offers `requireSession` for
 * pages that need a signed-in user.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AppContext } from '../../app/context.js';
import { resolveSession } from '../../app/sessions.js';
import { SESSION_COOKIE, cookieOptions } from '../cookies.js';

export const sessions = fp<{ ctx: AppContext }>(
  async (app, { ctx }) => {
    app.decorateRequest('auth', null);
    app.addHook('preHandler', async (request, reply) => {
      if (request.routeOptions.config?.surface === 'api') return;
      const token = request.cookies[SESSION_COOKIE];
      if (!token) return;
      request.auth = await resolveSession(ctx, token);
      if (!request.auth) reply.clearCookie(SESSION_COOKIE, cookieOptions());
    });
  },
  { name: 'sessions', dependencies: ['@fastify/cookie'] },
);

/**
 * preHandler: sends people who are not signed in to the sign-in page, to come back here after, and
 * people in a restricted session to Security info.
 */
export async function requireSession(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (request.auth && request.auth.restricted === null) return;
  // A session restricted by the method policy may only register a compliant method on Security info.
  if (request.auth) return void (await reply.redirect('/security-info', 303));
  const returnTo = request.method === 'GET' ? request.url : '/account';
  await reply.redirect(`/sign-in?returnTo=${encodeURIComponent(returnTo)}`, 303);
}

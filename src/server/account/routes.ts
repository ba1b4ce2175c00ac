/**
 * "My account": the signed-in landing page. Security info (second factors) grows beside it.
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { accountSummary } from '../../app/directory.js';
import { listAllowedApplications, revokeAllowedApplication } from '../../app/oidc/grants.js';
import { SCOPE_DESCRIPTIONS } from '../../app/oidc/interactions.js';
import { field } from '../forms.js';
import { requireSession } from '../plugins/session.js';
import { clientInfo } from '../sign-in/routes.js';

const METHOD_NAMES: Record<string, string> = {
  password: 'your password',
  totp: 'a code from your authenticator app',
  sms: 'a code sent by text message',
  voice: 'a code read out in a phone call',
};

export function formatDateTime(date: Date): string {
  return new Intl.DateTimeFormat('en-GB', {
    dateStyle: 'long',
    timeStyle: 'short',
    timeZone: 'Europe/London',
  }).format(date);
}

export async function accountRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get('/', async (request, reply) => reply.redirect(request.auth ? '/account' : '/sign-in', 303));

  app.get('/account', { preHandler: requireSession }, async (request, reply) => {
    const session = request.auth!;
    const user = session.user;
    const { organisation, roleLines, administrator } = await accountSummary(ctx, user);
    const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    // The applications this person allowed (docs/oidc.md#consent), to see and remove.
    const applications = (await listAllowedApplications(ctx, user.id)).map((application) => ({
      grantId: application.grantId,
      name: application.name,
      allowedAt: formatDateTime(application.allowedAt),
      scopes: application.scopes.map((scope) => SCOPE_DESCRIPTIONS[scope] ?? scope),
    }));
    return reply.render('account.njk', {
      applications,
      removed: (request.query as Record<string, unknown>).removed === '1',
      user: { displayName: user.display_name, email: user.email, organisation: organisation?.name ?? '' },
      rolesHtml: roleLines.map(escape).join('<br>'),
      administrator,
      signedInAt: formatDateTime(session.createdAt),
      methodsUsed: session.methods.map((m) => METHOD_NAMES[m.method] ?? m.method).join(' and '),
    });
  });

  /** Removes an application's access: its grant and every token issued under it. */
  app.post('/account/applications/remove', { preHandler: requireSession }, async (request, reply) => {
    await revokeAllowedApplication(ctx, request.auth!.user.id, field(request.body, 'grantId'), clientInfo(request));
    // Someone else's grant id, or one already gone, changes nothing and says nothing about it.
    return reply.redirect('/account?removed=1', 303);
  });
}

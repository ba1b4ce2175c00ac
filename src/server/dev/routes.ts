/**
 * Development pages, registered only when DEVELOPMENT_PAGES=true (which loadConfig allows only with a
 * localhost PUBLIC_URL): /dev/outbox lists the messages the development `outbox` provider "sent", codes
 * included, so a developer can sign in with a text-message code without a phone.
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../app/context.js';

const CHANNEL_NAMES = { sms: 'Text message', voice: 'Voice call', email: 'Email' } as const;

const TIME = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'Europe/London' });

export async function devRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get<{ Querystring: { to?: string } }>(
    '/dev/outbox',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { to: { type: 'string', maxLength: 320 } },
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const to = request.query.to?.trim() ?? '';
      const messages = await ctx.delivery.listOutbox({ limit: 50, to: to || undefined });
      reply.header('x-robots-tag', 'noindex');
      return reply.render('dev/outbox.njk', {
        to,
        providers: ctx.config.delivery.providers,
        rows: messages.map((m) =>
          [
            TIME.format(new Date(m.createdAt)),
            CHANNEL_NAMES[m.channel],
            m.to,
            m.subject ? `${m.subject}: ${m.text}` : m.text,
            m.code ?? 'None',
            m.status,
          ].map((text) => ({ text })),
        ),
      });
    },
  );
}

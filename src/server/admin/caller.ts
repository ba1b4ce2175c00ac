/**
 * Who is using the admin console: the signed-in person as an admin caller (src/app/admin-api.ts), or a
 * page that says why they may not (403 for no administering role, or for not meeting the policy now).
 * Every console page starts here, so the console shares the API's scope and its compliance rule.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { adminCallerForSession, type AdminCaller } from '../../app/admin-api.js';
import type { AppContext } from '../../app/context.js';
import { errorCatalogue, formatErrorMessage, isPortcullisError } from '../../core/errors.js';

/** The caller, or null once the refusal page has been sent. */
export async function consoleCaller(ctx: AppContext, request: FastifyRequest, reply: FastifyReply): Promise<AdminCaller | null> {
  try {
    return await adminCallerForSession(ctx, request.auth!);
  } catch (error) {
    if (!isPortcullisError(error)) throw error;
    await refuse(reply, error);
    return null;
  }
}

/** A refused console action or read, as a page: the catalogue's status and words. */
export async function refuse(reply: FastifyReply, error: unknown): Promise<void> {
  if (!isPortcullisError(error)) throw error;
  const status = errorCatalogue[error.code].status;
  await reply.render(
    'error.njk',
    {
      title: status === 403 ? 'You cannot use the admin console' : status === 404 ? 'Page not found' : 'Something went wrong',
      message: formatErrorMessage(error.code, error.params),
      linkHref: status === 403 ? '/account' : '/admin',
      linkText: status === 403 ? 'Go to My account' : 'Go to the admin console',
    },
    status,
  );
}

/** A console page's query string (GET filter forms). */
export type ConsoleQuery = Record<string, unknown>;

/** An organisation's or a user's id, as the console's filters take them. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One query-string value: absent and empty are the same (undefined); a repeated key is not a value (null). */
export function one(query: ConsoleQuery, key: string): string | undefined | null {
  const value = query[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return null;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

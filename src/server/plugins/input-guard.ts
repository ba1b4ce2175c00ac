/**
 * Refuses, as a 400 naming the field, any path parameter, query or body value holding a character that
 * cannot be stored as it was sent: U+0000 (PostgreSQL refuses it in text, so it used to be a 500 there
 * and silently accepted on SQLite) and unpaired surrogates (no UTF-8 form: the drivers would store
 * U+FFFD instead). No field of ours means either, so the request is refused before any route sees it,
 * and nothing changes (issue #12; OWASP ASVS 5 V2.2, input validation). Other
 * characters are for each field's own rules (names, emails, codes).
 */
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { PortcullisError } from '../../core/errors.js';

// With the u flag a well-formed pair is one code point, so only unpaired surrogates match.
const UNSTORABLE = /[\u0000\ud800-\udfff]/u;
/** Field names safe to repeat in a message; anything else is named as "request". */
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,40}$/;
const MAX_DEPTH = 8;

/** The name of the first field (dotted for nested JSON) whose value cannot be stored, if any. */
export function unstorableField(value: unknown, name = '', depth = 0): string | null {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? name : null;
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return null;
  for (const [key, item] of Object.entries(value)) {
    // Array items are the field itself (a repeated form field), object members are named within it.
    const found = unstorableField(item, Array.isArray(value) ? name : name ? `${name}.${key}` : key, depth + 1);
    if (found !== null) return found;
  }
  return null;
}

function check(request: FastifyRequest): void {
  for (const part of [request.params, request.query, request.body]) {
    const field = unstorableField(part);
    if (field === null) continue;
    if (!FIELD_NAME.test(field)) throw new PortcullisError('request-invalid');
    throw new PortcullisError('field-characters-invalid', { field });
  }
}

export const inputGuard = fp(
  async (app) => {
    // preValidation: after the body is parsed, before CSRF, sessions and the route.
    app.addHook('preValidation', async (request) => check(request));
  },
  { name: 'input-guard' },
);

/**
 * The admin API, /api/admin/v1 (issue #15 point 6): the same reads and actions as the console, for the
 * service owners' own tooling. Each route declares its JSON schemas; Fastify validates requests with
 * them and @fastify/swagger (the Fastify convention) generates the OpenAPI document from them, served
 * at /api/admin/v1/openapi.json. Authenticated by a personal API token (`portcullis token add`), acting
 * as its holder within their roles' scope; errors are RFC 9457 `application/problem+json` with a stable
 * `code`. Cookies and CSRF play no part (`csrf: false`); answers are JSON (`surface: 'api'`).
 */
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  auditLog,
  authenticateAdmin,
  dashboard,
  disableFor,
  enableFor,
  grantExceptionFor,
  issuePassFor,
  requireReRegistrationFor,
  revokeSessionsFor,
  searchUserPages,
  searchUsers,
  changeGroupFor,
  changeRoleFor,
  signInLog,
  unblockPushFor,
  userDetail,
  type AdminCaller,
} from '../../app/admin-api.js';
import type { AppContext } from '../../app/context.js';
import { formatErrorMessage, isPortcullisError } from '../../core/errors.js';
import { registerPolicyApi } from './policy-routes.js';
import { config, errors, reason, sendCsv, sendProblem, sendUserCsv } from './shared.js';
import { STATE_NAMES, type StateName } from '../../app/compliance.js';

const PREFIX = '/api/admin/v1';

// ajv-formats is CommonJS: its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;
const validator = addFormats(new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: 'array', allErrors: false, strict: false }));
const userId = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', format: 'uuid' } } } as const;

const signInEntry = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    at: { type: 'string' },
    result: { type: 'string' },
    reason: { type: 'string' },
    reasonText: { type: 'string' },
    methods: { type: 'array', items: { type: 'string' } },
    email: { type: ['string', 'null'] },
    organisation: { type: ['string', 'null'] },
    ip: { type: ['string', 'null'] },
  },
} as const;

const userSummary = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    email: { type: 'string' },
    name: { type: 'string' },
    organisation: { type: 'string' },
    status: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    groups: { type: 'array', items: { type: 'string' } },
    methods: { type: 'array', items: { type: 'string' } },
    compliance: { type: ['string', 'null'] },
  },
} as const;

/** Schema failures name the field (`field`); our own refusals keep their catalogue code. */
function answerError(error: FastifyError, reply: FastifyReply): FastifyReply {
  if (error.validation) {
    const first = error.validation[0];
    const path = first?.instancePath?.replace(/^\//, '').replace(/\//g, '.') || (first?.params as { missingProperty?: string } | undefined)?.missingProperty || '';
    const field = path || (first?.params as { additionalProperty?: string } | undefined)?.additionalProperty || undefined;
    const where = error.validationContext ?? 'body';
    return sendProblem(reply, 400, 'request-invalid', `${where}${field ? `.${field}` : ''} ${first?.message ?? 'is not valid'}`, field);
  }
  if (isPortcullisError(error)) return sendProblem(reply, error.status, error.code, formatErrorMessage(error.code, error.params));
  // Fastify's own refusals of a request (a body that is not JSON, or carries __proto__; one too large).
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) return sendProblem(reply, error.statusCode, 'request-invalid', error.message);
  throw error;
}

export async function adminApiRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  await app.register(async (api) => {
    await api.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: 'Portcullis admin API', version: '1', description: 'Users, passes and sessions, within the scope of the token holder’s roles.' },
        servers: [{ url: ctx.config.publicOrigin }],
        components: { securitySchemes: { token: { type: 'http', scheme: 'bearer', description: 'A personal API token from `portcullis token add`' } } },
        security: [{ token: [] }],
      },
    });
    // Unknown fields are refused, not quietly dropped (Fastify's default validator removes them): a
    // request that asks for something we do not do should hear so, with the field named.
    // Each route's validator is compiled when the route is first called, not at start: the admin API's
    // schemas were a tenth of the server's start-up (docs/performance.md#memory-and-start).
    api.setValidatorCompiler(({ schema }) => {
      type Validate = ReturnType<typeof validator.compile>;
      let compiled: Validate | undefined;
      const validate = ((data: unknown) => {
        compiled ??= validator.compile(schema);
        const valid = compiled(data) as boolean;
        validate.errors = compiled.errors;
        return valid;
      }) as ((data: unknown) => boolean) & { errors: Validate['errors'] };
      validate.errors = null;
      return validate;
    });
    api.setErrorHandler((error: FastifyError, _request, reply) => answerError(error, reply));
    api.setNotFoundHandler((_request, reply) => sendProblem(reply, 404, 'not-found', formatErrorMessage('not-found')));

    const caller = new WeakMap<FastifyRequest, AdminCaller>();
    api.addHook('preHandler', async (request) => {
      if (request.routeOptions.url === `${PREFIX}/openapi.json`) return;
      caller.set(request, await authenticateAdmin(ctx, request.headers.authorization));
    });
    const who = (request: FastifyRequest) => caller.get(request)!;

    api.get('/openapi.json', { config, schema: { hide: true } }, async () => api.swagger());

    type UserQuery = { q?: string; organisation?: string; role?: string; group?: string; method?: string; status?: 'active' | 'disabled'; compliance?: StateName; after?: string; limit?: number; format?: 'json' | 'csv' };
    const userFilter = (q: UserQuery) => ({
      ...(q.q ? { q: q.q } : {}),
      ...(q.organisation ? { organisationId: q.organisation } : {}),
      ...(q.role ? { role: q.role } : {}),
      ...(q.group ? { group: q.group } : {}),
      ...(q.method ? { method: q.method } : {}),
      ...(q.status ? { status: q.status } : {}),
      ...(q.compliance ? { compliance: q.compliance } : {}),
    });
    api.get<{ Querystring: UserQuery }>(
      '/users',
      {
        config,
        schema: {
          summary: 'Find users the token holder may see, in email order, by name, organisation, role, group, method, account status and compliance',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              q: { type: 'string', minLength: 1, maxLength: 320, description: 'The start of an email address or a name' },
              organisation: { type: 'string', format: 'uuid' },
              role: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,63}$' },
              group: { type: 'string', minLength: 1, maxLength: 100 },
              method: { type: 'string', pattern: '^[a-z][a-z-]{1,31}$', description: 'A method kind they have registered, or none' },
              status: { type: 'string', enum: ['active', 'disabled'] },
              compliance: { type: 'string', enum: [...STATE_NAMES] },
              after: { type: 'string', minLength: 1, maxLength: 320, description: 'The last email address of the page before: the next page' },
              limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
              format: { type: 'string', enum: ['json', 'csv'], default: 'json', description: 'csv: every matching user (not one page), formula cells neutralised' },
            },
          },
          response: { 200: { type: 'object', properties: { users: { type: 'array', items: userSummary } } }, ...errors },
        },
      },
      async (request, reply) => {
        if (request.query.format === 'csv') return sendUserCsv(reply, searchUserPages(ctx, who(request), userFilter(request.query)));
        return { users: await searchUsers(ctx, who(request), { ...userFilter(request.query), ...(request.query.after ? { after: request.query.after } : {}), limit: request.query.limit ?? 50 }) };
      },
    );

    api.get<{ Params: { id: string } }>(
      '/users/:id',
      {
        config,
        schema: {
          summary: 'A user: roles and groups, sign-in methods and default, paired phones, sessions, recent sign-ins, exceptions, pass and compliance',
          params: userId,
          response: {
            200: {
              type: 'object',
              properties: {
                ...userSummary.properties,
                organisationId: { type: 'string' },
                pushBlocked: { type: 'boolean' },
                actions: { type: 'array', items: { type: 'string' }, description: 'What the caller may do to this person' },
                roles: { type: 'array', items: { type: 'object', properties: { role: { type: 'string' }, elevated: { type: 'boolean' }, organisation: { type: ['string', 'null'] } } } },
                groups: { type: 'array', items: { type: 'string' } },
                compliance: {
                  type: ['object', 'null'],
                  properties: { state: { type: 'string' }, requirements: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, mode: { type: 'string' }, state: { type: 'string' } } } } },
                },
                methods: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: { id: { type: 'string' }, kind: { type: 'string' }, name: { type: 'string' }, detail: { type: 'string' }, isDefault: { type: 'boolean' }, addedAt: { type: 'string' }, lastUsedAt: { type: ['string', 'null'] } },
                  },
                },
                devices: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, pairedAt: { type: 'string' }, lastSeenAt: { type: ['string', 'null'] } } } },
                sessions: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: { id: { type: 'string' }, startedAt: { type: 'string' }, lastSeenAt: { type: 'string' }, expiresAt: { type: 'string' }, methods: { type: 'array', items: { type: 'string' } }, ip: { type: ['string', 'null'] }, userAgent: { type: ['string', 'null'] } },
                  },
                },
                signIns: { type: 'array', items: signInEntry },
                exceptions: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: { id: { type: 'string' }, requirement: { type: 'string' }, until: { type: 'string' }, reason: { type: 'string' }, by: { type: 'string' }, at: { type: 'string' }, live: { type: 'boolean' }, revokedAt: { type: ['string', 'null'] } },
                  },
                },
                pass: {
                  type: ['object', 'null'],
                  properties: { issuedBy: { type: 'string' }, issuedAt: { type: 'string' }, expiresAt: { type: 'string' }, usedAt: { type: ['string', 'null'] }, multiUse: { type: 'boolean' }, live: { type: 'boolean' } },
                },
              },
            },
            ...errors,
          },
        },
      },
      async (request) => userDetail(ctx, who(request), request.params.id),
    );

    api.post<{ Params: { id: string }; Body: { lifetimeMinutes?: number; multiUse?: boolean; length?: number; reason: string } }>(
      '/users/:id/passes',
      {
        config,
        schema: {
          summary: 'Issue a Temporary Access Pass (shown once; one live per user)',
          params: userId,
          body: {
            type: 'object',
            required: ['reason'],
            additionalProperties: false,
            properties: {
              lifetimeMinutes: { type: 'integer', minimum: 10, maximum: 43_200, default: 60 },
              multiUse: { type: 'boolean', default: false },
              length: { type: 'integer', minimum: 8, maximum: 48, default: 16, description: 'Characters in the pass' },
              reason,
            },
          },
          response: { 201: { type: 'object', properties: { pass: { type: 'string' }, expiresAt: { type: 'string' }, multiUse: { type: 'boolean' } } }, ...errors },
        },
      },
      async (request, reply) => reply.code(201).send(await issuePassFor(ctx, who(request), request.params.id, { lifetimeMinutes: request.body.lifetimeMinutes ?? 60, multiUse: request.body.multiUse ?? false, length: request.body.length ?? 16, reason: request.body.reason })),
    );


    const counts = { type: 'object', properties: { total: { type: 'integer' }, byState: { type: 'object', additionalProperties: { type: 'integer' } } } } as const;
    api.get(
      '/dashboard',
      {
        config,
        schema: {
          summary: 'Registration and compliance at a glance, for the organisations the caller administers',
          response: {
            200: {
              type: 'object',
              properties: {
                at: { type: 'string' },
                policyVersion: { type: 'integer' },
                users: counts,
                elevated: counts,
                withoutMethod: { type: 'integer' },
                methodMix: { type: 'object', additionalProperties: { type: 'integer' } },
                nextDeadline: {
                  type: ['object', 'null'],
                  properties: { requirement: { type: 'string' }, name: { type: 'string' }, date: { type: 'string' }, daysLeft: { type: 'integer' }, atRisk: { type: 'integer' } },
                },
                requirements: {
                  type: 'array',
                  items: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, type: { type: 'string' }, mode: { type: 'string' }, date: { type: 'string' }, ...counts.properties } },
                },
                trend: { type: 'array', items: { type: 'object', properties: { day: { type: 'string' }, users: counts, elevated: counts } } },
              },
            },
            ...errors,
          },
        },
      },
      async (request) => dashboard(ctx, who(request)),
    );

    const logQuery = {
      user: { type: 'string', format: 'uuid' },
      organisation: { type: 'string', format: 'uuid' },
      before: { type: 'integer', minimum: 1, description: 'Events before this id: the next page' },
      limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
      format: { type: 'string', enum: ['json', 'csv'], default: 'json', description: 'csv: the same rows as a spreadsheet, formula cells neutralised' },
    } as const;
    type LogQuery = { user?: string; organisation?: string; before?: number; limit?: number; format?: 'json' | 'csv' };
    const logFilter = (q: LogQuery) => ({ ...(q.user ? { userId: q.user } : {}), ...(q.organisation ? { organisationId: q.organisation } : {}), ...(q.before ? { before: q.before } : {}), limit: q.limit ?? 100 });

    api.get<{ Querystring: LogQuery & { method?: string; result?: 'success' | 'failure' } }>(
      '/sign-ins',
      {
        config,
        schema: {
          summary: 'The sign-in log: each attempt with its result and reason, newest first',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { ...logQuery, method: { type: 'string', pattern: '^[a-z][a-z-]{1,31}$' }, result: { type: 'string', enum: ['success', 'failure'] } },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                signIns: {
                  type: 'array',
                  items: signInEntry,
                },
              },
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const signIns = await signInLog(ctx, who(request), { ...logFilter(request.query), ...(request.query.method ? { method: request.query.method } : {}), ...(request.query.result ? { result: request.query.result } : {}) });
        if (request.query.format === 'csv') {
          return sendCsv(reply, 'sign-ins', ['at', 'result', 'reason', 'methods', 'email', 'organisation', 'ip'], signIns.map((s) => [s.at, s.result, s.reason, s.methods.join(' '), s.email ?? '', s.organisation ?? '', s.ip ?? '']));
        }
        return { signIns };
      },
    );

    api.get<{ Querystring: LogQuery & { type?: string } }>(
      '/audit',
      {
        config,
        schema: {
          summary: 'The audit log, newest first (tamper-evident: portcullis audit verify)',
          querystring: { type: 'object', additionalProperties: false, properties: { ...logQuery, type: { type: 'string', pattern: '^[a-z-]+\\.[a-z-]+$' } } },
          response: {
            200: {
              type: 'object',
              properties: {
                events: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      id: { type: 'integer' },
                      at: { type: 'string' },
                      type: { type: 'string' },
                      actor: { type: 'string' },
                      actorName: { type: 'string' },
                      subject: { type: ['string', 'null'] },
                      organisation: { type: ['string', 'null'] },
                      ip: { type: ['string', 'null'] },
                      details: { type: 'object', additionalProperties: true },
                    },
                  },
                },
              },
            },
            ...errors,
          },
        },
      },
      async (request, reply) => {
        const events = await auditLog(ctx, who(request), { ...logFilter(request.query), ...(request.query.type ? { type: request.query.type } : {}) });
        if (request.query.format === 'csv') {
          return sendCsv(reply, 'audit', ['id', 'at', 'type', 'actor', 'subject', 'organisation', 'ip', 'details'], events.map((e) => [String(e.id), e.at, e.type, e.actor, e.subject ?? '', e.organisation ?? '', e.ip ?? '', JSON.stringify(e.details)]));
        }
        return { events };
      },
    );

    const reasonBody = { type: 'object', required: ['reason'], additionalProperties: false, properties: { reason } } as const;
    const action = (path: string, summary: string, run: (c: AdminCaller, id: string, why: string) => Promise<object>, result: Record<string, unknown>) =>
      api.post<{ Params: { id: string }; Body: { reason: string } }>(
        path,
        { config, schema: { summary, params: userId, body: reasonBody, response: { 200: { type: 'object', properties: result }, ...errors } } },
        async (request) => run(who(request), request.params.id, request.body.reason),
      );
    action('/users/:id/sessions/revoke', 'End the user’s sessions, in Portcullis and in applications (back-channel logout)', (c, id, why) => revokeSessionsFor(ctx, c, id, why), {
      sessions: { type: 'integer' },
    });
    action('/users/:id/disable', 'Disable the account: no sign-in, no session, applications signed out (the phone stays paired)', (c, id, why) => disableFor(ctx, c, id, why), {
      status: { type: 'string' },
      sessionsEnded: { type: 'integer' },
    });
    action('/users/:id/enable', 'Enable a disabled account again, with its methods and its phone’s pairing', (c, id, why) => enableFor(ctx, c, id, why), { status: { type: 'string' } });
    action('/users/:id/push/unblock', 'Let sign-in requests reach the authenticator app again after a fraud report', (c, id, why) => unblockPushFor(ctx, c, id, why), { pushBlocked: { type: 'boolean' } });
    action('/users/:id/re-registration', 'Require re-registration: every method removed, sessions ended', (c, id, why) => requireReRegistrationFor(ctx, c, id, why), {
      methodsRemoved: { type: 'integer' },
      sessionsEnded: { type: 'integer' },
    });

    api.post<{ Params: { id: string }; Body: { requirement: string; hours?: number; reason: string } }>(
      '/users/:id/exceptions',
      {
        config,
        schema: {
          summary: 'An exception to one requirement: 24 hours for a lost phone, up to 180 days, with a reason',
          params: userId,
          body: {
            type: 'object',
            required: ['requirement', 'reason'],
            additionalProperties: false,
            properties: {
              requirement: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,63}$' },
              hours: { type: 'integer', minimum: 1, maximum: 4320, default: 24 },
              reason,
            },
          },
          response: { 201: { type: 'object', properties: { id: { type: 'string' }, until: { type: 'string' } } }, ...errors },
        },
      },
      async (request, reply) => reply.code(201).send(await grantExceptionFor(ctx, who(request), request.params.id, { requirement: request.body.requirement, hours: request.body.hours ?? 24, reason: request.body.reason })),
    );
    api.post<{ Params: { id: string }; Body: { change: 'grant' | 'revoke'; role: string; organisations?: string[]; reason: string } }>(
      '/users/:id/roles',
      {
        config,
        schema: {
          summary: 'Give or take away a role, within the caller’s own organisations and the policy’s rules',
          params: userId,
          body: {
            type: 'object',
            required: ['change', 'role', 'reason'],
            additionalProperties: false,
            properties: {
              change: { type: 'string', enum: ['grant', 'revoke'] },
              role: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,63}$' },
              organisations: { type: 'array', maxItems: 50, items: { type: 'string', minLength: 1, maxLength: 200 }, default: [], description: 'The organisations a scoped role is for, by name' },
              reason,
            },
          },
          response: { 200: { type: 'object', properties: { role: { type: 'string' }, granted: { type: 'integer' }, revoked: { type: 'integer' } } }, ...errors },
        },
      },
      async (request) => changeRoleFor(ctx, who(request), request.params.id, { change: request.body.change, role: request.body.role, organisations: request.body.organisations ?? [], reason: request.body.reason }),
    );

    api.post<{ Params: { id: string }; Body: { change: 'add' | 'remove'; group: string; reason: string } }>(
      '/users/:id/groups',
      {
        config,
        schema: {
          summary: 'Add the user to a group or take them out of one, within the policy’s rules',
          params: userId,
          body: {
            type: 'object',
            required: ['change', 'group', 'reason'],
            additionalProperties: false,
            properties: { change: { type: 'string', enum: ['add', 'remove'] }, group: { type: 'string', minLength: 1, maxLength: 100 }, reason },
          },
          response: { 200: { type: 'object', properties: { group: { type: 'string' }, member: { type: 'boolean' } } }, ...errors },
        },
      },
      async (request) => changeGroupFor(ctx, who(request), request.params.id, request.body),
    );

    await registerPolicyApi(api, ctx, who);
  }, { prefix: PREFIX });
}

/**
 * The admin API's policy routes (issue #15 points 4 and 6): the policy in force and its versions, one
 * version's document, the line diff between two versions, a preview of what a draft would do (its
 * problems, whom it would strand, and the compliance counts now and with it), applying a draft, and
 * rolling back to an earlier version. Reading needs `admin:read`; changing needs `admin:policy` and a
 * global administrator's role (src/app/admin-policy.ts decides), and always a reason.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AdminCaller } from '../../app/admin-api.js';
import { applyPolicyFor, diffVersions, mayEditPolicy, policyInForce, policyVersion, policyVersions, previewPolicy, rollbackTo } from '../../app/admin-policy.js';
import { STATE_NAMES } from '../../app/compliance.js';
import type { AppContext } from '../../app/context.js';
import { config, errors, problem, reason } from './shared.js';

/** Up to 256 KiB of YAML or JSON: a policy is a page or two; this leaves room and refuses a flood. */
const document = { type: 'string', minLength: 1, maxLength: 262_144, description: 'The policy document, in YAML or JSON (docs/policy.md)' } as const;
const version = { type: 'integer', minimum: 1, maximum: 999_999_999 } as const;
const versionParams = { type: 'object', required: ['version'], additionalProperties: false, properties: { version } } as const;
const allowStranded = { type: 'boolean', default: false, description: 'Apply even though it turns off every method some people have registered (they would need a Temporary Access Pass)' } as const;

const versionSummary = {
  type: 'object',
  properties: { version: { type: 'integer' }, appliedAt: { type: 'string' }, appliedBy: { type: 'string' }, comment: { type: 'string' } },
} as const;
const versionDetail = { type: 'object', properties: { ...versionSummary.properties, document: { type: 'string' } } } as const;
const stateCounts = {
  type: 'object',
  properties: { total: { type: 'integer' }, byState: { type: 'object', properties: Object.fromEntries(STATE_NAMES.map((s) => [s, { type: 'integer' }])) } },
} as const;
const countsOrNull = { ...stateCounts, type: ['object', 'null'] } as const;
const countsChange = { type: 'object', properties: { now: stateCounts, after: stateCounts } } as const;
const stranded = {
  type: ['object', 'null'],
  properties: { total: { type: 'integer' }, byRole: { type: 'array', items: { type: 'object', properties: { role: { type: 'string' }, people: { type: 'integer' } } } }, description: { type: 'string' } },
} as const;
const created = { type: 'object', properties: { version: { type: 'integer' } } } as const;
const changeErrors = { ...errors, 409: problem } as const;

export async function registerPolicyApi(api: FastifyInstance, ctx: AppContext, who: (request: FastifyRequest) => AdminCaller): Promise<void> {
  api.get(
    '/policy',
    {
      config,
      schema: {
        summary: 'The policy in force (version 0: none applied yet, the built-in default)',
        response: { 200: { type: 'object', properties: { ...versionDetail.properties, mayEdit: { type: 'boolean', description: 'Whether this token may change the policy' } } }, ...errors },
      },
    },
    async (request) => ({ ...(await policyInForce(ctx, who(request))), mayEdit: mayEditPolicy(who(request)) }),
  );

  api.get(
    '/policy/versions',
    { config, schema: { summary: 'Every version of the policy applied, newest first', response: { 200: { type: 'object', properties: { versions: { type: 'array', items: versionSummary } } }, ...errors } } },
    async (request) => ({ versions: await policyVersions(ctx, who(request)) }),
  );

  api.get<{ Params: { version: number } }>(
    '/policy/versions/:version',
    { config, schema: { summary: 'One version of the policy, with its document as applied', params: versionParams, response: { 200: versionDetail, ...errors } } },
    async (request) => policyVersion(ctx, who(request), request.params.version),
  );

  api.get<{ Querystring: { from: number; to: number } }>(
    '/policy/diff',
    {
      config,
      schema: {
        summary: 'The line diff from one version of the policy to another',
        querystring: { type: 'object', required: ['from', 'to'], additionalProperties: false, properties: { from: version, to: version } },
        response: {
          200: {
            type: 'object',
            properties: {
              from: { type: 'integer' },
              to: { type: 'integer' },
              added: { type: 'integer' },
              removed: { type: 'integer' },
              lines: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { kind: { type: 'string', enum: ['added', 'removed', 'unchanged'] }, text: { type: 'string' }, fromLine: { type: ['integer', 'null'] }, toLine: { type: ['integer', 'null'] } },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => diffVersions(ctx, who(request), request.query.from, request.query.to),
  );

  api.post<{ Body: { document: string } }>(
    '/policy/preview',
    {
      config,
      schema: {
        summary: 'What applying a draft would do, without applying it: its problems, whom it would strand, and the compliance counts now and with it',
        body: { type: 'object', required: ['document'], additionalProperties: false, properties: { document } },
        response: {
          200: {
            type: 'object',
            properties: {
              ok: { type: 'boolean' },
              problems: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
              stranded,
              counts: {
                type: ['object', 'null'],
                properties: {
                  at: { type: 'string' },
                  users: countsChange,
                  elevated: countsChange,
                  requirements: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: { id: { type: 'string' }, name: { type: 'string' }, type: { type: 'string' }, mode: { type: 'string' }, now: countsOrNull, after: countsOrNull },
                    },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => previewPolicy(ctx, who(request), request.body.document),
  );

  api.post<{ Body: { document: string; reason: string; allowStranded?: boolean } }>(
    '/policy',
    {
      config,
      schema: {
        summary: 'Apply a draft as the next version of the policy (its comment: the reason)',
        body: { type: 'object', required: ['document', 'reason'], additionalProperties: false, properties: { document, reason, allowStranded } },
        response: { 201: created, ...changeErrors },
      },
    },
    async (request, reply) => reply.code(201).send(await applyPolicyFor(ctx, who(request), request.body.document, request.body.reason, { allowStranded: request.body.allowStranded ?? false })),
  );

  api.post<{ Params: { version: number }; Body: { reason: string; allowStranded?: boolean } }>(
    '/policy/versions/:version/rollback',
    {
      config,
      schema: {
        summary: 'Apply an earlier version’s document again, as the next version',
        params: versionParams,
        body: { type: 'object', required: ['reason'], additionalProperties: false, properties: { reason, allowStranded } },
        response: { 201: created, ...changeErrors },
      },
    },
    async (request, reply) => reply.code(201).send(await rollbackTo(ctx, who(request), request.params.version, request.body.reason, { allowStranded: request.body.allowStranded ?? false })),
  );
}

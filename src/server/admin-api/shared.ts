/**
 * What the admin API's routes share (src/server/admin-api/routes.ts and its policy routes): the route
 * config, the problem+json schema and answer (RFC 9457), the reason every action asks for, and CSV.
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { AdminUserSummary } from '../../app/admin-api.js';
import { csvCell } from '../../app/compliance-csv.js';

export const config = { surface: 'api' as const, csrf: false };

export const problem = {
  type: 'object',
  required: ['type', 'title', 'status', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string', description: 'Stable: what a client branches on' },
    detail: { type: 'string' },
    field: { type: 'string', description: 'The request field at fault, for a validation error' },
  },
} as const;

export const errors = { 400: problem, 401: problem, 403: problem, 404: problem } as const;

/** Why the administrator does it: every action asks, and the audit log keeps it with who and whom. */
export const reason = { type: 'string', minLength: 3, maxLength: 500, description: 'Why: kept in the audit log with who did it and to whom' } as const;

/** A list as CSV (RFC 4180), every cell through the compliance report's formula guard. */
export function sendCsv(reply: FastifyReply, name: string, header: readonly string[], rows: ReadonlyArray<readonly string[]>): FastifyReply {
  const lines = [header.join(','), ...rows.map((row) => row.map(csvCell).join(','))];
  return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${name}.csv"`).send(`${lines.join('\r\n')}\r\n`);
}

export function sendProblem(reply: FastifyReply, status: number, code: string, detail: string, field?: string): FastifyReply {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: `https://portcullis.invalid/problems/${code}`, title: detail, status, code, detail, ...(field ? { field } : {}) });
}


/** Every user of a search as CSV, streamed a page at a time (the console's and the API's export). */
export function sendUserCsv(reply: FastifyReply, pages: AsyncIterable<AdminUserSummary[]>): FastifyReply {
  const header = ['email', 'name', 'organisation', 'status', 'roles', 'groups', 'methods', 'compliance'];
  async function* lines() {
    yield `${header.join(',')}\r\n`;
    for await (const page of pages) {
      yield page.map((u) => `${[u.email, u.name, u.organisation, u.status, u.roles.join(' '), u.groups.join(' '), u.methods.join(' '), u.compliance ?? ''].map(csvCell).join(',')}\r\n`).join('');
    }
  }
  return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="users.csv"').send(Readable.from(lines()));
}

/**
 * The admin console's log pages (issue #15 point 5): the sign-in log (each attempt's result and reason,
 * filterable by person, organisation, method and result) and the audit log (by event type, person and
 * organisation), 50 rows a page, newest first, each downloadable as CSV with the admin API's columns
 * (src/server/admin-api/routes.ts) and its formula guard. The reads are the admin API's use cases, so
 * the scope is theirs: a local administrator sees only their organisations' people.
 *
 * The filters come from a GET form, so they are in the address: bad values (an organisation id that is
 * not one the person may choose, a malformed event type, a `before` that is not a positive whole number)
 * re-render the form with the error in place (400) and read nothing.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AUDIT_EVENT_TYPES, auditLog, organisationsFor, signInLog, type AdminCaller } from '../../app/admin-api.js';
import type { AppContext } from '../../app/context.js';
import { methodDefinitionList } from '../../app/methods/definitions.js';
import { sendCsv } from '../admin-api/shared.js';
import { requireSession } from '../plugins/session.js';
import { consoleCaller, refuse, one, UUID, type ConsoleQuery } from './caller.js';

const PAGE_SIZE = 50;
/** The most rows one CSV download holds (the admin API's own maximum page). */
const CSV_LIMIT = 1000;

const EMAIL_MAX = 254;

/** The password first, then every method unit's kind, in the registry's order, by the name people know. */
const METHOD_CHOICES: ReadonlyArray<{ value: string; text: string }> = [
  { value: 'password', text: 'Password' },
  ...methodDefinitionList.map((d) => ({ value: d.kind as string, text: d.name as string })),
];
const methodName = new Map(METHOD_CHOICES.map((m) => [m.value, m.text]));

const RESULT_CHOICES = [
  { value: '', text: 'Any result' },
  { value: 'success', text: 'Success' },
  { value: 'failure', text: 'Failure' },
] as const;

interface FieldError {
  field: string;
  text: string;
}

type Query = ConsoleQuery;

/** The filters both logs share, checked; `errors` names each field at fault. */
function commonFilters(query: Query, organisations: ReadonlyArray<{ id: string }>, errors: FieldError[]) {
  const email = one(query, 'email');
  if (email === null || (email !== undefined && (email.length > EMAIL_MAX || !email.includes('@')))) {
    errors.push({ field: 'email', text: `Enter an email address in the correct format, like name@example.org, of ${EMAIL_MAX} characters or fewer` });
  }
  const organisation = one(query, 'organisation');
  // An organisation the person may not see is treated as one that does not exist: the same error.
  if (organisation === null || (organisation !== undefined && (!UUID.test(organisation) || !organisations.some((o) => o.id === organisation.toLowerCase())))) {
    errors.push({ field: 'organisation', text: 'Choose an organisation from the list' });
  }
  const before = one(query, 'before');
  const beforeId = typeof before === 'string' && /^[1-9][0-9]{0,15}$/.test(before) ? Number(before) : undefined;
  if (before === null || (before !== undefined && (beforeId === undefined || !Number.isSafeInteger(beforeId)))) {
    errors.push({ field: 'before', text: 'The page link is not right: go back to the newest entries and page from there' });
  }
  const format = one(query, 'format');
  if (format === null || (format !== undefined && format !== 'csv')) errors.push({ field: 'format', text: 'The download link is not right: the only download is CSV' });
  return {
    email: typeof email === 'string' ? email : undefined,
    organisation: typeof organisation === 'string' ? organisation.toLowerCase() : undefined,
    before: beforeId,
    csv: format === 'csv',
  };
}

/** The filters as a query string, for the next page's and the download's links (empty ones left out). */
function queryString(values: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value !== undefined && value !== '') params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** "2026-12-04T01:15:51.000Z" as "4 Dec 2026, 01:15:51 UTC". */
function when(at: string | Date): string {
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return String(at);
  return `${date.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium', timeZone: 'UTC' })} UTC`;
}

function csvTime(at: string | Date): string {
  return at instanceof Date ? at.toISOString() : at;
}

/**
 * The summary lists errors in the order of the form's fields (`fields`); an error about a link's own
 * values (the page, the format) comes last and points at the form.
 */
function pageErrors(errors: FieldError[], fields: readonly string[]) {
  const rank = (e: FieldError) => (fields.includes(e.field) ? fields.indexOf(e.field) : fields.length);
  return {
    errors: [...errors].sort((a, b) => rank(a) - rank(b)).map((e) => ({ text: e.text, href: fields.includes(e.field) ? `#${e.field}` : '#filters' })),
    fieldErrors: Object.fromEntries(errors.map((e) => [e.field, e.text])),
  };
}

/** Reads a log, or renders the use case's refusal as a page (null). */
async function read<T>(reply: FastifyReply, fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (error) {
    await refuse(reply, error);
    return null;
  }
}

export async function adminLogRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const organisationChoices = (organisations: ReadonlyArray<{ id: string; name: string }>) => [
    { value: '', text: 'Any organisation' },
    ...organisations.map((o) => ({ value: o.id, text: o.name })),
  ];

  async function signIns(request: FastifyRequest, reply: FastifyReply, caller: AdminCaller) {
    const query = (request.query ?? {}) as Query;
    const organisations = await organisationsFor(ctx, caller);
    const errors: FieldError[] = [];
    const common = commonFilters(query, organisations, errors);
    const method = one(query, 'method');
    if (method === null || (method !== undefined && !methodName.has(method))) errors.push({ field: 'method', text: 'Choose a sign-in method from the list' });
    const result = one(query, 'result');
    if (result === null || (result !== undefined && result !== 'any' && result !== 'success' && result !== 'failure')) errors.push({ field: 'result', text: 'Choose success, failure or any result' });

    const values = {
      email: common.email ?? '',
      organisation: common.organisation ?? '',
      method: typeof method === 'string' ? method : '',
      result: (result === 'success' || result === 'failure' ? result : '') as '' | 'success' | 'failure',
    };
    const page = {
      section: '/admin/sign-ins',
      values,
      organisations: organisationChoices(organisations),
      methods: [{ value: '', text: 'Any method' }, ...METHOD_CHOICES],
      results: RESULT_CHOICES,
    };
    if (errors.length) return reply.render('admin/sign-ins.njk', { ...page, ...pageErrors(errors, ['email', 'organisation', 'method', 'result']), rows: null }, 400);

    const filter = {
      ...(common.email ? { email: common.email } : {}),
      ...(common.organisation ? { organisationId: common.organisation } : {}),
      ...(common.before !== undefined ? { before: common.before } : {}),
      ...(values.method ? { method: values.method } : {}),
      ...(values.result ? { result: values.result } : {}),
    };
    const attempts = await read(reply, () => signInLog(ctx, caller, { ...filter, limit: common.csv ? CSV_LIMIT : PAGE_SIZE + 1 }));
    if (!attempts) return reply;
    if (common.csv) {
      return sendCsv(reply, 'sign-ins', ['at', 'result', 'reason', 'methods', 'email', 'organisation', 'ip'], attempts.map((s) => [csvTime(s.at), s.result, s.reason, s.methods.join(' '), s.email ?? '', s.organisation ?? '', s.ip ?? '']));
    }
    const shown = attempts.slice(0, PAGE_SIZE);
    const last = shown[shown.length - 1];
    return reply.render('admin/sign-ins.njk', {
      ...page,
      rows: shown.map((s) => [
        { text: when(s.at) },
        { text: s.email ?? 'Unknown' },
        { text: s.organisation ?? 'None' },
        { text: s.result === 'success' ? 'Success' : 'Failure' },
        { text: s.result === 'success' ? '' : s.reasonText },
        { text: s.methods.map((m) => methodName.get(m) ?? m).join(', ') },
        { text: s.ip ?? '' },
      ]),
      olderHref: attempts.length > PAGE_SIZE && last ? `/admin/sign-ins${queryString({ ...values, before: last.id })}` : null,
      newestHref: common.before !== undefined ? `/admin/sign-ins${queryString(values)}` : null,
      csvHref: `/admin/sign-ins${queryString({ ...values, before: common.before, format: 'csv' })}`,
    });
  }

  async function audit(request: FastifyRequest, reply: FastifyReply, caller: AdminCaller) {
    const query = (request.query ?? {}) as Query;
    const organisations = await organisationsFor(ctx, caller);
    const errors: FieldError[] = [];
    const common = commonFilters(query, organisations, errors);
    const type = one(query, 'type');
    if (type === null || (type !== undefined && !AUDIT_EVENT_TYPES.includes(type))) {
      errors.push({ field: 'type', text: 'Choose an event type from the list' });
    }
    const values = { type: typeof type === 'string' ? type : '', email: common.email ?? '', organisation: common.organisation ?? '' };
    const page = {
      section: '/admin/audit',
      values,
      organisations: organisationChoices(organisations),
      types: [{ value: '', text: 'Any event' }, ...AUDIT_EVENT_TYPES.map((t) => ({ value: t, text: t, selected: t === values.type }))],
    };
    if (errors.length) return reply.render('admin/audit.njk', { ...page, ...pageErrors(errors, ['type', 'email', 'organisation']), rows: null }, 400);

    const filter = {
      ...(values.type ? { type: values.type } : {}),
      ...(common.email ? { email: common.email } : {}),
      ...(common.organisation ? { organisationId: common.organisation } : {}),
      ...(common.before !== undefined ? { before: common.before } : {}),
    };
    const events = await read(reply, () => auditLog(ctx, caller, { ...filter, limit: common.csv ? CSV_LIMIT : PAGE_SIZE + 1 }));
    if (!events) return reply;
    if (common.csv) {
      return sendCsv(reply, 'audit', ['id', 'at', 'type', 'actor', 'subject', 'organisation', 'ip', 'details'], events.map((e) => [String(e.id), csvTime(e.at), e.type, e.actor, e.subject ?? '', e.organisation ?? '', e.ip ?? '', JSON.stringify(e.details)]));
    }
    const shown = events.slice(0, PAGE_SIZE);
    const last = shown[shown.length - 1];
    return reply.render('admin/audit.njk', {
      ...page,
      rows: shown.map((e) => {
        const { why, ...rest } = e.details;
        const details = Object.entries(rest)
          .map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join(', ') : value === null ? 'none' : typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
          .join('; ');
        return {
          cells: [{ text: when(e.at) }, { text: e.type }, { text: e.actorName }, { text: e.subject ?? 'No one' }, { text: e.organisation ?? 'None' }],
          details,
          why: typeof why === 'string' && why ? why : null,
        };
      }),
      olderHref: events.length > PAGE_SIZE && last ? `/admin/audit${queryString({ ...values, before: last.id })}` : null,
      newestHref: common.before !== undefined ? `/admin/audit${queryString(values)}` : null,
      csvHref: `/admin/audit${queryString({ ...values, before: common.before, format: 'csv' })}`,
    });
  }

  app.get('/admin/sign-ins', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    return signIns(request, reply, caller);
  });

  app.get('/admin/audit', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    return audit(request, reply, caller);
  });
}

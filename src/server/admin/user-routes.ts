/**
 * The admin console's users (issue #15 point 3): a search with filters (organisation, role, group,
 * method, account status, compliance), a page per person (roles and groups, methods and default, paired
 * phones, sessions, recent sign-ins with their reasons, exceptions and pass, where they stand against the
 * policy), and the actions — each first a page that says what it will do and asks why, then done on
 * POST. The reads and actions are the admin API's use cases, so their scope is the API's.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  changeGroupFor,
  changeRoleFor,
  directoryChoices,
  disableFor,
  enableFor,
  grantExceptionFor,
  issuePassFor,
  organisationsFor,
  requireReRegistrationFor,
  revokeSessionsFor,
  searchUserPages,
  searchUsers,
  unblockPushFor,
  userDetail,
  type AdminCaller,
  type UserFilter,
} from '../../app/admin-api.js';
import { STATE_NAMES, type StateName } from '../../app/compliance.js';
import type { AppContext } from '../../app/context.js';
import { methodDefinitionList } from '../../app/methods/definitions.js';
import { errorCatalogue, formatErrorMessage, isPortcullisError, PortcullisError } from '../../core/errors.js';
import { sendUserCsv } from '../admin-api/shared.js';
import { requireSession } from '../plugins/session.js';
import { consoleCaller, refuse, one, UUID, type ConsoleQuery } from './caller.js';

const PAGE_SIZE = 50;

export const STATE_TEXT: Record<StateName, string> = {
  compliant: 'Compliant',
  exempt: 'Exempt',
  'action-needed': 'Action needed',
  'in-grace': 'In grace',
  'non-compliant': 'Non-compliant',
};
const STATE_TAG: Record<StateName, string> = {
  compliant: 'nhsuk-tag--green',
  exempt: 'nhsuk-tag--blue',
  'action-needed': 'nhsuk-tag--yellow',
  'in-grace': 'nhsuk-tag--orange',
  'non-compliant': 'nhsuk-tag--red',
};

const METHODS: ReadonlyArray<{ value: string; text: string }> = methodDefinitionList.map((d) => ({ value: d.kind as string, text: d.name as string }));
const methodName = (kind: string) => METHODS.find((m) => m.value === kind)?.text ?? kind;

type Query = ConsoleQuery;
type Form = Record<string, string | string[] | undefined>;

/** The lifetimes a pass may be given (10 minutes to 30 days; an hour unless chosen). */
const PASS_LIFETIMES = [
  [10, '10 minutes'],
  [60, '1 hour'],
  [240, '4 hours'],
  [480, '8 hours'],
  [1440, '1 day'],
  [10080, '7 days'],
  [43200, '30 days'],
] as const;

/** How long an exception lasts: a lost phone gets 24 hours; at most 180 days. */
const EXCEPTION_HOURS = [
  [24, '24 hours (a lost or broken phone)'],
  [72, '3 days'],
  [168, '7 days'],
  [720, '30 days'],
  [2160, '90 days'],
  [4320, '180 days'],
] as const;

type Detail = Awaited<ReturnType<typeof userDetail>>;

interface ActionPage {
  /** The admin action (src/core/admin/scope.ts) that the caller must be allowed. */
  action: string;
  title: (user: Detail) => string;
  /** What it will do, in a sentence or two, on the confirmation page. */
  says: (user: Detail) => string;
  button: string;
  warning?: boolean;
  /** Whether this action makes sense for this person now (enable only when disabled, and so on). */
  applies?: (user: Detail) => boolean;
  run: (ctx: AppContext, caller: AdminCaller, user: Detail, form: Form, reason: string) => Promise<{ done: string } | { pass: string; expiresAt: string; multiUse: boolean }>;
}

const text = (form: Form, key: string) => {
  const value = form[key];
  return typeof value === 'string' ? value.trim() : '';
};
const list = (form: Form, key: string) => {
  const value = form[key];
  return (Array.isArray(value) ? value : value ? [value] : []).filter((v): v is string => typeof v === 'string' && v !== '');
};

const ACTIONS: Record<string, ActionPage> = {
  pass: {
    action: 'issue-pass',
    title: (u) => `Issue a Temporary Access Pass for ${u.name}`,
    says: (u) =>
      `${u.name} can sign in with the pass instead of their usual second step, and set up a new sign-in method — for example after losing their phone. It replaces any pass they have. You will see it once: read it to them or give it to them in person, never by email. We will email ${u.email} to say a pass was issued.`,
    button: 'Issue pass',
    run: async (ctx, caller, user, form, reason) => {
      const minutes = Number(text(form, 'lifetime') || 60);
      const length = Number(text(form, 'length') || 16);
      return issuePassFor(ctx, caller, user.id, { lifetimeMinutes: minutes, multiUse: text(form, 'multiUse') === 'yes', length, reason });
    },
  },
  sessions: {
    action: 'revoke-sessions',
    title: (u) => `End ${u.name}’s sessions`,
    says: (u) => `${u.name} will be signed out everywhere: of Portcullis on every device, and of every application they signed in to through it. They can sign in again straight away.`,
    button: 'End sessions',
    warning: true,
    run: async (ctx, caller, user, _form, reason) => {
      const { sessions } = await revokeSessionsFor(ctx, caller, user.id, reason);
      return { done: `${sessions} ${sessions === 1 ? 'session' : 'sessions'} ended` };
    },
  },
  'unblock-push': {
    action: 'unblock-push',
    title: (u) => `Unblock push notifications for ${u.name}`,
    says: (u) => `${u.name} reported a sign-in request that was not them, so requests stopped reaching their authenticator app. Check with them that the account is safe (their password may need changing) before you unblock it.`,
    button: 'Unblock push',
    applies: (u) => u.pushBlocked,
    run: async (ctx, caller, user, _form, reason) => {
      await unblockPushFor(ctx, caller, user.id, reason);
      return { done: 'Push notifications unblocked' };
    },
  },
  're-registration': {
    action: 'require-re-registration',
    title: (u) => `Require ${u.name} to set up their sign-in methods again`,
    says: (u) => `Every sign-in method ${u.name} has set up will be removed (${u.methods.length} now) and they will be signed out everywhere. At their next sign-in they must set up a method again, so they may need a Temporary Access Pass as well.`,
    button: 'Remove their methods',
    warning: true,
    run: async (ctx, caller, user, _form, reason) => {
      const { methodsRemoved } = await requireReRegistrationFor(ctx, caller, user.id, reason);
      return { done: `${methodsRemoved} sign-in ${methodsRemoved === 1 ? 'method' : 'methods'} removed` };
    },
  },
  exception: {
    action: 'grant-exception',
    title: (u) => `Grant ${u.name} an exception`,
    says: (u) => `For the time you choose, ${u.name} does not have to meet the requirement you choose: for example 24 hours while they replace a lost phone. It ends by itself.`,
    button: 'Grant exception',
    applies: (u) => (u.compliance?.requirements.length ?? 0) > 0,
    run: async (ctx, caller, user, form, reason) => {
      const { until } = await grantExceptionFor(ctx, caller, user.id, { requirement: text(form, 'requirement'), hours: Number(text(form, 'hours') || 24), reason });
      return { done: `Exception granted until ${new Date(until).toUTCString()}` };
    },
  },
  disable: {
    action: 'disable',
    title: (u) => `Disable ${u.name}’s account`,
    says: (u) => `${u.name} will not be able to sign in, and will be signed out everywhere, including from applications. Their sign-in methods and paired phone are kept, so enabling the account again puts everything back as it was.`,
    button: 'Disable account',
    warning: true,
    applies: (u) => u.status === 'active',
    run: async (ctx, caller, user, _form, reason) => {
      await disableFor(ctx, caller, user.id, reason);
      return { done: 'Account disabled' };
    },
  },
  enable: {
    action: 'enable',
    title: (u) => `Enable ${u.name}’s account`,
    says: (u) => `${u.name} will be able to sign in again with the sign-in methods and paired phone they had.`,
    button: 'Enable account',
    applies: (u) => u.status === 'disabled',
    run: async (ctx, caller, user, _form, reason) => {
      await enableFor(ctx, caller, user.id, reason);
      return { done: 'Account enabled' };
    },
  },
  roles: {
    action: 'change-roles',
    title: (u) => `Change ${u.name}’s roles`,
    says: (u) => `Give ${u.name} a role or take one away. A role can change what they must set up to sign in: a change that would leave them unable to meet the sign-in policy is refused.`,
    button: 'Change role',
    run: async (ctx, caller, user, form, reason) => {
      const change = text(form, 'change') === 'revoke' ? 'revoke' : 'grant';
      const result = await changeRoleFor(ctx, caller, user.id, { change, role: text(form, 'role'), organisations: list(form, 'organisations'), reason });
      return { done: change === 'grant' ? `Role ${result.role} given` : `Role ${result.role} taken away` };
    },
  },
  groups: {
    action: 'change-roles',
    title: (u) => `Change ${u.name}’s groups`,
    says: (u) => `Add ${u.name} to a group or take them out of one. Groups can change what they must set up to sign in: a change that would leave them unable to meet the sign-in policy is refused.`,
    button: 'Change group',
    run: async (ctx, caller, user, form, reason) => {
      const change = text(form, 'change') === 'remove' ? 'remove' : 'add';
      await changeGroupFor(ctx, caller, user.id, { change, group: text(form, 'group'), reason });
      return { done: change === 'add' ? `Added to ${text(form, 'group')}` : `Taken out of ${text(form, 'group')}` };
    },
  },
};

/** The filters of a search, from the query string, each checked: bad ones are named in `errors`. */
function filtersOf(query: Query, choices: { organisations: ReadonlyArray<{ id: string }>; roles: ReadonlyArray<{ name: string }>; groups: ReadonlyArray<{ name: string }> }) {
  const errors: Array<{ field: string; text: string }> = [];
  const get = (key: string) => {
    const value = one(query, key);
    if (value === null) errors.push({ field: key, text: 'Choose one value' });
    return value ?? undefined;
  };
  const q = get('q');
  if (q && q.length > 320) errors.push({ field: 'q', text: 'Enter 320 characters or fewer' });
  const organisation = get('organisation');
  if (organisation && (!UUID.test(organisation) || !choices.organisations.some((o) => o.id === organisation))) errors.push({ field: 'organisation', text: 'Choose an organisation from the list' });
  const role = get('role');
  if (role && !choices.roles.some((r) => r.name === role)) errors.push({ field: 'role', text: 'Choose a role from the list' });
  const group = get('group');
  if (group && !choices.groups.some((g) => g.name === group)) errors.push({ field: 'group', text: 'Choose a group from the list' });
  const method = get('method');
  if (method && method !== 'none' && !METHODS.some((m) => m.value === method)) errors.push({ field: 'method', text: 'Choose a sign-in method from the list' });
  const status = get('status');
  if (status && status !== 'active' && status !== 'disabled') errors.push({ field: 'status', text: 'Choose active or disabled' });
  const compliance = get('compliance');
  if (compliance && !(STATE_NAMES as readonly string[]).includes(compliance)) errors.push({ field: 'compliance', text: 'Choose a compliance state from the list' });
  const after = get('after');
  if (after && after.length > 320) errors.push({ field: 'after', text: 'The page link is not right: start from the first page' });
  const format = get('format');
  if (format && format !== 'csv') errors.push({ field: 'format', text: 'The download link is not right: the only download is CSV' });
  const filter: Omit<UserFilter, 'limit'> = {
    ...(q ? { q } : {}),
    ...(organisation ? { organisationId: organisation } : {}),
    ...(role ? { role } : {}),
    ...(group ? { group } : {}),
    ...(method ? { method } : {}),
    ...(status ? { status: status as 'active' | 'disabled' } : {}),
    ...(compliance ? { compliance: compliance as StateName } : {}),
  };
  return { errors, filter, after, csv: format === 'csv', values: { q, organisation, role, group, method, status, compliance } };
}

function queryString(values: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) if (value) params.set(key, value);
  return params.toString();
}

const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString('en-GB', { timeZone: 'Europe/London', dateStyle: 'medium', timeStyle: 'short' }) : '');

export async function adminUserRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.get('/admin/users', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    const [organisations, { roles, groups }] = await Promise.all([organisationsFor(ctx, caller), directoryChoices(ctx, caller)]);
    const query = request.query as Query;
    const { errors, filter, after, csv, values } = filtersOf(query, { organisations, roles, groups });
    const searched = Object.values(values).some(Boolean) || query.all === 'yes';
    const view = {
      section: '/admin/users',
      values,
      organisationItems: [{ value: '', text: 'Any organisation' }, ...organisations.map((o) => ({ value: o.id, text: o.name, selected: o.id === values.organisation }))],
      roleItems: [{ value: '', text: 'Any role' }, ...roles.map((r) => ({ value: r.name, text: r.name, selected: r.name === values.role }))],
      groupItems: [{ value: '', text: 'Any group' }, ...groups.map((g) => ({ value: g.name, text: g.name, selected: g.name === values.group }))],
      methodItems: [{ value: '', text: 'Any' }, { value: 'none', text: 'No second method', selected: values.method === 'none' }, ...METHODS.map((m) => ({ ...m, selected: m.value === values.method }))],
      statusItems: [
        { value: '', text: 'Any' },
        { value: 'active', text: 'Active', selected: values.status === 'active' },
        { value: 'disabled', text: 'Disabled', selected: values.status === 'disabled' },
      ],
      complianceItems: [{ value: '', text: 'Any' }, ...STATE_NAMES.map((s) => ({ value: s, text: STATE_TEXT[s], selected: s === values.compliance }))],
    };
    if (errors.length) {
      return reply.render('admin/users.njk', { ...view, errors: errors.map((e) => ({ text: e.text, href: `#${e.field}` })), fieldErrors: Object.fromEntries(errors.map((e) => [e.field, e.text])) }, 400);
    }
    if (csv) return sendUserCsv(reply, searchUserPages(ctx, caller, filter));
    if (!searched) return reply.render('admin/users.njk', view);
    const found = await searchUsers(ctx, caller, { ...filter, ...(after ? { after } : {}), limit: PAGE_SIZE + 1 });
    const page = found.slice(0, PAGE_SIZE);
    const base = queryString(values);
    return reply.render('admin/users.njk', {
      ...view,
      searched: true,
      rows: page.map((u) => [
        { html: `<a class="nhsuk-link" href="/admin/users/${u.id}">${escapeHtml(u.name)}</a>` },
        { text: u.email },
        { text: u.organisation },
        { text: u.roles.join(', ') || 'None' },
        { text: u.methods.map(methodName).join(', ') || 'None' },
        { html: u.compliance ? tag(u.compliance) : 'Not evaluated (disabled)' },
        { text: u.status === 'active' ? 'Active' : 'Disabled' },
      ]),
      count: page.length,
      nextHref: found.length > PAGE_SIZE ? `/admin/users?${queryString({ ...values, after: page[page.length - 1]!.email })}` : null,
      firstHref: after ? `/admin/users?${base || 'all=yes'}` : null,
      csvHref: `/admin/users?${queryString({ ...values, format: 'csv' })}`,
    });
  });

  app.get<{ Params: { id: string }; Querystring: { done?: string } }>('/admin/users/:id', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    const user = await detailOrRefuse(ctx, caller, request.params.id, reply);
    if (!user) return reply;
    const actions = Object.entries(ACTIONS)
      .filter(([, page]) => user.actions.includes(page.action as never) && (page.applies?.(user) ?? true))
      .map(([slug, page]) => ({ href: `/admin/users/${user.id}/${slug}`, text: page.title(user) }));
    return reply.render('admin/user.njk', {
      section: '/admin/users',
      user,
      notice: typeof request.query.done === 'string' && request.query.done.length <= 200 ? request.query.done : null,
      actions,
      stateHtml: user.compliance ? tag(user.compliance.state) : 'Not evaluated (the account is disabled)',
      requirementRows: (user.compliance?.requirements ?? []).map((r) => [{ text: r.id }, { text: r.mode === 'enforce' ? 'Enforced' : 'Report only' }, { html: tag(r.state) }]),
      roleRows: user.roles.map((r) => [{ text: r.role }, { text: r.organisation ?? 'Every organisation' }, { text: r.elevated ? 'Yes' : 'No' }]),
      methodRows: user.methods.map((m) => [{ text: m.name }, { text: m.detail }, { text: m.isDefault ? 'Yes' : 'No' }, { text: when(m.addedAt) }, { text: when(m.lastUsedAt) || 'Never' }]),
      deviceRows: user.devices.map((d) => [{ text: d.name }, { text: when(d.pairedAt) }, { text: when(d.lastSeenAt) || 'Never' }]),
      sessionRows: user.sessions.map((x) => [{ text: when(x.startedAt) }, { text: when(x.lastSeenAt) }, { text: x.methods.map((m) => (m === 'password' ? 'Password' : methodName(m))).join(', ') }, { text: x.ip ?? '' }, { text: x.userAgent ?? '' }]),
      signInRows: user.signIns.map((s) => [{ text: when(s.at) }, { text: s.result === 'success' ? 'Success' : 'Failure' }, { text: s.reasonText }, { text: s.methods.map((m) => (m === 'password' ? 'Password' : methodName(m))).join(', ') }, { text: s.ip ?? '' }]),
      exceptionRows: user.exceptions.map((e) => [{ text: e.requirement }, { text: when(e.until) }, { text: e.reason }, { text: e.by }, { text: e.live ? 'Yes' : 'No' }]),
      pass: user.pass ? { ...user.pass, issuedAtText: when(user.pass.issuedAt), expiresAtText: when(user.pass.expiresAt), usedAtText: when(user.pass.usedAt) } : null,
    });
  });

  app.get<{ Params: { id: string; action: string } }>('/admin/users/:id/:action', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    const page = ACTIONS[request.params.action];
    if (!page || !Object.hasOwn(ACTIONS, request.params.action)) return refuse(reply, notFound());
    const user = await detailOrRefuse(ctx, caller, request.params.id, reply);
    if (!user) return reply;
    if (!user.actions.includes(page.action as never)) return refuse(reply, forbidden());
    return renderAction(ctx, caller, reply, request.params.action, page, user, {}, []);
  });

  app.post<{ Params: { id: string; action: string }; Body: Form }>('/admin/users/:id/:action', { preHandler: requireSession }, async (request, reply) => {
    const caller = await consoleCaller(ctx, request, reply);
    if (!caller) return reply;
    const page = ACTIONS[request.params.action];
    if (!page || !Object.hasOwn(ACTIONS, request.params.action)) return refuse(reply, notFound());
    const user = await detailOrRefuse(ctx, caller, request.params.id, reply);
    if (!user) return reply;
    const form = (request.body ?? {}) as Form;
    const reason = text(form, 'reason');
    if (reason.length < 3 || reason.length > 500) {
      return renderAction(ctx, caller, reply, request.params.action, page, user, form, [{ field: 'reason', text: formatErrorMessage('admin-reason-required') }], 400);
    }
    try {
      const result = await page.run(ctx, caller, user, form, reason);
      if ('pass' in result) {
        // Shown once: never cached, never in the address.
        reply.header('cache-control', 'no-store');
        return reply.render('admin/pass-issued.njk', { section: '/admin/users', user, pass: result.pass, expiresAtText: when(result.expiresAt), multiUse: result.multiUse });
      }
      return reply.redirect(`/admin/users/${user.id}?${new URLSearchParams({ done: result.done })}`, 303);
    } catch (error) {
      if (!isPortcullisError(error)) throw error;
      const status = errorCatalogue[error.code].status;
      return renderAction(ctx, caller, reply, request.params.action, page, user, form, [{ field: fieldOf(error.code), text: formatErrorMessage(error.code, error.params) }], status >= 400 && status < 500 ? status : 400);
    }
  });
}

function fieldOf(code: string): string {
  if (code.startsWith('tap-lifetime')) return 'lifetime';
  if (code.startsWith('tap-length')) return 'length';
  if (code.startsWith('policy-exception') || code === 'requirement-not-found') return 'requirement';
  if (code.startsWith('role') || code === 'admin-role-not-allowed' || code === 'admin-own-roles' || code === 'policy-unsatisfiable') return 'role';
  if (code.startsWith('group')) return 'group';
  if (code.startsWith('organisation')) return 'organisations';
  return 'reason';
}

async function renderAction(
  ctx: AppContext,
  caller: AdminCaller,
  reply: FastifyReply,
  slug: string,
  page: ActionPage,
  user: Detail,
  form: Form,
  errors: Array<{ field: string; text: string }>,
  status = 200,
): Promise<FastifyReply> {
  const extra: Record<string, unknown> = {};
  if (slug === 'pass') {
    const chosen = Number(text(form, 'lifetime') || 60);
    extra.lifetimeItems = PASS_LIFETIMES.map(([value, label]) => ({ value: String(value), text: label, selected: value === chosen }));
    extra.length = text(form, 'length') || '16';
    extra.multiUse = text(form, 'multiUse') === 'yes';
  }
  if (slug === 'exception') {
    const chosen = Number(text(form, 'hours') || 24);
    extra.hourItems = EXCEPTION_HOURS.map(([value, label]) => ({ value: String(value), text: label, checked: value === chosen }));
    extra.requirementItems = (user.compliance?.requirements ?? []).map((r) => ({ value: r.id, text: `${r.id} (${STATE_TEXT[r.state as StateName] ?? r.state})`, checked: r.id === text(form, 'requirement') }));
  }
  if (slug === 'roles' || slug === 'groups') {
    const [{ roles, groups }, organisations] = await Promise.all([directoryChoices(ctx, caller), organisationsFor(ctx, caller)]);
    const chosen = new Set(list(form, 'organisations'));
    extra.changeItems =
      slug === 'roles'
        ? [
            { value: 'grant', text: 'Give a role', checked: text(form, 'change') !== 'revoke' },
            { value: 'revoke', text: 'Take a role away', checked: text(form, 'change') === 'revoke' },
          ]
        : [
            { value: 'add', text: 'Add to a group', checked: text(form, 'change') !== 'remove' },
            { value: 'remove', text: 'Take out of a group', checked: text(form, 'change') === 'remove' },
          ];
    extra.roleItems = [{ value: '', text: 'Choose a role' }, ...roles.map((r) => ({ value: r.name, text: `${r.name}${r.elevated ? ' (elevated)' : ''}`, selected: r.name === text(form, 'role') }))];
    extra.groupItems = [{ value: '', text: 'Choose a group' }, ...groups.map((g) => ({ value: g.name, text: g.name, selected: g.name === text(form, 'group') }))];
    extra.organisationItems = organisations.map((o) => ({ value: o.name, text: o.name, checked: chosen.has(o.name) }));
  }
  return reply.render(
    'admin/user-action.njk',
    {
      section: '/admin/users',
      slug,
      user,
      title: page.title(user),
      says: page.says(user),
      buttonText: page.button,
      warning: Boolean(page.warning),
      reason: text(form, 'reason'),
      errors: errors.map((e) => ({ text: e.text, href: `#${e.field}` })),
      fieldErrors: Object.fromEntries(errors.map((e) => [e.field, e.text])),
      ...extra,
    },
    status,
  );
}

async function detailOrRefuse(ctx: AppContext, caller: AdminCaller, id: string, reply: FastifyReply): Promise<Detail | null> {
  try {
    return await userDetail(ctx, caller, id);
  } catch (error) {
    await refuse(reply, error);
    return null;
  }
}

function tag(state: string): string {
  const known = state as StateName;
  return `<strong class="nhsuk-tag ${STATE_TAG[known] ?? ''}">${escapeHtml(STATE_TEXT[known] ?? state)}</strong>`;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const notFound = () => new PortcullisError('not-found');
const forbidden = () => new PortcullisError('admin-forbidden');

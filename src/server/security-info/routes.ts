/**
 * Security info (/security-info): the user's methods, "Default sign-in method" with "Change", "Add
 * sign-in method", "Delete", "Change password" and "Sign out everywhere". Changes need a second factor
 * used in the last 10 minutes; without one the user is sent to confirm with one first (step-up) and
 * comes back. The set-up pages are generic over the method units (src/app/methods/unit.ts): each step
 * asks the unit what to show and what its answer means; no method is named here.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app/context.js';
import type { EnrolmentInput, EnrolmentOutcome } from '../../app/methods/unit.js';
import { unitByChoice, unitBySlug, unitOf } from '../../app/methods/index.js';
import {
  addChoices,
  addedMethod,
  changeAccess,
  changePassword,
  deleteMethod,
  deletionView,
  enrolmentInputFor,
  hasActiveMethods,
  listMethods,
  pendingOf,
  refuseChoice,
  renamableMethod,
  renameMethod,
  renewAfterRegistration,
  setDefaultMethod,
  signOutEverywhere,
} from '../../app/security-info.js';
import { errorCatalogue, formatErrorMessage, isPortcullisError, PortcullisError, type ErrorCode } from '../../core/errors.js';
import { passwordLength } from '../../core/password-rules.js';
import { safeReturnTo } from '../../core/return-to.js';
import { SESSION_COOKIE, cookieOptions } from '../cookies.js';
import { field, formError } from '../forms.js';
import { openEventStream } from '../device-api/routes.js';
import { requireSession } from '../plugins/session.js';
import { clientInfo } from '../sign-in/routes.js';
import { snoozeCampaign, standingFor } from '../../app/policy.js';

const NOTICES: Record<string, string> = {
  added: 'Your sign-in method has been added.',
  deleted: 'Your sign-in method has been deleted.',
  default: 'Your default sign-in method has been changed.',
  renamed: 'Your sign-in method has been renamed.',
  password: 'Your password has been changed. You have been signed out everywhere else.',
};

function formatDate(date: Date | null): string {
  return date ? new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'Europe/London' }).format(date) : 'Never';
}

/**
 * What a session restricted to registration may reach (the method policy's restricted session): the
 * page itself, setting up a method, and signing out everywhere. Not the default, deleting, or the password.
 */
const RESTRICTED_ROUTES: ReadonlySet<string> = new Set([
  '/security-info',
  '/security-info/get-started',
  '/security-info/add',
  '/security-info/add/:methodId',
  '/security-info/add/:methodId/resend',
  '/security-info/add/:slug/:id',
  '/security-info/add/:slug/:id/events',
  '/security-info/added/:methodId',
  '/security-info/sign-out-everywhere',
]);

type FormErrorInput = { code: ErrorCode; params?: Record<string, string | number>; field?: string };

/** Errors a set-up's first step can end in that "Add sign-in method" explains (the policy, the quota). */
const ADD_PAGE_ERRORS: ReadonlySet<string> = new Set(['method-limit', 'method-not-enabled', 'method-not-compliant']);

export async function securityInfoRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.addHook('preHandler', async (request, reply) => {
    if (request.auth?.restricted && RESTRICTED_ROUTES.has(request.routeOptions.url ?? '')) return;
    return requireSession(request, reply);
  });

  const strings = (value: unknown): Record<string, string> =>
    Object.fromEntries(Object.entries((value ?? {}) as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));

  /** What a unit's set-up step is given (src/app/methods/unit.ts). */
  async function enrolmentInput(request: FastifyRequest): Promise<EnrolmentInput> {
    return enrolmentInputFor(ctx, request.auth!, clientInfo(request), strings(request.body), strings(request.query));
  }

  async function renderAdd(request: FastifyRequest, reply: FastifyReply, error: FormErrorInput | null = null) {
    const { items } = await addChoices(ctx, await enrolmentInput(request));
    return reply.render(
      'security-info/add.njk',
      { backHref: '/security-info', items, restricted: request.auth!.restricted !== null, ...(error ? formError({ ...error, field: 'method' }) : {}) },
      error ? errorCatalogue[error.code].status : 200,
    );
  }

  /** Sends the user to confirm with a second factor, then back to `returnTo`, when a change needs it. */
  async function ensureAccess(request: FastifyRequest, reply: FastifyReply, action: 'add-method' | 'change', returnTo: string): Promise<boolean> {
    const access = await changeAccess(ctx, request.auth!, action);
    if (access.allowed) return true;
    await reply.redirect(`/sign-in/step-up?returnTo=${encodeURIComponent(returnTo)}`, 303);
    return false;
  }

  /**
   * Turns what a unit's step led to into a response: its page (with an error at its field), a redirect,
   * or — once the method is active — a renewed session when the set-up proved the method, then onward.
   */
  async function respond(request: FastifyRequest, reply: FastifyReply, outcome: EnrolmentOutcome, again?: () => Promise<EnrolmentOutcome>): Promise<FastifyReply> {
    if (outcome.type === 'redirect') return reply.redirect(outcome.to, 303);
    if (outcome.type === 'added') {
      if (outcome.proved) {
        const token = await renewAfterRegistration(ctx, request.auth!, { method: outcome.proved, at: ctx.clock().toISOString() }, clientInfo(request));
        reply.setCookie(SESSION_COOKIE, token, cookieOptions(ctx.config.sessions.absoluteSeconds));
        reply.rotateCsrf();
      }
      return reply.redirect(outcome.to, 303);
    }
    if (outcome.type === 'refused') {
      const page = again ? await again() : null;
      const status = errorCatalogue[outcome.error.code].status;
      if (!page || page.type !== 'page') return reply.render('error.njk', { title: 'Something went wrong', message: formatErrorMessage(outcome.error.code, outcome.error.params), linkHref: '/security-info/add', linkText: 'Start again' }, status);
      return reply.render(page.page.template, { ...page.page.data, ...formError(outcome.error) }, status);
    }
    return reply.render(outcome.page.template, outcome.page.data, outcome.page.status ?? 200);
  }

  /** Runs a unit's first step; the policy's and the quota's refusals are said on "Add sign-in method". */
  async function startStep(request: FastifyRequest, reply: FastifyReply, step: () => Promise<EnrolmentOutcome>) {
    try {
      return await respond(request, reply, await step());
    } catch (error) {
      if (!isPortcullisError(error) || !ADD_PAGE_ERRORS.has(error.code)) throw error;
      return renderAdd(request, reply, { code: error.code, params: error.params });
    }
  }

  app.get('/security-info', async (request, reply) => {
    const session = request.auth!;
    const restricted = session.restricted !== null;
    const [methods, { standing }] = await Promise.all([listMethods(ctx, session.user.id, session.user.default_method_id), standingFor(ctx, session.user, restricted)]);
    const current = methods.find((m) => m.isDefault);
    const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const action = (html: string) => (restricted ? { text: '' } : { html });
    const detailCell = (m: (typeof methods)[number]) =>
      m.facts.length ? { html: [m.detail, ...m.facts].map(escape).join('<br>') } : { text: m.detail };
    const rows = [
      ...methods.map((m) => [
        { text: m.name },
        detailCell(m),
        { text: formatDate(m.addedAt) },
        { text: formatDate(m.lastUsedAt) },
        action(
          [
            ...(m.renamable ? [`<a href="/security-info/methods/${m.id}/rename">Rename<span class="nhsuk-u-visually-hidden"> ${escape(m.name)} ${escape(m.detail)}</span></a>`] : []),
            `<a href="/security-info/methods/${m.id}/delete">Delete<span class="nhsuk-u-visually-hidden"> ${escape(m.name)} ${escape(m.detail)}</span></a>`,
          ].join('<br>'),
        ),
      ]),
      [
        { text: 'Password' },
        { text: session.user.password_changed_at ? `Last changed ${formatDate(new Date(session.user.password_changed_at))}` : '' },
        { text: formatDate(new Date(session.user.created_at)) },
        { text: '' },
        action('<a href="/security-info/password">Change<span class="nhsuk-u-visually-hidden"> password</span></a>'),
      ],
    ];
    const query = request.query as Record<string, unknown>;
    const notice = NOTICES[String(query.done ?? '')];
    return reply.render('security-info/index.njk', {
      methods,
      rows,
      defaultMethod: current?.label ?? '',
      notice,
      restricted,
      standing,
    });
  });

  app.get('/security-info/get-started', async (request, reply) => {
    const returnTo = safeReturnTo((request.query as Record<string, unknown>).returnTo);
    const session = request.auth!;
    if (await hasActiveMethods(ctx, session.user.id)) return reply.redirect(session.restricted ? '/security-info' : returnTo, 303);
    const { standing } = await standingFor(ctx, session.user, session.restricted !== null);
    return reply.render('security-info/get-started.njk', { returnTo, required: session.restricted !== null, standing });
  });

  /**
   * The campaign's interrupt after sign-in: what is changing and by when, "Set it up now", and
   * "Remind me later" while reminders are left.
   */
  app.get('/security-info/campaign', async (request, reply) => {
    const returnTo = safeReturnTo((request.query as Record<string, unknown>).returnTo);
    const { standing, evaluation } = await standingFor(ctx, request.auth!.user, false);
    const campaign = evaluation.interrupts.find((i) => i.kind === 'campaign');
    if (!campaign || campaign.kind !== 'campaign' || !standing) return reply.redirect(returnTo, 303);
    return reply.render('security-info/campaign.njk', { returnTo, standing, campaignId: campaign.campaignId, method: campaign.method, snoozesLeft: campaign.snoozesLeft });
  });

  app.post('/security-info/campaign', async (request, reply) => {
    const returnTo = safeReturnTo(field(request.body, 'returnTo'));
    const session = request.auth!;
    if (field(request.body, 'action') === 'later') {
      await snoozeCampaign(ctx, session.user, field(request.body, 'campaign'));
      return reply.redirect(returnTo, 303);
    }
    // "Set it up now": the unit of the campaign's method starts its set-up, as if chosen on "Add sign-in method".
    const unit = unitOf(field(request.body, 'method'));
    if (!unit?.enrolment) return reply.redirect('/security-info/add', 303);
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add'))) return reply;
    const input = await enrolmentInput(request);
    return startStep(request, reply, () => unit.enrolment!.start(input));
  });

  app.get('/security-info/add', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add'))) return reply;
    return renderAdd(request, reply);
  });

  app.post('/security-info/add', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add'))) return reply;
    const choice = field(request.body, 'method');
    const input = await enrolmentInput(request);
    const { offered } = await addChoices(ctx, input);
    const unit = unitByChoice(choice);
    if (unit?.enrolment && offered.has(unit)) return startStep(request, reply, () => unit.enrolment!.start(input));
    if (unit) {
      // A choice the page did not offer: say why (the policy), rather than that nothing was chosen.
      try {
        await refuseChoice(ctx, request.auth!, unit);
      } catch (error) {
        if (!isPortcullisError(error)) throw error;
        return renderAdd(request, reply, { code: error.code, params: error.params });
      }
    }
    return renderAdd(request, reply, { code: 'method-choice-missing' });
  });

  /**
   * /security-info/add/:methodId is a unit's first page (`code-app`, `phone`) or a pending method's page
   * (its id): one route for both, so that both keep the addresses people and tests know.
   */
  app.get<{ Params: { methodId: string } }>('/security-info/add/:methodId', async (request, reply) => {
    const unit = unitBySlug(request.params.methodId);
    // Back to the unit's first page after a step-up; a pending set-up starts again from the choices.
    if (!(await ensureAccess(request, reply, 'add-method', unit ? `/security-info/add/${unit.slug}` : '/security-info/add'))) return reply;
    const input = await enrolmentInput(request);
    if (unit) {
      if (!unit.enrolment?.open) return reply.redirect('/security-info/add', 303);
      return startStep(request, reply, () => unit.enrolment!.open!(input));
    }
    try {
      const { unit: owner, method } = await pendingOf(ctx, request.auth!, request.params.methodId);
      if (!owner.enrolment?.pending) return reply.redirect('/security-info/add', 303);
      return await respond(request, reply, await owner.enrolment.pending(input, method));
    } catch (error) {
      if (isPortcullisError(error) && error.code === 'enrolment-expired') return reply.redirect('/security-info/add', 303);
      throw error;
    }
  });

  app.post<{ Params: { methodId: string } }>('/security-info/add/:methodId', async (request, reply) => {
    const unit = unitBySlug(request.params.methodId);
    if (!(await ensureAccess(request, reply, 'add-method', unit ? `/security-info/add/${unit.slug}` : '/security-info/add'))) return reply;
    const input = await enrolmentInput(request);
    if (unit) {
      const enrolment = unit.enrolment;
      if (!enrolment?.submit) return reply.redirect('/security-info/add', 303);
      try {
        return await respond(request, reply, await enrolment.submit(input), async () => (enrolment.open ? enrolment.open(input) : { type: 'redirect', to: '/security-info/add' }));
      } catch (error) {
        if (!isPortcullisError(error) || !ADD_PAGE_ERRORS.has(error.code)) throw error;
        return renderAdd(request, reply, { code: error.code, params: error.params });
      }
    }
    try {
      const { unit: owner, method } = await pendingOf(ctx, request.auth!, request.params.methodId);
      const enrolment = owner.enrolment;
      if (!enrolment?.finish) throw new PortcullisError('enrolment-expired');
      return await respond(request, reply, await enrolment.finish(input, method), async () => (enrolment.pending ? enrolment.pending(input, method) : { type: 'redirect', to: '/security-info/add' }));
    } catch (error) {
      if (isPortcullisError(error) && error.code === 'enrolment-expired') {
        return reply.render('error.njk', { title: 'The set-up has timed out', message: error.message, linkHref: '/security-info/add', linkText: 'Start again' }, 410);
      }
      throw error;
    }
  });

  app.post<{ Params: { methodId: string } }>('/security-info/add/:methodId/resend', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add'))) return reply;
    const input = await enrolmentInput(request);
    try {
      const { unit, method } = await pendingOf(ctx, request.auth!, request.params.methodId);
      const enrolment = unit.enrolment;
      if (!enrolment?.resend) throw new PortcullisError('method-not-found');
      return await respond(request, reply, await enrolment.resend(input, method), async () => (enrolment.pending ? enrolment.pending(input, method) : { type: 'redirect', to: '/security-info/add' }));
    } catch (error) {
      if (isPortcullisError(error) && error.code === 'enrolment-expired') return reply.redirect('/security-info/add', 303);
      throw error;
    }
  });

  /** A step a unit follows by its own id (the Portcullis Authenticator's pairing). */
  app.get<{ Params: { slug: string; id: string } }>('/security-info/add/:slug/:id', async (request, reply) => {
    const unit = unitBySlug(request.params.slug);
    if (!unit?.enrolment?.follow) throw new PortcullisError('not-found');
    return respond(request, reply, await unit.enrolment.follow(await enrolmentInput(request), request.params.id));
  });

  app.get<{ Params: { slug: string; id: string } }>('/security-info/add/:slug/:id/events', async (request, reply) => {
    const unit = unitBySlug(request.params.slug);
    const events = unit?.enrolment?.events ? await unit.enrolment.events(await enrolmentInput(request), request.params.id) : null;
    if (!events) throw new PortcullisError('not-found');
    let unsubscribe = () => {};
    let told = false;
    const stream = openEventStream(reply, () => unsubscribe());
    const check = async () => {
      if (told || !(await events.changed())) return;
      told = true;
      stream.send('update', '{}');
    };
    unsubscribe = ctx.bus.subscribe(events.topic, () => {
      check().catch((error: unknown) => request.log.warn({ err: error }, 'set-up status check failed'));
    });
    const timer = setTimeout(() => stream.end(), events.seconds * 1000);
    timer.unref();
    // Anything that happened before the stream opened.
    await check();
  });

  app.get<{ Params: { methodId: string } }>('/security-info/added/:methodId', async (request, reply) => {
    const session = request.auth!;
    const added = await addedMethod(ctx, session, request.params.methodId);
    return reply.render('security-info/added-app.njk', added);
  });

  const renderDefault = async (request: FastifyRequest, reply: FastifyReply, error: { code: ErrorCode; params?: Record<string, string | number> } | null = null, chosen?: string) => {
    const session = request.auth!;
    const methods = await listMethods(ctx, session.user.id, session.user.default_method_id);
    return reply.render(
      'security-info/default.njk',
      {
        backHref: '/security-info',
        options: methods.map((m) => ({ value: m.id, text: m.label, checked: chosen ? m.id === chosen : m.isDefault })),
        ...(error ? formError({ ...error, field: 'method' }) : {}),
      },
      error ? errorCatalogue[error.code].status : 200,
    );
  };

  app.get('/security-info/default', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'change', '/security-info/default'))) return reply;
    return renderDefault(request, reply);
  });

  app.post('/security-info/default', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'change', '/security-info/default'))) return reply;
    const chosen = field(request.body, 'method');
    try {
      await setDefaultMethod(ctx, request.auth!, chosen, clientInfo(request));
    } catch (error) {
      if (isPortcullisError(error) && (error.code === 'method-choice-missing' || error.code === 'method-not-allowed')) {
        return renderDefault(request, reply, { code: error.code, params: error.params }, chosen);
      }
      throw error;
    }
    return reply.redirect('/security-info?done=default', 303);
  });

  async function renderDelete(request: FastifyRequest, reply: FastifyReply, methodId: string, error: { code: ErrorCode; params?: Record<string, string | number> } | null = null) {
    const view = await deletionView(ctx, request.auth!, methodId, error === null);
    return reply.render('security-info/delete.njk', { backHref: '/security-info', ...view, ...(error ? formError(error) : {}) }, error ? errorCatalogue[error.code].status : 200);
  }

  async function renderRename(request: FastifyRequest, reply: FastifyReply, methodId: string, error: FormErrorInput | null = null, typed?: string) {
    const view = await renamableMethod(ctx, request.auth!, methodId);
    return reply.render(
      'security-info/rename.njk',
      { backHref: '/security-info', ...view, name: typed ?? view.name, ...(error ? formError({ ...error, field: 'name' }) : {}) },
      error ? errorCatalogue[error.code].status : 200,
    );
  }

  app.get<{ Params: { methodId: string } }>('/security-info/methods/:methodId/rename', async (request, reply) => {
    const path = `/security-info/methods/${encodeURIComponent(request.params.methodId)}/rename`;
    if (!(await ensureAccess(request, reply, 'change', path))) return reply;
    return renderRename(request, reply, request.params.methodId);
  });

  app.post<{ Params: { methodId: string } }>('/security-info/methods/:methodId/rename', async (request, reply) => {
    const path = `/security-info/methods/${encodeURIComponent(request.params.methodId)}/rename`;
    if (!(await ensureAccess(request, reply, 'change', path))) return reply;
    const name = field(request.body, 'name');
    try {
      await renameMethod(ctx, request.auth!, request.params.methodId, name, clientInfo(request));
    } catch (error) {
      if (isPortcullisError(error) && error.code === 'method-name-invalid') return renderRename(request, reply, request.params.methodId, { code: error.code }, name);
      throw error;
    }
    return reply.redirect('/security-info?done=renamed', 303);
  });

  app.get<{ Params: { methodId: string } }>('/security-info/methods/:methodId/delete', async (request, reply) => {
    const path = `/security-info/methods/${encodeURIComponent(request.params.methodId)}/delete`;
    if (!(await ensureAccess(request, reply, 'change', path))) return reply;
    return renderDelete(request, reply, request.params.methodId);
  });

  app.post<{ Params: { methodId: string } }>('/security-info/methods/:methodId/delete', async (request, reply) => {
    const path = `/security-info/methods/${encodeURIComponent(request.params.methodId)}/delete`;
    if (!(await ensureAccess(request, reply, 'change', path))) return reply;
    try {
      await deleteMethod(ctx, request.auth!, request.params.methodId, clientInfo(request));
    } catch (error) {
      if (isPortcullisError(error) && error.code === 'method-last-compliant') return renderDelete(request, reply, request.params.methodId, { code: error.code, params: error.params });
      throw error;
    }
    return reply.redirect('/security-info?done=deleted', 303);
  });

  const renderPassword = (request: FastifyRequest, reply: FastifyReply, error: { code: ErrorCode; params?: Record<string, string | number>; field: string } | null = null) =>
    reply.render(
      'security-info/password.njk',
      { backHref: '/security-info', email: request.auth!.user.email, minLength: ctx.config.passwordRules.minLength, ...(error ? formError(error) : {}) },
      error ? errorCatalogue[error.code].status : 200,
    );

  app.get('/security-info/password', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'change', '/security-info/password'))) return reply;
    return renderPassword(request, reply);
  });

  app.post('/security-info/password', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'change', '/security-info/password'))) return reply;
    const current = field(request.body, 'current');
    const next = field(request.body, 'password');
    const confirm = field(request.body, 'confirm');
    if (current === '') return renderPassword(request, reply, { code: 'password-missing', field: 'current' });
    if (next !== '' && passwordLength(next) >= ctx.config.passwordRules.minLength && next !== confirm) {
      return renderPassword(request, reply, { code: 'new-password-mismatch', field: 'confirm' });
    }
    try {
      await changePassword(ctx, request.auth!, { current, next }, clientInfo(request));
    } catch (error) {
      if (!isPortcullisError(error)) throw error;
      if (error.code === 'current-password-incorrect' || error.code === 'sign-in-throttled' || error.code === 'attempt-in-progress') {
        return renderPassword(request, reply, { code: error.code, params: error.params, field: 'current' });
      }
      if (error.code.startsWith('new-password-')) return renderPassword(request, reply, { code: error.code, params: error.params, field: 'password' });
      throw error;
    }
    return reply.redirect('/security-info?done=password', 303);
  });

  app.get('/security-info/sign-out-everywhere', async (_request, reply) => reply.render('security-info/sign-out-everywhere.njk', { backHref: '/security-info' }));

  app.post('/security-info/sign-out-everywhere', async (request, reply) => {
    await signOutEverywhere(ctx, request.auth!, clientInfo(request));
    reply.clearCookie(SESSION_COOKIE, cookieOptions());
    reply.rotateCsrf();
    return reply.redirect('/signed-out?everywhere=1', 303);
  });
}

/**
 * Security info (/security-info): the user's methods, "Default sign-in method" with "Change", "Add
 * sign-in method", "Delete", "Change password" and "Sign out everywhere". Changes need a second factor
 * used in the last 10 minutes; without one the user is sent to confirm with one first (step-up) and
 * comes back. The set-up pages are generic over the method registry: a pending method's strategy says
 * what to show and how to check the first code.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import QRCode from 'qrcode';
import type { AppContext } from '../../app/context.js';
import { strategyOf } from '../../app/methods/index.js';
import { busTopics, PAIRING_SECONDS, pairingStatus, startPairing } from '../../app/push.js';
import {
  beginEnrolment,
  changeAccess,
  changePassword,
  deleteMethod,
  describeMethod,
  finishEnrolment,
  listMethods,
  pendingMethod,
  renewAfterRegistration,
  setDefaultMethod,
  signOutEverywhere,
} from '../../app/security-info.js';
import { errorCatalogue, isPortcullisError, PortcullisError, type ErrorCode } from '../../core/errors.js';
import { labelMethod, methodDefinitions } from '../../core/methods/registry.js';
import { passwordLength } from '../../core/password-rules.js';
import { safeReturnTo } from '../../core/return-to.js';
import { errorForVerification } from '../../core/sign-in/flow.js';
import { formatKeyForTyping, totpUri } from '../../core/methods/totp.js';
import { openText } from '../../crypto/seal.js';
import { SESSION_COOKIE, cookieOptions } from '../cookies.js';
import { field, formError } from '../forms.js';
import { openEventStream } from '../device-api/routes.js';
import { requireSession } from '../plugins/session.js';
import { clientInfo } from '../sign-in/routes.js';
import { assertMayRegister, deletionRefusalFor, registrableFor, snoozeCampaign, standingFor } from '../../app/policy.js';

const NOTICES: Record<string, string> = {
  added: 'Your sign-in method has been added.',
  deleted: 'Your sign-in method has been deleted.',
  default: 'Your default sign-in method has been changed.',
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
  '/security-info/add/code-app',
  '/security-info/add/app/:enrolmentId',
  '/security-info/add/app/:enrolmentId/events',
  '/security-info/added/:methodId',
  '/security-info/add/phone',
  '/security-info/add/:methodId',
  '/security-info/add/:methodId/resend',
  '/security-info/sign-out-everywhere',
]);

export async function securityInfoRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  app.addHook('preHandler', async (request, reply) => {
    if (request.auth?.restricted && RESTRICTED_ROUTES.has(request.routeOptions.url ?? '')) return;
    return requireSession(request, reply);
  });

  /** The "Add sign-in method" choices the policy allows (in a restricted session, only those that help). */
  async function addChoices(request: FastifyRequest) {
    const session = request.auth!;
    const registrable = await registrableFor(ctx, session.user);
    const kinds = session.restricted ? registrable.liftsRestriction : registrable.enabled;
    return {
      push: kinds.includes('push'),
      codeApp: kinds.includes('totp'),
      phone: kinds.includes('sms') || kinds.includes('voice'),
      sms: kinds.includes('sms'),
      voice: kinds.includes('voice'),
      recommended: registrable.meetsAll[0] ?? null,
    };
  }

  async function renderAdd(request: FastifyRequest, reply: FastifyReply, error: { code: ErrorCode; params?: Record<string, string | number> } | null = null) {
    const choices = await addChoices(request);
    const recommended = (kind: string) => (choices.recommended === kind ? ' (recommended by your organisation)' : '');
    const items = [
      ...(choices.push
        ? [{ value: 'push', text: `Authenticator app${recommended('push')}`, hint: { text: 'Approve sign-ins on your phone with the Portcullis Authenticator, by typing the number we show you' } }]
        : choices.codeApp
          ? [{ value: 'totp', text: `Authenticator app${recommended('totp')}`, hint: { text: 'Enter a 6-digit code from an authenticator app on your phone' } }]
          : []),
      ...(choices.phone ? [{ value: 'phone', text: `Phone${recommended('sms')}`, hint: { text: choices.sms && choices.voice ? 'Get a code by text message or by phone call' : choices.sms ? 'Get a code by text message' : 'Get a code by phone call' } }] : []),
    ];
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

  app.get('/security-info', async (request, reply) => {
    const session = request.auth!;
    const restricted = session.restricted !== null;
    const [methods, { standing }] = await Promise.all([listMethods(ctx, session.user.id, session.user.default_method_id), standingFor(ctx, session.user, restricted)]);
    const current = methods.find((m) => m.isDefault);
    const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const action = (html: string) => (restricted ? { text: '' } : { html });
    const rows = [
      ...methods.map((m) => [
        { text: m.name },
        { text: m.detail },
        { text: formatDate(m.addedAt) },
        { text: formatDate(m.lastUsedAt) },
        action(`<a href="/security-info/methods/${m.id}/delete">Delete<span class="nhsuk-u-visually-hidden"> ${escape(m.name)} ${escape(m.detail)}</span></a>`),
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
      defaultMethod: current ? labelMethod(current.name, current.detail) : '',
      notice,
      restricted,
      standing,
    });
  });

  app.get('/security-info/get-started', async (request, reply) => {
    const returnTo = safeReturnTo((request.query as Record<string, unknown>).returnTo);
    const session = request.auth!;
    if ((await ctx.store.methods.countActive(session.user.id)) > 0) return reply.redirect(session.restricted ? '/security-info' : returnTo, 303);
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
    const method = field(request.body, 'method');
    if (method === 'push') {
      if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add'))) return reply;
      return renderPairing(request, reply);
    }
    return reply.redirect(method === 'totp' ? '/security-info/add/code-app' : '/security-info/add', 303);
  });

  app.get('/security-info/add', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add'))) return reply;
    return renderAdd(request, reply);
  });

  app.post('/security-info/add', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add'))) return reply;
    const choice = field(request.body, 'method');
    const choices = await addChoices(request);
    if (choice === 'phone' && choices.phone) return reply.redirect('/security-info/add/phone', 303);
    if (choice === 'push' && choices.push) return renderPairing(request, reply);
    if (choice === 'totp' && choices.codeApp) return startCodeApp(request, reply);
    if (choice === 'phone' || choice === 'push' || choice === 'totp') {
      // A choice the page did not offer: say why (the policy), rather than that nothing was chosen.
      try {
        await assertMayRegister(ctx, request.auth!.user, request.auth!.restricted !== null, choice === 'phone' ? 'sms' : choice);
      } catch (error) {
        if (!isPortcullisError(error)) throw error;
        return renderAdd(request, reply, { code: error.code, params: error.params });
      }
    }
    return renderAdd(request, reply, { code: 'method-choice-missing' });
  });

  async function startCodeApp(request: FastifyRequest, reply: FastifyReply) {
    try {
      const started = await beginEnrolment(ctx, request.auth!, 'totp', {}, clientInfo(request));
      return await reply.redirect(`/security-info/add/${started.methodId}`, 303);
    } catch (error) {
      if (!isPortcullisError(error) || !['method-limit', 'method-not-enabled', 'method-not-compliant'].includes(error.code)) throw error;
      return renderAdd(request, reply, { code: error.code, params: error.params });
    }
  }

  /**
   * "Authenticator app": a one-time pairing code as a QR code and a link, shown once (the code is kept
   * only hashed, so this page is the answer to the POST that made it, not a page to come back to).
   */
  async function renderPairing(request: FastifyRequest, reply: FastifyReply) {
    let pairing;
    try {
      await assertMayRegister(ctx, request.auth!.user, request.auth!.restricted !== null, 'push');
      pairing = await startPairing(ctx, request.auth!.user);
    } catch (error) {
      if (!isPortcullisError(error) || !['method-limit', 'method-not-enabled', 'method-not-compliant'].includes(error.code)) throw error;
      return renderAdd(request, reply, { code: error.code, params: error.params });
    }
    const svg = await QRCode.toString(pairing.url, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
    const qrSvg = svg.replace('<svg ', '<svg role="img" aria-label="QR code for setting up the Portcullis Authenticator" focusable="false" ');
    const { codeApp } = await addChoices(request);
    return reply.render('security-info/add-app.njk', { backHref: '/security-info/add', qrSvg, pairingUrl: pairing.url, enrolmentId: pairing.enrolmentId, codeApp });
  }

  /** "I want to use a different authenticator app": any app that makes 6-digit codes (TOTP). */
  app.get('/security-info/add/code-app', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add/code-app'))) return reply;
    return startCodeApp(request, reply);
  });

  app.get<{ Params: { enrolmentId: string } }>('/security-info/add/app/:enrolmentId', async (request, reply) => {
    const session = request.auth!;
    const status = await pairingStatus(ctx, session.user, request.params.enrolmentId);
    if (status.state === 'approved' && status.methodId) {
      // The phone's approval of the test request proves it, like a step-up: it joins the session's methods
      // once (the approval is used up, so coming back to this page later proves nothing new).
      if (status.testChallengeId && (await ctx.store.push.useApproval(status.testChallengeId, ctx.clock()))) {
        const token = await renewAfterRegistration(ctx, session, { method: 'push', at: ctx.clock().toISOString() }, clientInfo(request));
        reply.setCookie(SESSION_COOKIE, token, cookieOptions(ctx.config.sessions.absoluteSeconds));
        reply.rotateCsrf();
      }
      return reply.redirect(`/security-info/added/${status.methodId}`, 303);
    }
    const headings: Record<string, string> = {
      waiting: 'Connect your phone',
      paired: 'Approve the test request',
      refused: 'The set-up did not finish',
      expired: 'The set-up did not finish',
    };
    return reply.render('security-info/add-app-status.njk', {
      backHref: '/security-info/add',
      heading: headings[status.state],
      state: status.state,
      number: status.number ?? '',
      enrolmentId: request.params.enrolmentId,
    });
  });

  // The page names the state it shows (`seen`); the stream says "update" only once the state differs
  // from it, so a page already showing "paired" is not told to reload over and over.
  app.get<{ Params: { enrolmentId: string }; Querystring: { seen?: string } }>('/security-info/add/app/:enrolmentId/events', async (request, reply) => {
    const session = request.auth!;
    const enrolment = await ctx.store.push.findEnrolment(request.params.enrolmentId, session.user.id);
    if (!enrolment) throw new PortcullisError('not-found');
    const seen = request.query.seen === 'paired' ? 'paired' : 'waiting';
    let unsubscribe = () => {};
    let told = false;
    const stream = openEventStream(reply, () => unsubscribe());
    const check = async () => {
      const status = await pairingStatus(ctx, session.user, enrolment.id);
      if (told || status.state === seen) return;
      told = true;
      stream.send('update', '{}');
    };
    unsubscribe = ctx.bus.subscribe(busTopics.enrolment(enrolment.id), () => {
      check().catch((error: unknown) => request.log.warn({ err: error }, 'pairing status check failed'));
    });
    const timer = setTimeout(() => stream.end(), PAIRING_SECONDS * 1000);
    timer.unref();
    // Anything that happened before the stream opened.
    await check();
  });

  app.get<{ Params: { methodId: string } }>('/security-info/added/:methodId', async (request, reply) => {
    const session = request.auth!;
    const method = await ctx.store.methods.findForUser(session.user.id, request.params.methodId);
    if (!method || method.status !== 'active') throw new PortcullisError('method-not-found');
    const methods = await listMethods(ctx, session.user.id, session.user.default_method_id);
    const current = methods.find((m) => m.isDefault);
    return reply.render('security-info/added-app.njk', {
      methodId: method.id,
      device: method.label,
      isDefault: current?.id === method.id,
      currentDefault: current ? labelMethod(current.name, current.detail) : '',
    });
  });

  const renderPhoneForm = async (
    request: FastifyRequest,
    reply: FastifyReply,
    data: { phone?: string; delivery?: string; error?: { code: ErrorCode; params?: Record<string, string | number>; field?: string } },
  ) => {
    const choices = await addChoices(request);
    return reply.render(
      'security-info/add-phone.njk',
      { backHref: '/security-info/add', phone: data.phone ?? '', delivery: data.delivery ?? '', sms: choices.sms, voice: choices.voice, ...(data.error ? formError(data.error) : {}) },
      data.error ? errorCatalogue[data.error.code].status : 200,
    );
  };

  app.get('/security-info/add/phone', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add/phone'))) return reply;
    return renderPhoneForm(request, reply, {});
  });

  app.post('/security-info/add/phone', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add/phone'))) return reply;
    const phone = field(request.body, 'phone');
    const delivery = field(request.body, 'delivery');
    if (delivery !== 'sms' && delivery !== 'voice') {
      const phoneCheck = phone.trim() === '' ? { code: 'phone-missing' as const, field: 'phone' } : null;
      return renderPhoneForm(request, reply, { phone, delivery, error: phoneCheck ?? { code: 'phone-delivery-missing', field: 'delivery' } });
    }
    try {
      const started = await beginEnrolment(ctx, request.auth!, delivery, { phone }, clientInfo(request));
      return reply.redirect(`/security-info/add/${started.methodId}?challenge=${started.challengeId}`, 303);
    } catch (error) {
      if (!isPortcullisError(error)) throw error;
      const at = error.code.startsWith('method-not-') ? 'delivery' : error.code.startsWith('phone-') && !error.code.startsWith('phone-quota') ? 'phone' : undefined;
      return renderPhoneForm(request, reply, { phone, delivery, error: { code: error.code, params: error.params, field: at } });
    }
  });

  /** The set-up page for a pending method: a QR code for an app, a code form for a phone. */
  async function renderPending(request: FastifyRequest, reply: FastifyReply, methodId: string, challengeId: string, error: { code: ErrorCode; params?: Record<string, string | number> } | null, notice?: string) {
    const session = request.auth!;
    const method = await pendingMethod(ctx, session, methodId);
    const status = error ? errorCatalogue[error.code].status : 200;
    const errorView = error ? formError({ code: error.code, params: error.params, field: 'code' }) : {};
    if (method.kind === 'totp') {
      const seed = openText(ctx.keys.keyEncryption, method.secret_sealed!, `totp-seed:${method.id}`);
      const uri = totpUri({ secretBase32: seed, issuer: ctx.config.organisationName, account: session.user.email });
      const svg = await QRCode.toString(uri, { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
      const qrSvg = svg.replace('<svg ', '<svg role="img" aria-label="QR code for setting up your authenticator app" focusable="false" ');
      return reply.render('security-info/add-totp.njk', { backHref: '/security-info/add', methodId, qrSvg, key: formatKeyForTyping(seed), account: session.user.email, ...errorView }, status);
    }
    const definition = methodDefinitions[strategyOf(method).definition.kind];
    return reply.render(
      'security-info/add-verify.njk',
      {
        backHref: '/security-info/add/phone',
        methodId,
        challengeId,
        heading: definition.heading,
        prompt: definition.prompt.replace('{detail}', strategyOf(method).detail(method)),
        notice,
        ...errorView,
      },
      status,
    );
  }

  app.get<{ Params: { methodId: string } }>('/security-info/add/:methodId', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add'))) return reply;
    const query = request.query as Record<string, unknown>;
    try {
      return await renderPending(request, reply, request.params.methodId, String(query.challenge ?? ''), null, query.resent === '1' ? 'We have sent you a new code.' : undefined);
    } catch (error) {
      if (isPortcullisError(error) && error.code === 'enrolment-expired') return reply.redirect('/security-info/add', 303);
      throw error;
    }
  });

  app.post<{ Params: { methodId: string } }>('/security-info/add/:methodId', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add'))) return reply;
    const { methodId } = request.params;
    const challengeId = field(request.body, 'challenge');
    const code = field(request.body, 'code');
    try {
      if (code.trim() === '') return await renderPending(request, reply, methodId, challengeId, { code: 'code-missing' });
      const session = request.auth!;
      const result = await finishEnrolment(ctx, session, methodId, challengeId || null, code, clientInfo(request));
      if (!result.ok) {
        const reason = errorForVerification(result.reason);
        return await renderPending(request, reply, methodId, challengeId, { code: reason, params: reason === 'code-format' ? { digits: 6 } : {} });
      }
      // The code just proved the new method: like a step-up, it joins the session's methods (with a new
      // session id), as registering during sign-in satisfies MFA in Microsoft Entra.
      const method = await ctx.store.methods.findForUser(session.user.id, methodId);
      const token = await renewAfterRegistration(ctx, session, { method: strategyOf(method!).definition.kind, at: ctx.clock().toISOString() }, clientInfo(request));
      reply.setCookie(SESSION_COOKIE, token, cookieOptions(ctx.config.sessions.absoluteSeconds));
      reply.rotateCsrf();
    } catch (error) {
      if (isPortcullisError(error) && error.code === 'enrolment-expired') {
        return reply.render('error.njk', { title: 'The set-up has timed out', message: error.message, linkHref: '/security-info/add', linkText: 'Start again' }, 410);
      }
      throw error;
    }
    return reply.redirect('/security-info?done=added', 303);
  });

  app.post<{ Params: { methodId: string } }>('/security-info/add/:methodId/resend', async (request, reply) => {
    if (!(await ensureAccess(request, reply, 'add-method', '/security-info/add'))) return reply;
    const { methodId } = request.params;
    const challengeId = field(request.body, 'challenge');
    const session = request.auth!;
    try {
      const method = await pendingMethod(ctx, session, methodId);
      const strategy = strategyOf(method);
      if (!strategy.resend) throw new PortcullisError('method-not-found');
      await strategy.resend(ctx, session.user, method, challengeId, { purpose: 'enrolment', binding: `enrolment:${method.id}`, ip: request.ip });
    } catch (error) {
      if (!isPortcullisError(error)) throw error;
      if (error.code === 'enrolment-expired') return reply.redirect('/security-info/add', 303);
      return renderPending(request, reply, methodId, challengeId, { code: error.code, params: error.params });
    }
    return reply.redirect(`/security-info/add/${methodId}?challenge=${encodeURIComponent(challengeId)}&resent=1`, 303);
  });

  const renderDefault = async (request: FastifyRequest, reply: FastifyReply, error: { code: ErrorCode; params?: Record<string, string | number> } | null = null, chosen?: string) => {
    const session = request.auth!;
    const methods = await listMethods(ctx, session.user.id, session.user.default_method_id);
    return reply.render(
      'security-info/default.njk',
      {
        backHref: '/security-info',
        options: methods.map((m) => ({ value: m.id, text: labelMethod(m.name, m.detail), checked: chosen ? m.id === chosen : m.isDefault })),
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
    const session = request.auth!;
    const method = await ctx.store.methods.findForUser(session.user.id, methodId);
    if (!method || method.status !== 'active') throw new PortcullisError('method-not-found');
    // Said before the button, not only after it: the last method meeting a requirement cannot go.
    const refusal = error ? null : await deletionRefusalFor(ctx, session.user, method.id);
    return reply.render(
      'security-info/delete.njk',
      {
        backHref: '/security-info',
        methodId: method.id,
        method: describeMethod(method),
        lastOne: (await ctx.store.methods.countActive(session.user.id)) === 1,
        refusal,
        ...(error ? formError(error) : {}),
      },
      error ? errorCatalogue[error.code].status : 200,
    );
  }

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

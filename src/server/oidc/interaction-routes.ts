/**
 * The OpenID Connect interaction pages, `/oidc-interaction/<uid>` (docs/oidc.md#the-interaction), outside
 * the /oidc mount (oidc-provider answers 404 for every path under it that it does not know). Thin: each
 * route builds the port onto oidc-provider's interaction, calls one use case (src/app/oidc/interactions.ts)
 * and renders or redirects.
 *
 * oidc-provider's `interactionFinished` writes a 303 on the raw response itself, which Fastify would then
 * try to answer again (or would need `reply.hijack()`, skipping our onSend headers); `interactionResult`
 * saves the same result and gives the resume URL, which we redirect to with Fastify. Both take the raw
 * request and response (`request.raw`, `reply.raw`) to read oidc-provider's signed interaction cookie,
 * whose path is this page's.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import type { AppContext } from '../../app/context.js';
import {
  abandonUnmetInteraction,
  answerConsent,
  askedAcrOf,
  continueInteraction,
  type InteractionPort,
  type InteractionResult,
  type InteractionStep,
} from '../../app/oidc/interactions.js';
import { field } from '../forms.js';
import { clientInfo } from '../sign-in/routes.js';

/** The parts of oidc-provider's prompt details consent reads (its own type says only "unknown object"). */
interface ConsentDetails {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

interface InteractionParams {
  login_hint?: unknown;
  client_id?: unknown;
  prompt?: unknown;
  max_age?: unknown;
  acr_values?: unknown;
  claims?: unknown;
}

const UID = { type: 'object', properties: { uid: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } }, required: ['uid'] } as const;

/** The values of an `acr` claim asked for the ID token in the `claims` parameter (OpenID Connect Core 1.0 §5.5.1.1). */
function claimsAcr(claims: unknown): string[] {
  if (typeof claims !== 'string') return [];
  try {
    const acr = (JSON.parse(claims) as { id_token?: { acr?: { essential?: unknown; value?: unknown; values?: unknown } } } | null)?.id_token?.acr;
    if (acr?.essential !== true) return [];
    const values = Array.isArray(acr?.values) ? acr.values : [acr?.value];
    return values.filter((value): value is string => typeof value === 'string');
  } catch {
    return [];
  }
}

/** A `login_hint` that could be an email address, to fill in the sign-in page with; anything else is ignored. */
function emailHint(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const hint = value.trim();
  // eslint-disable-next-line no-control-regex
  return hint.length > 0 && hint.length <= 320 && hint.includes('@') && !/[\u0000-\u001f\u007f\s]/.test(hint) ? hint : null;
}

/** The interaction behind this request's cookie, as a port the use cases speak to; null when it is gone. */
async function portFor(provider: Provider, request: FastifyRequest, reply: FastifyReply): Promise<InteractionPort | null> {
  let interaction: Awaited<ReturnType<Provider['interactionDetails']>>;
  try {
    interaction = await provider.interactionDetails(request.raw, reply.raw);
  } catch (error) {
    // SessionNotFound: no interaction cookie, or an expired interaction.
    if ((error as { name?: unknown }).name === 'SessionNotFound') return null;
    throw error;
  }
  // The cookie names the interaction; the address must name the same one.
  if (interaction.uid !== (request.params as { uid: string }).uid) return null;
  const params = interaction.params as InteractionParams;
  const details = interaction.prompt.details as ConsentDetails;
  const clientId = String(params.client_id);
  return {
    details: {
      uid: interaction.uid,
      prompt: interaction.prompt.name,
      clientId,
      accountId: interaction.session?.accountId,
      startedAt: new Date(interaction.iat * 1000),
      promptLogin: typeof params.prompt === 'string' && params.prompt.split(' ').includes('login'),
      maxAge: params.max_age === undefined || params.max_age === null || params.max_age === '' ? undefined : Number(params.max_age),
      askedAcr: askedAcrOf(params.acr_values, claimsAcr(params.claims)),
      missingScopes: details.missingOIDCScope ?? [],
      ...(emailHint(params.login_hint) ? { loginHint: emailHint(params.login_hint)! } : {}),
    },
    finish: (result: InteractionResult) => provider.interactionResult(request.raw, reply.raw, result),
    async grant(accountId: string) {
      const existing = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
      const grant = existing ?? new provider.Grant({ accountId, clientId });
      if (details.missingOIDCScope?.length) grant.addOIDCScope(details.missingOIDCScope.join(' '));
      if (details.missingOIDCClaims?.length) grant.addOIDCClaims(details.missingOIDCClaims);
      for (const [resource, scopes] of Object.entries(details.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
      return grant.save();
    },
  };
}

/**
 * A navigation that began on one of our pages (Fetch Metadata `Sec-Fetch-Site: same-origin`: a form we
 * posted, or a redirect after one) may be a form submission, and the browser checks our page CSP's
 * `form-action 'self'` on every redirect of it — so a 303 chain on to the provider and then to the
 * application's redirect URI would be blocked at the last step (CSP Level 3 §6.4.2). Such a navigation
 * ends here, at a page of ours that continues with an instant meta refresh (WCAG technique H76): a new
 * navigation, which `form-action` does not govern. One that began at the application (`cross-site`) or
 * outside any page (`none`, or no header) is redirected at once.
 */
function returnToApplication(request: FastifyRequest, reply: FastifyReply, step: Extract<InteractionStep, { kind: 'return' }>) {
  if (request.headers['sec-fetch-site'] !== 'same-origin') return reply.redirect(step.location, 303);
  return reply.header('cache-control', 'no-store').render('oidc/continue.njk', { application: step.application, location: step.location });
}

function renderStep(request: FastifyRequest, reply: FastifyReply, uid: string, step: InteractionStep) {
  switch (step.kind) {
    case 'redirect':
      return reply.redirect(step.location, 303);
    case 'return':
      return returnToApplication(request, reply, step);
    case 'confirm':
      return reply.render('oidc/confirm.njk', { application: step.application, location: step.location });
    case 'consent':
      return reply.render('oidc/consent.njk', { uid, application: step.application, scopes: step.scopes });
    case 'unmet':
      return reply.render('oidc/unmet.njk', { uid, application: step.application, asked: step.asked, addMethod: step.addMethod });
  }
}

function renderExpired(reply: FastifyReply) {
  return reply.render(
    'error.njk',
    {
      title: 'This sign-in has expired',
      message: 'Go back to the application you were signing in to, and try again.',
      linkHref: '/account',
      linkText: 'Go to My account',
    },
    400,
  );
}

export async function interactionRoutes(app: FastifyInstance, { ctx, provider }: { ctx: AppContext; provider: () => Promise<Provider> }): Promise<void> {
  app.get('/oidc-interaction/:uid', { schema: { params: UID } }, async (request, reply) => {
    const port = await portFor(await provider(), request, reply);
    if (!port) return renderExpired(reply);
    return renderStep(request, reply, port.details.uid, await continueInteraction(ctx, port, request.auth, clientInfo(request)));
  });

  app.post('/oidc-interaction/:uid/consent', { schema: { params: UID } }, async (request, reply) => {
    const port = await portFor(await provider(), request, reply);
    if (!port) return renderExpired(reply);
    const allow = field(request.body, 'decision') === 'allow';
    return renderStep(request, reply, port.details.uid, await answerConsent(ctx, port, request.auth, allow, clientInfo(request)));
  });

  app.post('/oidc-interaction/:uid/unmet', { schema: { params: UID } }, async (request, reply) => {
    const port = await portFor(await provider(), request, reply);
    if (!port) return renderExpired(reply);
    return renderStep(request, reply, port.details.uid, await abandonUnmetInteraction(ctx, port, request.auth, clientInfo(request)));
  });
}

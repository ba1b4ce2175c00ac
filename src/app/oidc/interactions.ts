/**
 * The OpenID Connect interactions (docs/oidc.md#the-interaction): what Portcullis does when oidc-provider
 * sends the browser to `/oidc-interaction/<uid>` to sign in (the login prompt) or to agree (consent).
 *
 * The provider is reached through an `InteractionPort` the server builds from oidc-provider and the raw
 * request (src/server/oidc/interaction-routes.ts), so that this file never touches oidc-provider's types.
 * The decision for the login prompt is pure (src/core/oidc/login.ts); this file loads what it needs and
 * performs what it decides.
 */
import { ACR, acrReachedBy, askedAcrValues, decideAcr, raiseAskedAcr } from '../../core/oidc/acr.js';
import { decideLogin, type LoginDecision } from '../../core/oidc/login.js';
import { methodDefinitions } from '../../core/methods/registry.js';
import { registrableFor, signInPolicy } from '../policy.js';
import { demandFor } from './application-policy.js';
import type { ActiveSession, ClientInfo as RequestInfo } from '../sessions.js';
import type { AppContext } from '../context.js';
import { showClient, type ClientInfo } from './clients.js';

/** What the server reads from oidc-provider's interaction. */
export interface InteractionDetails {
  uid: string;
  /** The prompt to answer: `login` or `consent`. */
  prompt: string;
  clientId: string;
  /** The provider session's account, once the login prompt was answered. */
  accountId: string | undefined;
  startedAt: Date;
  promptLogin: boolean;
  maxAge: number | undefined;
  /** acr_values and an `acr` claims request, in order of preference. */
  askedAcr: string[];
  /** The OpenID scopes consent would add (oidc-provider's `missingOIDCScope`). */
  missingScopes: string[];
  /** `login_hint`, when it could be an email address (at most 320 characters, no control characters). */
  loginHint?: string;
}

export type InteractionResult =
  | { login: { accountId: string; acr: string; amr: string[]; ts: number } }
  | { consent: { grantId: string } }
  | { error: string; error_description: string };

export interface InteractionPort {
  details: InteractionDetails;
  /** Saves the result on the interaction and says where the browser goes next (the provider's resume URL). */
  finish(result: InteractionResult): Promise<string>;
  /** Adds what consent is missing (scopes, claims, resource scopes) to the interaction's grant or a new one. */
  grant(accountId: string): Promise<string>;
}

export interface ApplicationView {
  name: string;
  clientId: string;
}

export type InteractionStep =
  | { kind: 'redirect'; location: string }
  /** Back to the provider, which answers the application: the interaction is finished (or ended with an error). */
  | { kind: 'return'; application: ApplicationView; location: string }
  /** The session must step up: a page with a button, so that the step-up starts from our own page. */
  | { kind: 'confirm'; application: ApplicationView; location: string }
  | { kind: 'consent'; application: ApplicationView; scopes: string[] }
  | { kind: 'unmet'; application: ApplicationView; asked: string; addMethod: string | null };

/** The scopes in plain English, for "Allow <application> to …". */
export const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'know who you are when you sign in',
  email: 'see your email address',
  profile: 'see your name',
  offline_access: 'stay connected to your account when you are not using it',
};

/** What each class asks of a person, in words, for the page that says it cannot be met. */
const ACR_NAMES: Record<string, string> = {
  [ACR.password]: 'your password',
  [ACR.mfa]: 'a second way to sign in, such as an authenticator app or your phone',
  [ACR.appPush]: `a notification on the Portcullis Authenticator app (${methodDefinitions.push.name})`,
  [ACR.phishingResistant]: 'a passkey',
};

const interactionPath = (uid: string): string => `/oidc-interaction/${uid}`;
/** Our sign-in, back to the interaction; the application's `login_hint` fills in the email field (OpenID Connect Core 1.0 §3.1.2.1). */
const signInFor = (details: InteractionDetails, fresh: boolean): string =>
  `/sign-in?returnTo=${encodeURIComponent(interactionPath(details.uid))}${fresh ? '&prompt=login' : ''}${details.loginHint ? `&login_hint=${encodeURIComponent(details.loginHint)}` : ''}`;

function view(client: ClientInfo): ApplicationView {
  return { name: client.name, clientId: client.clientId };
}

/**
 * The login prompt's decision, with what was asked raised to what the policy's requirements for this
 * application ask (`client:KEY`, docs/oidc.md#applications-in-the-policy): the stronger wins, as an
 * essential acr. `reportOnly` lists the report-only requirements the session does not reach.
 */
async function loginDecision(
  ctx: AppContext,
  details: InteractionDetails,
  session: ActiveSession | null,
): Promise<{ decision: LoginDecision; asked: string[]; reportOnly: string[] }> {
  if (!session) return { decision: decideLogin({ ...details }, null, [], ctx.clock()), asked: details.askedAcr, reportOnly: [] };
  const [allowed, demand] = await Promise.all([signInPolicy(ctx, session.user), demandFor(ctx, session.user, details.clientId)]);
  const asked = raiseAskedAcr(details.askedAcr, demand.acr);
  const decision = decideLogin(
    { promptLogin: details.promptLogin, maxAge: details.maxAge, askedAcr: asked, startedAt: details.startedAt },
    { userId: session.user.id, signedInAt: session.createdAt, methods: session.methods, restricted: session.restricted !== null },
    allowed.usable.map((method) => method.kind),
    ctx.clock(),
  );
  const reached = acrReachedBy(session.methods.map((m) => m.method));
  const reportOnly = demand.reportOnly.filter((r) => !decideAcr([r.acr], reached).met).map((r) => r.id);
  return { decision, asked, reportOnly };
}

/** The person who answers consent must be the one the provider signed in. */
function sameAccount(details: InteractionDetails, session: ActiveSession | null): boolean {
  return session !== null && session.restricted === null && session.user.id === details.accountId;
}

async function grantConsent(ctx: AppContext, port: InteractionPort, session: ActiveSession, client: ClientInfo, request: RequestInfo): Promise<string> {
  const grantId = await port.grant(session.user.id);
  await ctx.store.audit.append({
    type: 'oidc.consent-given',
    at: ctx.clock(),
    actor: { kind: 'user', userId: session.user.id },
    subjectUserId: session.user.id,
    ip: request.ip,
    details: { client_id: client.clientId, grant_id: grantId, scope: port.details.missingScopes.join(' '), first_party: client.firstParty },
  });
  return port.finish({ consent: { grantId } });
}

/** GET /oidc-interaction/<uid>: answer the prompt at once if we can, or say what the person must do. */
export async function continueInteraction(ctx: AppContext, port: InteractionPort, session: ActiveSession | null, request: RequestInfo): Promise<InteractionStep> {
  const { details } = port;
  const client = await showClient(ctx, details.clientId);
  if (details.prompt === 'login') {
    const { decision, asked, reportOnly } = await loginDecision(ctx, details, session);
    switch (decision.action) {
      case 'finish':
        // Report-only (docs/policy.md): never blocks; says who would have been stopped.
        if (reportOnly.length) {
          await ctx.store.audit.append({
            type: 'oidc.policy-requirement-unmet',
            at: ctx.clock(),
            actor: { kind: 'user', userId: decision.accountId },
            subjectUserId: decision.accountId,
            ip: request.ip,
            details: { client_id: details.clientId, requirement_ids: reportOnly, mode: 'report-only', acr: decision.acr },
          });
        }
        return { kind: 'return', application: view(client), location: await port.finish({ login: { accountId: decision.accountId, acr: decision.acr, amr: decision.amr, ts: decision.authTime } }) };
      case 'sign-in':
        // A fresh sign-in is a new sign-in flow even for a signed-in person (`prompt=login` on /sign-in);
        // it ends their old session and starts a new one, whose time is the new auth_time.
        return { kind: 'redirect', location: signInFor(details, decision.reason === 'fresh-sign-in') };
      case 'step-up':
        // The step-up offers first, and only, the methods that reach the class to reach (a push for app-push).
        return {
          kind: 'confirm',
          application: view(client),
          location: `/sign-in/step-up?returnTo=${encodeURIComponent(interactionPath(details.uid))}&acr=${encodeURIComponent(decision.acr)}`,
        };
      case 'unreachable': {
        const registrable = await registrableFor(ctx, session!.user);
        const reaching =
          asked.find((acr) => acr === ACR.phishingResistant && registrable.enabled.includes('passkey')) ??
          asked.find((acr) => acr === ACR.appPush && (registrable.enabled.includes('push') || registrable.enabled.includes('passkey'))) ??
          asked.find((acr) => acr === ACR.mfa && registrable.enabled.length > 0);
        return { kind: 'unmet', application: view(client), asked: ACR_NAMES[asked[0] ?? ''] ?? 'a way of signing in Portcullis does not offer', addMethod: reaching ? '/security-info/add' : null };
      }
    }
  }
  if (!session || session.restricted !== null) return { kind: 'redirect', location: signInFor(details, false) };
  if (!sameAccount(details, session)) {
    // Someone else signed in to Portcullis in this browser since the provider signed this person in.
    return { kind: 'return', application: view(client), location: await port.finish({ error: 'login_required', error_description: 'the signed-in account changed' }) };
  }
  // OpenID Connect Core 1.0 §3.1.2.4: consent may be established by other means; for our own applications
  // it is (docs/oidc.md#consent), so no page is shown.
  if (client.firstParty) return { kind: 'return', application: view(client), location: await grantConsent(ctx, port, session, client, request) };
  return { kind: 'consent', application: view(client), scopes: details.missingScopes.map((scope) => SCOPE_DESCRIPTIONS[scope] ?? scope) };
}

/** POST …/consent: Allow grants what was asked; Cancel ends with access_denied (OpenID Connect Core 1.0 §3.1.2.6). */
export async function answerConsent(ctx: AppContext, port: InteractionPort, session: ActiveSession | null, allow: boolean, request: RequestInfo): Promise<InteractionStep> {
  if (port.details.prompt !== 'consent' || !sameAccount(port.details, session)) return continueInteraction(ctx, port, session, request);
  const client = await showClient(ctx, port.details.clientId);
  if (!allow) return { kind: 'return', application: view(client), location: await port.finish({ error: 'access_denied', error_description: 'the person did not allow the application' }) };
  return { kind: 'return', application: view(client), location: await grantConsent(ctx, port, session!, client, request) };
}

/**
 * POST …/unmet: "Return to <application>", ending the request with `unmet_authentication_requirements`
 * (OpenID Connect Core 1.0 Errata 2 §3.1.2.6; RFC 9470 §3), only while it truly cannot be met.
 */
export async function abandonUnmetInteraction(ctx: AppContext, port: InteractionPort, session: ActiveSession | null, request: RequestInfo): Promise<InteractionStep> {
  if (port.details.prompt === 'login' && (await loginDecision(ctx, port.details, session)).decision.action === 'unreachable') {
    return {
      kind: 'return',
      application: view(await showClient(ctx, port.details.clientId)),
      location: await port.finish({ error: 'unmet_authentication_requirements', error_description: 'the requested authentication context cannot be met with the methods this person has' }),
    };
  }
  return continueInteraction(ctx, port, session, request);
}

/**
 * The classes an authorization request asks for (OpenID Connect Core 1.0 §3.1.2.1 `acr_values`, in
 * order of preference, and an essential `acr` claim's values): what `details.askedAcr` holds.
 */
export function askedAcrOf(acrValues: unknown, claimsAcr: readonly string[]): string[] {
  return askedAcrValues(typeof acrValues === 'string' ? acrValues : undefined, claimsAcr);
}

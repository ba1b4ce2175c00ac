/**
 * oidc-provider's own pages in our look (issue #13 point 6; docs/oidc.md#the-providers-own-pages): its error
 * page (`renderError`), the RP-initiated logout confirmation (`logoutSource`) and the signed-out page
 * (`postLogoutSuccessSource`), rendered from our Nunjucks views with our layout. They answer from its Koa
 * context, under OIDC_CSP (src/server/oidc/plugin.ts): no inline style; the layout's one inline script runs
 * with a nonce of the response (withNonce).
 *
 * An error page says what happened and what to do; the OAuth error code is shown only as a reference for
 * whoever helps the person, never the description, which may carry internal details. oidc-provider renders
 * this page, never a redirect, when it cannot trust the redirect URI (RFC 6749 §4.1.2.1) or the
 * post_logout_redirect_uri (OpenID Connect RP-Initiated Logout 1.0 §4).
 *
 * The form_post page (`response_mode=form_post`) stays oidc-provider's: it is a blank page that submits
 * itself, and its one inline script is allowed by the hash oidc-provider adds to OIDC_CSP's script-src.
 */
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { secureRandomBytes } from '../../crypto/tokens.js';
import type { PageRenderer } from '../plugins/views.js';

type Hooks = Pick<Configuration, 'renderError'> & {
  logoutSource: (ctx: KoaContextWithOIDC, form: string) => Promise<void>;
  postLogoutSuccessSource: (ctx: KoaContextWithOIDC) => Promise<void>;
};

interface ErrorText {
  title: string;
  message: string;
}

/** What to say for an error the person can see; by route and error code, never by description. */
function errorText(route: string | undefined, error: string, status: number): ErrorText {
  const retry = 'Go back to the application and try again. If this keeps happening, contact the application’s support team and give them the reference below.';
  if (status >= 500) return { title: 'Sorry, there is a problem with the service', message: 'Try again later.' };
  if (route?.startsWith('end_session')) return { title: 'Sorry, there is a problem with this sign-out request', message: `The application sent a sign-out request that cannot be used. You have not been signed out. ${retry}` };
  if (error === 'invalid_client') return { title: 'This application cannot use your account', message: `The application is not set up to sign people in with this service. ${retry}` };
  if (error === 'invalid_redirect_uri') return { title: 'Sorry, there is a problem with this sign-in request', message: `The application asked to send you back to an address it has not registered, so you have not been sent there. ${retry}` };
  return { title: 'Sorry, there is a problem with this sign-in request', message: `The application sent a request that cannot be used. ${retry}` };
}

/**
 * Our layout's one inline script (the NHS.UK template's `js-enabled` class) runs with a nonce of this response,
 * added to the script-src of the CSP the plugin set (OIDC_CSP), as on our own pages; nothing else inline.
 */
function withNonce(ctx: KoaContextWithOIDC): string {
  const nonce = secureRandomBytes(16).toString('base64');
  const csp = ctx.response.get('content-security-policy');
  if (csp) ctx.set('content-security-policy', csp.replace(/(^|;\s*)script-src ([^;]*)/, `$1script-src $2 'nonce-${nonce}'`));
  return nonce;
}

function answerHtml(ctx: KoaContextWithOIDC, render: PageRenderer, template: string, data: Record<string, unknown>): void {
  const cspNonce = withNonce(ctx);
  ctx.type = 'html';
  ctx.set('cache-control', 'no-store');
  ctx.body = render(template, { ...data, cspNonce, currentUser: null });
}

/** The application's name for a page: its registered name, else its id; none without a client. */
function applicationName(ctx: KoaContextWithOIDC): string | null {
  const client = ctx.oidc?.client;
  return client ? (client.clientName ?? client.clientId) : null;
}

export function providerPages(render: PageRenderer): Hooks {
  return {
    async renderError(ctx, out, _error) {
      const reference = typeof out.error === 'string' && /^[a-z_]{1,64}$/.test(out.error) ? out.error : 'server_error';
      const text = errorText(ctx.oidc?.route, reference, ctx.status);
      answerHtml(ctx, render, 'oidc/error.njk', { ...text, reference });
    },
    // oidc-provider's form carries its hidden xsrf input and posts to /oidc/session/end/confirm; the buttons
    // go inside it. "Yes" sends logout=yes (the provider session ends, and ours: ./logout.ts); "No" sends
    // nothing, and oidc-provider forgets only this application's part of the session.
    async logoutSource(ctx, form) {
      const formOpen = form.replace(/<\/form>\s*$/, '');
      answerHtml(ctx, render, 'oidc/logout.njk', { application: applicationName(ctx), formOpen });
    },
    async postLogoutSuccessSource(ctx) {
      answerHtml(ctx, render, 'oidc/signed-out.njk', { application: applicationName(ctx) });
    },
  };
}

/**
 * The OpenID Connect provider, mounted at /oidc with @fastify/middie (docs/oidc.md).
 *
 * oidc-provider is a Koa application: its `callback()` answers Node's raw request, so it runs as
 * middleware at onRequest and Fastify's later hooks never see its responses. That is why:
 * - CSRF (a preHandler) does not apply: the provider checks its own requests (state, PKCE, client
 *   authentication, its own cookies);
 * - our page CSP would not reach it, and must not (its form_post page carries an inline script whose hash
 *   it adds to the CSP it finds): the baseline headers are set here, before it runs;
 * - the interaction pages live outside /oidc (`/oidc-interaction/<uid>`), as oidc-provider answers 404
 *   for any path under its mount it does not know.
 *
 * The signing keys are read from the database at start (and made on the first start), then checked every
 * KEY_SET_REFRESH_SECONDS: after `portcullis keys rotate` on any machine, every node publishes and signs
 * with the new set within that time. oidc-provider takes its keys when built, so a changed set means a new
 * Provider; its state is all in the adapter, so nothing in flight is lost.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import middie from '@fastify/middie';
import fp from 'fastify-plugin';
import type { AppContext } from '../../app/context.js';
import { KEY_SET_REFRESH_SECONDS } from '../../app/oidc/lifetimes.js';
import { ensureSigningKeys, loadPublishedKeys } from '../../app/oidc/signing-keys.js';
import { PERMISSIONS_POLICY } from '../plugins/security-headers.js';
import type Provider from 'oidc-provider';
import { recordProviderEvents } from './events.js';
import { interactionRoutes } from './interaction-routes.js';
import { endPortcullisSessionOnLogout } from './logout.js';
import { createProvider, OIDC_MOUNT } from './provider.js';
import { tokenWritesInOneTransaction } from './token-writes.js';

/**
 * For the provider's JSON and its few HTML pages: nothing loads but our stylesheet, images and scripts from
 * /assets (its error, logout and signed-out pages are our views, ./pages.ts) and what it adds itself (the
 * hash of its form_post script joins script-src); no inline style, no framing. form-action is left open:
 * form_post posts to the client's redirect URI, on the client's origin.
 */
export const OIDC_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

function setBaselineHeaders(res: ServerResponse, https: boolean): void {
  res.setHeader('content-security-policy', OIDC_CSP);
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('referrer-policy', 'same-origin');
  res.setHeader('permissions-policy', PERMISSIONS_POLICY);
  // The JWKS and discovery document are read by clients from other origins (OpenID Connect Discovery 1.0 §4).
  res.setHeader('cross-origin-resource-policy', 'cross-origin');
  if (https) res.setHeader('strict-transport-security', 'max-age=31536000; includeSubDomains');
}

export const oidcProvider = fp<{ ctx: AppContext }>(
  async (app, { ctx }) => {
    const created = await ensureSigningKeys(ctx);
    if (created.length) ctx.logger.info({ algorithms: created }, 'OpenID Connect signing keys generated');

    // Every provider built (one per key set) reports its grants, refusals and revocations (./events.ts).
    const build = (keys: typeof published.keys) => {
      const provider = createProvider(ctx, keys);
      recordProviderEvents(provider, ctx);
      endPortcullisSessionOnLogout(provider, ctx);
      tokenWritesInOneTransaction(provider, ctx);
      // callback() composes Koa's middleware: once per provider, not per request.
      return { provider, callback: provider.callback() };
    };
    let published = await loadPublishedKeys(ctx);
    let handler = build(published.keys);
    let checkedAt = ctx.clock().getTime();
    let refreshing: Promise<void> | null = null;

    const refresh = async (): Promise<void> => {
      const next = await loadPublishedKeys(ctx);
      if (next.fingerprint !== published.fingerprint) {
        handler = build(next.keys);
        published = next;
        ctx.logger.info({ keys: next.fingerprint }, 'OpenID Connect signing keys reloaded');
      }
    };

    /** The provider with the key set of at most KEY_SET_REFRESH_SECONDS ago; one reload at a time. */
    const currentHandler = async (): Promise<typeof handler> => {
      const now = ctx.clock().getTime();
      if (now - checkedAt >= KEY_SET_REFRESH_SECONDS * 1000) {
        checkedAt = now;
        refreshing ??= refresh().finally(() => {
          refreshing = null;
        });
        await refreshing;
      }
      return handler;
    };

    const publicHost = ctx.config.publicUrl.host;
    await app.register(middie);
    app.use(OIDC_MOUNT, (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => {
      // Endpoints in the discovery document are built from the request's host: pin it to PUBLIC_URL's,
      // so a forged Host or X-Forwarded-Host cannot advertise another server's endpoints.
      req.headers.host = publicHost;
      delete req.headers['x-forwarded-host'];
      setBaselineHeaders(res, ctx.config.https);
      currentHandler().then(
        (current) => current.callback(req, res),
        (error: unknown) => next(error),
      );
    });

    // The interaction pages, outside the mount, with the provider of the current key set (any provider
    // reads any interaction: their state is all in the adapter).
    const currentProvider = async (): Promise<Provider> => (await currentHandler()).provider;
    await app.register(interactionRoutes, { ctx, provider: currentProvider });
  },
  { name: 'oidc-provider' },
);

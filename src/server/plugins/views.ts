/**
 * Pages: Nunjucks views with the NHS.UK frontend's macros. Every page gets the organisation name, this
 * response's CSP nonce and CSRF token, and the signed-in user. Pages are never cached (they may show
 * personal data).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import nunjucks from 'nunjucks';
import { randomToken } from '../../crypto/tokens.js';
import { WEB_DIR } from '../../paths.js';

export const VIEWS_DIR = path.join(WEB_DIR, 'views');

function nhsukDistDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('nhsuk-frontend/package.json')), 'dist');
}

export function createViewEnvironment(): nunjucks.Environment {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader([VIEWS_DIR, nhsukDistDir()], { noCache: false }), {
    autoescape: true,
    throwOnUndefined: false,
  });
  // Nunjucks's own trim is /^\s*|\s*$/g, quadratic on long strings; the NHS.UK macros trim whole
  // components, which made it most of a page's rendering time. Same result, linear.
  env.addFilter('trim', (value: unknown) => {
    const trimmed = String(value).trim();
    return value instanceof nunjucks.runtime.SafeString ? new nunjucks.runtime.SafeString(trimmed) : trimmed;
  });
  return env;
}

/**
 * Pages seen by people who are not signed in (the sign-in page above all: a whole workforce opens it at
 * the start of a shift) depend only on their data, this response's CSP nonce and the browser's CSRF
 * token. Such a page is rendered once per distinct data with random placeholders for the two, and the
 * placeholders are replaced per response. Nunjucks re-imports every NHS.UK macro on each render, which
 * costs more than the rest of the request.
 */
const RENDER_CACHE_SIZE = 200;

/** Renders a view to a string, with what every page gets (the organisation name, no errors yet). */
export type PageRenderer = (template: string, context: Record<string, unknown>) => string;

/**
 * A renderer for pages written outside Fastify's reply: oidc-provider's own pages (src/server/oidc/pages.ts),
 * which answer from its Koa context and have neither this response's nonce nor our CSRF token.
 */
export function createPageRenderer(organisationName: string, env: nunjucks.Environment = createViewEnvironment()): PageRenderer {
  return (template, context) => env.render(template, { organisationName, fieldErrors: {}, errors: [], ...context });
}

export const views = fp<{ organisationName: string }>(
  async (app, options) => {
    const env = createViewEnvironment();
    const nonceMark = `nonce${randomToken(12).replace(/[^A-Za-z0-9]/g, '')}`;
    const csrfMark = `csrf${randomToken(12).replace(/[^A-Za-z0-9]/g, '')}`;
    const cache = new Map<string, string>();

    const renderPage = createPageRenderer(options.organisationName, env);

    app.decorateReply('render', function (this: FastifyReply, template: string, data: Record<string, unknown> = {}, status = 200) {
      const request = this.request;
      const user = request.auth?.user;
      let html: string;
      if (user) {
        html = renderPage(template, {
          cspNonce: request.cspNonce,
          csrfToken: this.csrfToken(),
          currentUser: { displayName: user.display_name, email: user.email },
          ...data,
        });
      } else {
        const key = `${template}\u0000${JSON.stringify(data)}`;
        let page = cache.get(key);
        if (page === undefined) {
          page = renderPage(template, { cspNonce: nonceMark, csrfToken: csrfMark, currentUser: null, ...data });
          if (cache.size >= RENDER_CACHE_SIZE) cache.delete(cache.keys().next().value!);
          cache.set(key, page);
        }
        html = page.replaceAll(nonceMark, request.cspNonce).replaceAll(csrfMark, this.csrfToken());
      }
      return this.code(status).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
    });
  },
  { name: 'views', dependencies: ['csrf'] },
);

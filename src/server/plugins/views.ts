/**
 * Pages: Nunjucks views with the NHS.UK frontend's macros. Every page gets the organisation name, this
 * response's CSP nonce and CSRF token, and the signed-in user. Pages are never cached (they may show
 * personal data).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import nunjucks from 'nunjucks';

const here = path.dirname(fileURLToPath(import.meta.url));
export const VIEWS_DIR = path.resolve(here, '..', '..', 'web', 'views');

function nhsukDistDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('nhsuk-frontend/package.json')), 'dist');
}

export function createViewEnvironment(): nunjucks.Environment {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader([VIEWS_DIR, nhsukDistDir()], { noCache: false }), {
    autoescape: true,
    throwOnUndefined: false,
  });
  return env;
}

export const views = fp<{ organisationName: string }>(
  async (app, options) => {
    const env = createViewEnvironment();
    app.decorateReply('render', function (this: FastifyReply, template: string, data: Record<string, unknown> = {}, status = 200) {
      const request = this.request;
      const user = request.auth?.user;
      const html = env.render(template, {
        organisationName: options.organisationName,
        cspNonce: request.cspNonce,
        csrfToken: this.csrfToken(),
        currentUser: user ? { displayName: user.display_name, email: user.email } : null,
        fieldErrors: {},
        errors: [],
        ...data,
      });
      return this.code(status).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
    });
  },
  { name: 'views', dependencies: ['csrf'] },
);

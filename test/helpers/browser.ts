/**
 * Real Chromium (Debian's /usr/bin/chromium) driven by playwright-core, a live Portcullis on a free
 * port, and axe-core for WCAG 2.2 AA checks.
 */
import { createServer } from 'node:net';
import axe from 'axe-core';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, type TestContext } from './context.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'],
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function listen(app: FastifyInstance, port: number): Promise<void> {
  await app.listen({ host: '127.0.0.1', port });
}

/** Records every request the page makes to a host other than the one under test, and blocks it. */
export async function blockOutsideRequests(page: Page, allowedOrigin: string): Promise<string[]> {
  const outside: string[] = [];
  await page.route('**/*', async (route) => {
    const url = route.request().url();
    if (url.startsWith(allowedOrigin) || url.startsWith('data:')) return route.continue();
    outside.push(url);
    return route.abort();
  });
  return outside;
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** Runs axe-core with the WCAG 2.0, 2.1 and 2.2 A and AA rules; returns the violations. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  // page.evaluate runs outside the page's CSP, so axe needs no inline script allowance.
  await page.evaluate(axe.source);
  return page.evaluate(async () => {
    const result = await (window as unknown as { axe: typeof axe }).axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'] },
    });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact ?? null, help: v.help, nodes: v.nodes.map((n) => n.html) }));
  });
}

export async function expectAccessible(page: Page): Promise<void> {
  const violations = await axeViolations(page);
  expect(violations, `axe-core on ${page.url()}: ${JSON.stringify(violations).slice(0, 1500)}`).toEqual([]);
}

export interface LiveServer {
  ctx: TestContext;
  app: FastifyInstance;
  browser: Browser;
  origin: string;
  close(): Promise<void>;
}

/**
 * Portcullis on a free port of localhost, on a fresh SQLite (or PostgreSQL) database, with Chromium launched;
 * `prepare` runs before the server is built (to add organisations and users).
 */
export async function startLiveServer(
  env: Record<string, string> = {},
  prepare?: (ctx: TestContext) => Promise<void>,
  dialect: 'sqlite' | 'postgres' = 'sqlite',
): Promise<LiveServer> {
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  const ctx = await createTestContext(dialect, { PUBLIC_URL: origin, ...env });
  if (prepare) await prepare(ctx);
  const app = await buildApp(ctx);
  await listen(app, port);
  const browser = await launchChromium();
  return {
    ctx,
    app,
    browser,
    origin,
    async close() {
      await browser.close();
      await app.close();
      await ctx.destroy();
    },
  };
}

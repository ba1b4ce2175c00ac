/**
 * /dev/outbox: served only with DEVELOPMENT_PAGES=true; lists the development outbox with codes,
 * escaped, filterable by recipient.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';

describe.each(dialects)('development pages on %s', (dialect) => {
  describe('with DEVELOPMENT_PAGES=true', () => {
    let ctx: TestContext;
    let app: FastifyInstance;
    beforeAll(async () => {
      ctx = await createTestContext(dialect, { DEVELOPMENT_PAGES: 'true' });
      app = await buildApp(ctx);
    });
    afterAll(async () => {
      await app?.close();
      await ctx?.destroy();
    });

    it('lists the development outbox, newest first, with codes', async () => {
      const empty = await app.inject({ method: 'GET', url: '/dev/outbox' });
      expect(empty.statusCode).toBe(200);
      expect(empty.body).toContain('There are no messages in the outbox yet.');

      await ctx.delivery.enqueue({ channel: 'sms', to: '+447700900123', purpose: 'sign-in-code', text: '551208 is your Portcullis sign-in code.', code: '551208' });
      await ctx.delivery.enqueue({ channel: 'voice', to: '+447700900456', purpose: 'sign-in-code', text: 'Your code is 774411.', code: '774411' });
      await ctx.delivery.enqueue({ channel: 'email', to: 'alex@example.org', purpose: 'security-notice', subject: 'Hello <b>there</b>', text: 'A <script>alert(1)</script> notice' });
      await ctx.delivery.dispatchDue();

      const page = await app.inject({ method: 'GET', url: '/dev/outbox' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['cache-control']).toBe('no-store');
      expect(page.headers['x-robots-tag']).toBe('noindex');
      expect(page.body).toContain('<h1 class="nhsuk-heading-l">Development outbox</h1>');
      expect(page.body).toContain('551208 is your Portcullis sign-in code.');
      expect(page.body).toContain('+447700900456');
      expect(page.body).toContain('Voice call');
      expect(page.body).toContain('Hello &lt;b&gt;there&lt;/b&gt;: A &lt;script&gt;alert(1)&lt;/script&gt; notice');
      expect(page.body).not.toContain('<script>alert(1)');
      const table = page.body.slice(page.body.indexOf('<table'));
      const order = ['alex@example.org', '+447700900456', '+447700900123'].map((to) => table.indexOf(to));
      expect(order.every((index) => index > 0)).toBe(true);
      expect(order).toEqual([...order].sort((a, b) => a - b));

      const filtered = await app.inject({ method: 'GET', url: '/dev/outbox?to=%2B447700900123' });
      expect(filtered.body).toContain('551208');
      expect(filtered.body).not.toContain('774411');
      expect(filtered.body).toContain('value="+447700900123"');
    });
  });

  describe('without DEVELOPMENT_PAGES', () => {
    let ctx: TestContext;
    let app: FastifyInstance;
    beforeAll(async () => {
      ctx = await createTestContext(dialect);
      app = await buildApp(ctx);
    });
    afterAll(async () => {
      await app?.close();
      await ctx?.destroy();
    });

    it('does not serve /dev/outbox', async () => {
      await ctx.delivery.enqueue({ channel: 'sms', to: '+447700900123', purpose: 'sign-in-code', text: '551208 is your code.', code: '551208' });
      const response = await app.inject({ method: 'GET', url: '/dev/outbox' });
      expect(response.statusCode).toBe(404);
      expect(response.body).not.toContain('551208');
    });
  });
});

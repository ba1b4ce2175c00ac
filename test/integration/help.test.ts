/**
 * Issue #16: the help centre. Articles at /help/<slug> with the deadline from the policy in force,
 * search, a 404 for an unknown article, and "Was this article helpful?" — yes counted, no with reasons
 * from the catalogue, a capped plain-text comment and an ALTCHA proof of work used once across nodes —
 * with limits per client address and per article. On SQLite and PostgreSQL.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppContext, type AppContext } from '../../src/app/context.js';
import { loadArticles, parseArticle, HELP_CONTENT_DIR } from '../../src/app/help/articles.js';
import { applyPolicyText, DEFAULT_POLICY_DOCUMENT } from '../../src/app/policy.js';
import { loadConfig } from '../../src/config/load.js';
import { buildApp } from '../../src/server/app.js';
import { createHelpFeedbackRepository } from '../../src/store/repositories/help-feedback.js';
import { formatErrorMessage } from '../../src/core/errors.js';
import { createViewEnvironment } from '../../src/server/plugins/views.js';
import { solvedCaptcha } from '../helpers/captcha.js';
import { createTestContext, createTestDatabase, dialects, TEST_SECRET, type TestContext, type TestDatabase } from '../helpers/context.js';
import { TestBrowser } from '../helpers/http.js';

const actor = { kind: 'system' } as const;

describe('help articles on disk', () => {
  it('loads every article, each with a title, a summary, an updated date not in the future and only known placeholders', () => {
    const articles = loadArticles();
    expect([...articles.keys()].sort()).toEqual(
      ['authenticator-for-other-accounts', 'elevated-rights', 'lost-phone', 'move-to-push', 'new-phone', 'register-a-second-method'].sort(),
    );
    for (const article of articles.values()) {
      expect(Date.parse(article.updated), article.slug).toBeLessThanOrEqual(Date.now());
      expect(article.headings.length, article.slug).toBeGreaterThan(0);
    }
    expect(HELP_CONTENT_DIR).toMatch(/content[/\\]help$/);
  });

  it('never passes raw HTML through, and refuses an unknown placeholder', () => {
    const article = parseArticle('x', '---\ntitle: T\nsummary: S\nupdated: 2025-01-01\n---\n\n## A\n\n<script>alert(1)</script> <b onclick="x">b</b>\n');
    expect(article.html).not.toContain('<script>');
    expect(article.html).not.toContain('<b ');
    expect(article.html).toContain('&lt;script&gt;');
    expect(article.html).toContain('<h2 class="nhsuk-heading-m" id="a">');
    expect(() => parseArticle('x', '---\ntitle: T\nsummary: S\nupdated: 2025-01-01\n---\n{{deadline:someday}}\n')).toThrow(/unknown placeholder/);
    expect(() => parseArticle('x', '---\ntitle: T\nsummary: S\n---\nbody\n')).toThrow(/updated/);
  });
});

describe('links to the articles where people need them', () => {
  const env = createViewEnvironment();
  const render = (template: string, data: Record<string, unknown>) => env.render(template, { organisationName: 'Test', fieldErrors: {}, errors: [], ...data });
  const standing = { tone: 'required', heading: 'Set up push', body: ['x'], steps: [], needed: ['push'] };

  it('links the Temporary Access Pass message to what to do', () => {
    const html = render('sign-in/password.njk', { email: 'a@example.org', returnTo: '/account', errors: [{ text: formatErrorMessage('policy-needs-tap') }] });
    expect(html).toContain('href="/help/lost-phone#if-you-have-no-other-way-to-sign-in"');
    expect(render('sign-in/password.njk', { email: 'a@example.org', returnTo: '/account' })).not.toContain('/help/');
  });

  it('links the sign-in nudge and the Security info banner to moving to push, or to a second method', () => {
    expect(render('security-info/campaign.njk', { standing, method: 'push', snoozesLeft: 2 })).toContain('href="/help/move-to-push"');
    expect(render('security-info/campaign.njk', { standing, method: 'sms', snoozesLeft: 2 })).toContain('href="/help/register-a-second-method"');
    const banner = render('security-info/index.njk', { standing, methods: [], rows: [], restricted: true });
    expect(banner).toContain('href="/help/move-to-push"');
    expect(banner).toContain('href="/help/lost-phone"');
    expect(render('security-info/index.njk', { standing: { ...standing, needed: ['sms', 'totp', 'push'] }, methods: [], rows: [] })).toContain(
      'class="nhsuk-notification-banner__link" href="/help/register-a-second-method"',
    );
  });

  it('names only articles that exist', () => {
    const slugs = new Set(loadArticles().keys());
    for (const article of loadArticles().values()) {
      for (const [, slug] of article.html.matchAll(/href="\/help\/([a-z0-9-]+)/g)) expect(slugs.has(slug!), `${article.slug} links to ${slug}`).toBe(true);
    }
  });
});

describe.each(dialects)('the help centre on %s', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  const stored = () => createHelpFeedbackRepository(ctx.store.database.db).list({ from: new Date(0), to: new Date(Date.now() + 86_400_000 * 365) });

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { HELP_FEEDBACK_PER_ADDRESS: '6', HELP_FEEDBACK_PER_ARTICLE: '8' }, { controlClock: true });
    app = await buildApp(ctx);
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('lists the articles and finds them by title and by text, without JavaScript', async () => {
    const browser = new TestBrowser(app);
    const index = await browser.get('/help');
    expect(index.statusCode).toBe(200);
    expect(index.body).toContain('href="/help/lost-phone"');
    const found = await browser.get('/help?q=wipe+phone');
    expect(found.body).toMatch(/\d+ articles? found/);
    const results = found.body.slice(found.body.indexOf('id="results"'), found.body.indexOf('All help articles'));
    expect(results).toContain('href="/help/new-phone"');
    expect(results).not.toContain('href="/help/elevated-rights"');
    expect((await browser.get('/help?q=zzzqqq')).body).toContain('No articles found');
  });

  it('renders an article with its contents list and last updated date, and says no date has been set under the default policy', async () => {
    const page = await new TestBrowser(app).get('/help/move-to-push');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<h1 class="nhsuk-heading-l">Move to push notifications with the Portcullis Authenticator</h1>');
    expect(page.body).toContain('nhsuk-contents-list');
    expect(page.body).toContain('href="#how-to-change-your-sign-in-method"');
    expect(page.body).toContain('Page last updated: 20 January 2025');
    expect(page.body).toContain('date for this change: no date has been set.');
    expect(page.body).not.toContain('{{');
  });

  it('fills the deadline from the policy in force', async () => {
    await applyPolicyText(
      ctx,
      JSON.stringify({
        ...DEFAULT_POLICY_DOCUMENT,
        requirements: [{ id: 'elevated-push', include: ['elevated'], strength: 'app-push', effective: '2031-11-30', graceDays: 0 }],
        registration: [{ id: 'everyone', include: ['all'], by: '2031-06-01' }],
      }),
      actor,
      'help test',
      { allowStranded: true },
    );
    try {
      // The policy is cached for 30 s on a node; a new app reads it afresh.
      const fresh = await buildApp(ctx);
      try {
        expect((await new TestBrowser(fresh).get('/help/move-to-push')).body).toContain('date for this change: 30 November 2031.');
        expect((await new TestBrowser(fresh).get('/help/register-a-second-method')).body).toContain('everyone to have one: 1 June 2031.');
      } finally {
        await fresh.close();
      }
    } finally {
      await applyPolicyText(ctx, JSON.stringify(DEFAULT_POLICY_DOCUMENT), actor, 'back', { allowStranded: true });
    }
  });

  it('answers an unknown article with the page-not-found page, for pages and forms', async () => {
    const browser = new TestBrowser(app);
    const page = await browser.get('/help/no-such-article');
    expect(page.statusCode).toBe(404);
    expect(page.body).toContain('Page not found');
    await browser.get('/help/lost-phone');
    expect((await browser.post('/help/no-such-article/feedback', { helpful: 'yes' })).statusCode).toBe(404);
    expect((await browser.get('/help/no-such-article/improve')).statusCode).toBe(404);
  });

  it('counts "yes" and thanks the reader; "no" asks how to improve without storing anything yet', async () => {
    const browser = new TestBrowser(app, '198.51.100.1');
    await browser.get('/help/lost-phone');
    const before = (await stored()).length;
    const yes = await browser.post('/help/lost-phone/feedback', { helpful: 'yes' });
    expect(yes.statusCode).toBe(303);
    expect(yes.headers.location).toBe('/help/lost-phone?feedback=thanks#feedback');
    expect((await browser.get('/help/lost-phone?feedback=thanks')).body).toContain('Thank you for your feedback');
    expect((await stored()).filter((r) => r.article === 'lost-phone' && r.helpful)).toHaveLength(1);

    await browser.get('/help/lost-phone');
    const no = await browser.post('/help/lost-phone/feedback', { helpful: 'no' });
    expect(no.headers.location).toBe('/help/lost-phone/improve');
    expect((await stored()).length).toBe(before + 1);
    const form = await browser.get('/help/lost-phone/improve');
    expect(form.body).toContain('Let us know how we can improve this article');
    expect(form.body).toContain('<altcha-widget challenge="/help/captcha-challenge" name="altcha"');
    expect(form.body).toContain('If you cannot use this check');
  });

  it('refuses "no" with no reason ticked, saying so, and stores nothing', async () => {
    const browser = new TestBrowser(app, '198.51.100.2');
    await browser.get('/help/new-phone/improve');
    const before = (await stored()).length;
    const response = await browser.post('/help/new-phone/improve', { comment: 'hello', altcha: await solvedCaptcha(app) });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('Select at least one of the reasons');
    expect(response.body).toContain('href="#reasons"');
    expect((await stored()).length).toBe(before);
  });

  it('refuses a forged reason with a clear error naming the field, and stores nothing', async () => {
    const browser = new TestBrowser(app, '198.51.100.3');
    await browser.get('/help/new-phone/improve');
    const before = (await stored()).length;
    const response = await browser.post('/help/new-phone/improve', { reasons: 'drop-table', altcha: await solvedCaptcha(app) });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('Select reasons from the list');
    expect(response.body).toContain('href="#reasons"');
    expect((await stored()).length).toBe(before);
  });

  it('refuses a missing CAPTCHA and says what to do without it', async () => {
    const browser = new TestBrowser(app, '198.51.100.4');
    await browser.get('/help/new-phone/improve');
    const response = await browser.post('/help/new-phone/improve', { reasons: 'too-long' });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('Complete the check that you are not a robot');
  });

  it('escapes a comment with HTML in it when it is shown back, and stores it as plain text', async () => {
    const browser = new TestBrowser(app, '198.51.100.5');
    await browser.get('/help/new-phone/improve');
    const comment = '<script>alert("x")</script> & <img src=x onerror=alert(1)>';
    const refused = await browser.post('/help/new-phone/improve', { comment });
    expect(refused.body).not.toContain('<script>alert');
    expect(refused.body).not.toContain('<img src=x');
    expect(refused.body).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;');

    const sent = await browser.post('/help/new-phone/improve', { reasons: 'steps-did-not-work', comment, altcha: await solvedCaptcha(app) });
    expect(sent.statusCode).toBe(303);
    expect(sent.headers.location).toBe('/help/new-phone/feedback-sent');
    expect((await browser.get('/help/new-phone/feedback-sent')).body).toContain('Feedback sent');
    const row = (await stored()).find((r) => r.comment === comment);
    expect(row).toMatchObject({ article: 'new-phone', helpful: false, reasons: ['steps-did-not-work'] });
  });

  it('caps comments at 1,200 characters', async () => {
    const browser = new TestBrowser(app, '198.51.100.6');
    await browser.get('/help/new-phone/improve');
    const before = (await stored()).length;
    const response = await browser.post('/help/new-phone/improve', { reasons: 'too-long', comment: 'a'.repeat(1201), altcha: await solvedCaptcha(app) });
    expect(response.statusCode).toBe(400);
    expect(response.body).toContain('Your comment must be 1200 characters or fewer');
    expect((await stored()).length).toBe(before);
  });

  it('refuses a CAPTCHA solution used twice, and one that has expired', async () => {
    const browser = new TestBrowser(app, '198.51.100.7');
    await browser.get('/help/elevated-rights/improve');
    const altcha = await solvedCaptcha(app);
    expect((await browser.post('/help/elevated-rights/improve', { reasons: 'too-long', altcha })).statusCode).toBe(303);
    await browser.get('/help/elevated-rights/improve');
    const again = await browser.post('/help/elevated-rights/improve', { reasons: 'too-long', altcha });
    expect(again.statusCode).toBe(400);
    expect(again.body).toContain('This check has already been used');

    const late = await solvedCaptcha(app);
    ctx.advance(31 * 60);
    await browser.get('/help/elevated-rights/improve');
    const expired = await browser.post('/help/elevated-rights/improve', { reasons: 'too-long', altcha: late });
    expect(expired.statusCode).toBe(400);
    expect(expired.body).toContain('The check that you are not a robot has expired');
    // A tampered challenge (its expiry moved on) fails its signature.
    const decoded = JSON.parse(Buffer.from(await solvedCaptcha(app), 'base64').toString()) as { challenge: { parameters: { expiresAt: number } } };
    decoded.challenge.parameters.expiresAt += 3600;
    await browser.get('/help/elevated-rights/improve');
    const tampered = await browser.post('/help/elevated-rights/improve', { reasons: 'too-long', altcha: Buffer.from(JSON.stringify(decoded)).toString('base64') });
    expect(tampered.body).toContain('The check that you are not a robot did not work');
  });

  it('limits answers per client address and per article in each hour, before storing', async () => {
    ctx.advance(3600);
    const one = new TestBrowser(app, '192.0.2.50');
    await one.get('/help/authenticator-for-other-accounts');
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await one.post('/help/authenticator-for-other-accounts/feedback', { helpful: 'yes' })).statusCode);
    expect(statuses).toEqual([303, 303, 303, 303, 303, 303, 429]);
    // Another address may still answer, until the article's own limit (8 an hour) is reached.
    const two = new TestBrowser(app, '192.0.2.51');
    await two.get('/help/authenticator-for-other-accounts');
    expect((await two.post('/help/authenticator-for-other-accounts/feedback', { helpful: 'yes' })).statusCode).toBe(303);
    const limited = await two.post('/help/authenticator-for-other-accounts/feedback', { helpful: 'yes' });
    expect(limited.statusCode).toBe(429);
    expect(limited.body).toContain('Too much feedback has been sent');
    expect((await stored()).filter((r) => r.article === 'authenticator-for-other-accounts')).toHaveLength(7);
    // The next hour starts again.
    ctx.advance(3600);
    await two.get('/help/authenticator-for-other-accounts');
    expect((await two.post('/help/authenticator-for-other-accounts/feedback', { helpful: 'yes' })).statusCode).toBe(303);
  });

  it('serves the widget, its CSS and worker from this origin, and a challenge under the API CSP', async () => {
    for (const asset of ['/assets/altcha/altcha.js', '/assets/altcha/altcha.css', '/assets/altcha/workers/pbkdf2.js', '/assets/help-feedback.js']) {
      expect((await app.inject({ method: 'GET', url: asset })).statusCode, asset).toBe(200);
    }
    const challenge = await app.inject({ method: 'GET', url: '/help/captcha-challenge' });
    expect(challenge.headers['cache-control']).toBe('no-store');
    expect(challenge.json()).toMatchObject({ parameters: { algorithm: 'PBKDF2/SHA-256' } });
    const page = await app.inject({ method: 'GET', url: '/help/lost-phone/improve' });
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');
  });
});

describe('a CAPTCHA used on one node is refused on another (one PostgreSQL, one Redis)', () => {
  let database: TestDatabase;
  const contexts: AppContext[] = [];
  const apps: FastifyInstance[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    for (const name of ['a', 'b']) {
      const config = loadConfig({
        env: {
          PUBLIC_URL: 'http://localhost:8080',
          PORTCULLIS_SECRET: TEST_SECRET,
          PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), `pc-help-${name}-`)),
          DATABASE_URL: database.url,
          REDIS_URL: 'redis://127.0.0.1:6379/0',
          LOG_LEVEL: 'silent',
        },
      });
      const ctx = await createAppContext(config, { logger: pino({ level: 'silent' }) });
      contexts.push(ctx);
      apps.push(await buildApp(ctx));
    }
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const ctx of contexts) await ctx.close();
    await database?.drop();
  });

  it('accepts the solution once on node A and refuses it on node B', async () => {
    // Redis keeps data between runs: a random address keeps this run's limits its own.
    const address = `10.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}`;
    const altcha = await solvedCaptcha(apps[0]!);
    const a = new TestBrowser(apps[0]!, address);
    await a.get('/help/lost-phone/improve');
    expect((await a.post('/help/lost-phone/improve', { reasons: 'out-of-date', comment: randomUUID(), altcha })).statusCode).toBe(303);
    const b = new TestBrowser(apps[1]!, address);
    await b.get('/help/lost-phone/improve');
    const replay = await b.post('/help/lost-phone/improve', { reasons: 'out-of-date', altcha });
    expect(replay.statusCode).toBe(400);
    expect(replay.body).toContain('This check has already been used');
    expect(await createHelpFeedbackRepository(contexts[1]!.store.database.db).count()).toBe(1);
  });
});

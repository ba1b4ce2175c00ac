/**
 * What a newcomer meets (issue #17, point 4), through buildApp() and inject(): the page header names
 * the service once, to the eye and to a screen reader; the built CSS gives the body the NHS font stack
 * and fetches no font from outside; the phone form's error gives examples it accepts, and the demo's
 * own phones can be typed in development (PHONE_ALLOW_DRAMA_RANGE) but not by default. SQLite only:
 * nothing here reads or writes anything that differs between the dialects.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PHONES } from '../../src/app/demo.js';
import { addOrganisation, addUser } from '../../src/app/directory.js';
import { formatErrorMessage } from '../../src/core/errors.js';
import { buildApp } from '../../src/server/app.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { TestBrowser } from '../helpers/http.js';

/** The text a sighted reader sees in an HTML fragment: tags dropped, entities left as they are. */
function visibleText(html: string): string {
  return html
    .replace(/<(script|style|title)\b[\s\S]*?<\/\1>/g, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function occurrences(text: string, word: string): number {
  return text.split(word).length - 1;
}

describe('the page header and the look of every page (issue #17)', () => {
  let ctx: TestContext;
  let app: FastifyInstance;

  beforeAll(async () => {
    ctx = await createTestContext('sqlite');
    app = await buildApp(ctx);
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  async function header(url: string): Promise<string> {
    const page = await app.inject({ method: 'GET', url });
    expect(page.statusCode).toBe(200);
    const match = /<header\b[\s\S]*?<\/header>/.exec(page.body);
    expect(match, `a <header> on ${url}`).not.toBeNull();
    return match?.[0] ?? '';
  }

  it.each(['/sign-in', '/authenticator/'])('names the service once in the header of %s, in text and in text alternatives', async (url) => {
    const html = await header(url);
    // The logo was a picture of the word "Portcullis" (alt "Portcullis") beside the service name
    // "Portcullis": seen twice, and read out as "Portcullis Portcullis homepage".
    expect(occurrences(visibleText(html), ctx.config.organisationName)).toBe(1);
    const alternatives = [...html.matchAll(/\salt="([^"]*)"/g)].map((m) => m[1]);
    expect(alternatives.filter((alt) => alt?.includes(ctx.config.organisationName))).toEqual([]);
    const labels = [...html.matchAll(/\saria-label="([^"]*)"/g)].map((m) => m[1] ?? '');
    for (const label of labels) expect(occurrences(label, ctx.config.organisationName), `aria-label "${label}"`).toBeLessThanOrEqual(1);
  });

  it('gives the home link one accessible name that says the service once', async () => {
    const html = await header('/sign-in');
    expect(/<a class="nhsuk-header__service-logo" href="\/" aria-label="([^"]*)"/.exec(html)?.[1]).toBe(`${ctx.config.organisationName} homepage`);
  });

  it('serves a logo that is a mark only, so the name beside it is the only one shown', async () => {
    const logo = await app.inject({ method: 'GET', url: '/assets/portcullis-logo.svg' });
    expect(logo.statusCode).toBe(200);
    expect(logo.body).not.toMatch(/<text\b/);
  });

  it('sets the NHS font stack on the body, with no @font-face and no font from outside', async () => {
    const css = await app.inject({ method: 'GET', url: '/assets/portcullis.css' });
    expect(css.statusCode).toBe(200);
    // Before the fix the compiled CSS had no body font-family, so browsers used their serif default.
    expect(css.body).toContain('body{font-family:"Frutiger W01",arial,sans-serif}');
    expect(css.body).not.toContain('@font-face');
    expect(css.body).not.toMatch(/url\(\s*["']?(https?:)?\/\//);
  });
});

const PASSWORD = 'lantern-harbour-correct';

/** The example numbers in the "phone-invalid" message: "… like A or B". */
function examplesInMessage(): string[] {
  const message = formatErrorMessage('phone-invalid');
  const match = /like (.+) or (.+)$/.exec(message);
  expect(match, message).not.toBeNull();
  return [match?.[1] ?? '', match?.[2] ?? ''];
}

describe.each([
  ['by default', {}, false],
  ['with PHONE_ALLOW_DRAMA_RANGE=true (npm start)', { PHONE_ALLOW_DRAMA_RANGE: 'true' }, true],
] as const)('the phone form %s (issue #17)', (_name, env, dramaAccepted) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  let users = 0;

  beforeAll(async () => {
    ctx = await createTestContext('sqlite', env);
    await addOrganisation(ctx, 'Test Trust', { kind: 'system' });
    app = await buildApp(ctx);
  });
  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  /** A new user, signed in with the password only (no method yet), on the phone form. */
  async function onPhoneForm(): Promise<TestBrowser> {
    users += 1;
    const email = `newcomer${users}@example.org`;
    await addUser(ctx, { email, displayName: `Newcomer ${users}`, organisation: 'Test Trust', roles: [], password: PASSWORD }, { kind: 'system' });
    const browser = new TestBrowser(app);
    expect((await browser.signIn(email, PASSWORD)).statusCode).toBe(303);
    await browser.get('/security-info/add');
    expect((await browser.post('/security-info/add', { method: 'phone' })).headers.location).toBe('/security-info/add/phone');
    await browser.get('/security-info/add/phone');
    return browser;
  }

  it('accepts the example numbers its own error message gives', async () => {
    const examples = examplesInMessage();
    const browser = await onPhoneForm();
    const refused = await browser.post('/security-info/add/phone', { phone: '12', delivery: 'sms' });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain(formatErrorMessage('phone-invalid'));
    // 07700 900 982 (Ofcom's drama range) was the example, and libphonenumber refuses it.
    for (const example of examples) {
      const response = await (await onPhoneForm()).post('/security-info/add/phone', { phone: example, delivery: 'sms' });
      expect(response.statusCode, `the example ${example}`).toBe(303);
      // On to the code step of the new (pending) method.
      expect(response.headers.location).toMatch(/^\/security-info\/add\/[0-9a-f-]{36}/);
    }
  });

  it(dramaAccepted ? "accepts the demo's drama-range phones as typed" : "refuses the demo's drama-range phones", async () => {
    const numbers = Object.values(DEMO_PHONES);
    expect(numbers.length).toBeGreaterThan(0);
    for (const e164 of numbers) {
      const national = `0${e164.slice(3, 7)} ${e164.slice(7)}`;
      for (const typed of [e164, national]) {
        const response = await (await onPhoneForm()).post('/security-info/add/phone', { phone: typed, delivery: 'sms' });
        if (dramaAccepted) {
          expect(response.statusCode, typed).toBe(303);
          expect(response.headers.location).toMatch(/^\/security-info\/add\/[0-9a-f-]{36}/);
          const [message] = await ctx.delivery.listOutbox({ to: e164, limit: 1 });
          expect(message, `a code sent to ${e164}`).toMatchObject({ channel: 'sms', to: e164 });
        } else {
          expect(response.statusCode, typed).toBe(400);
          expect(response.body).toContain(formatErrorMessage('phone-invalid'));
        }
      }
    }
  });
});

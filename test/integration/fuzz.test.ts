/**
 * Issue #12, "bad input is a 4xx, everywhere": every form and device-API endpoint of buildApp(), fuzzed
 * from its own description, on SQLite and PostgreSQL (OWASP ASVS 5 V2.2, input validation, and V16.5,
 * error handling: refused input is answered safely and changes nothing).
 *
 * - Forms: every POST route the app registers (read from the app itself) must have an entry below that
 *   opens the page holding its form, in the state the form is for; the fields, their types and their
 *   choices are read from that page's HTML, as a browser would send them (the campaign interrupt, which
 *   needs a live campaign to be shown, from its template). Values are plausible, hostile (very long,
 *   control characters, characters above U+FFFF, lone surrogates through JSON, arrays, repeated fields)
 *   or missing; the CSRF token is valid, missing, wrong or doubled; the body is a form, JSON, bad JSON,
 *   text, multipart or has no type.
 * - The device API: every operation in its OpenAPI document, with the JWS payload fields it declares
 *   (`x-jws-payload`, its schemas under `components`), signed by a paired device.
 *
 * Each request must answer below 500. A request refused as bad input (400, 413, 415, or the CSRF page)
 * must change nothing in the database (every table compared before and after, but for the columns that
 * record when a session or device was last seen, and the device API's counters of signed requests). An
 * error summary must point at fields of the form, and a field holding a character that cannot be stored
 * (U+0000, a lone surrogate) is named in the answer.
 *
 * FUZZ_RUNS scales the runs per endpoint (default 20; both dialects take about 25 s); FUZZ_SEED replays a failure.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addOrganisation, addUser, grantRole } from '../../src/app/directory.js';
import { applyPolicyText, DEFAULT_POLICY_DOCUMENT } from '../../src/app/policy.js';
import { addClient } from '../../src/app/oidc/clients.js';
import { buildApp } from '../../src/server/app.js';
import { generateTotp } from '../../src/core/methods/totp.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';
import { TestDevice } from '../helpers/device.js';
import { ORIGIN, TestBrowser, csrfFrom } from '../helpers/http.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 20);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const PASSWORD = 'lantern-harbour-correct';
const actor = { kind: 'system' } as const;
const VIEWS = path.resolve(import.meta.dirname, '..', '..', 'src', 'web', 'views');

// ── Forms as the pages describe them ─────────────────────────────────────────────────────────────────

interface FormField {
  name: string;
  /** input type, or the tag name for button, select and textarea. */
  type: string;
  /** The values the page offers (radio and button values, hidden values, select options). */
  values: string[];
}

function attributes(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [, name, value] of text.matchAll(/([\w-]+)\s*=\s*"([^"]*)"/g)) result[name!.toLowerCase()] = value!.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'");
  return result;
}

/** The fields of the POST form whose action is `action`, read from a rendered page. */
function formOn(html: string, action: string): FormField[] | null {
  for (const [, formAttributes, body] of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const form = attributes(formAttributes!);
    if ((form.method ?? '').toLowerCase() !== 'post' || form.action !== action) continue;
    const fields = new Map<string, FormField>();
    for (const [, tag, tagAttributes] of body!.matchAll(/<(input|button|select|textarea|option)\b([^>]*)>/g)) {
      const a = attributes(tagAttributes!);
      if (tag === 'option') {
        const last = [...fields.values()].at(-1);
        if (last?.type === 'select' && a.value !== undefined) last.values.push(a.value);
        continue;
      }
      if (!a.name || a.name === '_csrf') continue;
      const field = fields.get(a.name) ?? { name: a.name, type: tag === 'input' ? (a.type ?? 'text') : tag!, values: [] };
      if (a.value !== undefined && a.value !== '') field.values.push(a.value);
      fields.set(a.name, field);
    }
    return [...fields.values()];
  }
  return null;
}

/** The fields of a form in a template that is only shown in a state hard to reach (a live campaign). */
function formInTemplate(file: string, action: string): FormField[] {
  const source = readFileSync(path.join(VIEWS, file), 'utf8');
  expect(source).toContain(`action="${action}"`);
  const fields = new Map<string, FormField>();
  for (const [, name] of source.matchAll(/<input[^>]*name="(\w+)"/g)) if (name !== '_csrf') fields.set(name!, { name: name!, type: 'hidden', values: [] });
  for (const [, name, value] of source.matchAll(/name:\s*"(\w+)",\s*value:\s*"([^"]*)"/g)) {
    const field = fields.get(name!) ?? { name: name!, type: 'button', values: [] };
    field.values.push(value!);
    fields.set(name!, field);
  }
  return [...fields.values()];
}

// ── Values ───────────────────────────────────────────────────────────────────────────────────────────

const controls = [...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)), '\u007f', '\u0085', '\u2028', '\u2029', '\u202e', '\ufeff'];
const hostileText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: fc.constantFrom(...controls, 'a', '=', ';', '%', '/', '\\'), maxLength: 20 }),
  fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udfff', '😀'.repeat(3), '\r\n=1+1', '../../etc/passwd', '%00', '%zz', '<script>alert(1)</script>', "' or '1'='1", '//evil.example', '/\\evil.example'),
  fc.integer({ min: 300, max: 5000 }).map((n) => 'a'.repeat(n)),
  fc.integer({ min: 200_000, max: 300_000 }).map((n) => 'é'.repeat(n)),
);

type Value = string | string[] | number | boolean | null | Record<string, unknown> | undefined;

/** What a browser would send for the field, or what an attacker might. */
function valueFor(field: FormField, plausible: fc.Arbitrary<string>): fc.Arbitrary<Value> {
  const likely = field.values.length ? fc.oneof(fc.constantFrom(...field.values), plausible) : plausible;
  return fc.oneof(
    { weight: 4, arbitrary: likely },
    { weight: 4, arbitrary: hostileText },
    { weight: 1, arbitrary: fc.array(fc.oneof(likely, hostileText), { minLength: 2, maxLength: 3 }) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 })) },
  );
}

type Encoding = 'form' | 'json' | 'bad-json' | 'text' | 'multipart' | 'no-type' | 'bad-percent';
type CsrfMode = 'valid' | 'missing' | 'wrong' | 'twice' | 'header';

interface FormRequest {
  values: Record<string, Value>;
  csrf: CsrfMode;
  encoding: Encoding;
  /** A hostile path parameter instead of the page's, for routes that take one. */
  param: string | null;
}

function formRequest(fields: FormField[], plausible: (field: FormField) => fc.Arbitrary<string>, hasParam: boolean): fc.Arbitrary<FormRequest> {
  return fc.record({
    values: fc.record(Object.fromEntries(fields.map((f) => [f.name, valueFor(f, plausible(f))]))) as fc.Arbitrary<Record<string, Value>>,
    csrf: fc.constantFrom<CsrfMode>('valid', 'valid', 'valid', 'valid', 'missing', 'wrong', 'twice', 'header'),
    encoding: fc.constantFrom<Encoding>('form', 'form', 'form', 'form', 'json', 'json', 'bad-json', 'text', 'multipart', 'no-type', 'bad-percent'),
    // A URL cannot carry a lone surrogate (it has no UTF-8 form to percent-encode).
    param: hasParam ? fc.option(hostileText.filter((t) => t.length > 0 && t.length < 300 && !/[\ud800-\udfff]/u.test(t)), { freq: 4 }) : fc.constant(null),
  });
}

/**
 * Whether a value, as it arrives, holds a character no database can store as sent (PostgreSQL refuses
 * U+0000; a lone surrogate has no UTF-8 form). A form cannot carry a lone surrogate: it is sent as U+FFFD.
 */
function unstorable(value: Value, encoding: Encoding): boolean {
  if (typeof value === 'string') return value.includes('\u0000') || (encoding === 'json' && /[\ud800-\udfff]/u.test(value));
  if (Array.isArray(value)) return value.some((item) => unstorable(item, encoding));
  return false;
}

function encode(request: FormRequest, token: string): { payload: string; headers: Record<string, string> } {
  const csrf = request.csrf === 'valid' || request.csrf === 'twice' ? token : request.csrf === 'wrong' ? `${token.slice(0, -2)}xx` : null;
  const defined = Object.entries(request.values).filter(([, v]) => v !== undefined) as Array<[string, Exclude<Value, undefined>]>;
  const headers: Record<string, string> = request.csrf === 'header' ? { 'x-csrf-token': token } : {};
  if (request.encoding === 'json' || request.encoding === 'bad-json') {
    const object: Record<string, unknown> = Object.fromEntries(defined);
    if (csrf) object._csrf = request.csrf === 'twice' ? [csrf, csrf] : csrf;
    const text = JSON.stringify(object);
    return { payload: request.encoding === 'json' ? text : text.slice(0, Math.max(1, text.length - 2)), headers: { ...headers, 'content-type': 'application/json' } };
  }
  const form = new URLSearchParams();
  if (csrf) form.append('_csrf', csrf);
  if (request.csrf === 'twice' && csrf) form.append('_csrf', csrf);
  for (const [name, value] of defined) {
    if (Array.isArray(value)) for (const item of value) form.append(name, item);
    else form.append(name, typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value));
  }
  let payload = form.toString();
  if (request.encoding === 'bad-percent') payload += '&x=%zz%E0%A4%A&%';
  const type: Record<Encoding, string | null> = {
    form: 'application/x-www-form-urlencoded',
    'bad-percent': 'application/x-www-form-urlencoded',
    text: 'text/plain',
    multipart: 'multipart/form-data; boundary=fuzz',
    'no-type': null,
    json: null,
    'bad-json': null,
  };
  const contentType = type[request.encoding];
  return { payload, headers: contentType ? { ...headers, 'content-type': contentType } : headers };
}

// ── The database, before and after ───────────────────────────────────────────────────────────────────

/**
 * When a session or device was last seen changes on any request that uses it, and an attempt's lease on
 * a throttle counter is taken and given back around any submission: neither is what the input did.
 */
const VOLATILE: Record<string, readonly string[]> = {
  sessions: ['last_seen_at', 'expires_at'],
  devices: ['last_seen_at'],
  throttles: ['expires_at', 'lease_owner', 'lease_until'],
};

/** A throttle counter at zero and unlocked counts nothing: it is the same as no counter. */
const isIdleCounter = (table: string, row: Record<string, unknown>) => table === 'throttles' && Number(row.count) === 0 && row.locked_until === null;

type Snapshot = Map<string, string[]>;

async function snapshot(ctx: TestContext): Promise<Snapshot> {
  const db = ctx.store.database.db;
  const tables = (await db.introspection.getTables()).map((t) => t.name).filter((name) => !name.startsWith('kysely_'));
  const entries = await Promise.all(
    tables.map(async (table): Promise<[string, string[]]> => {
      // Every table, whatever it holds: the snapshot reads them generically.
      const rows = (await (db as unknown as { selectFrom(t: string): { selectAll(): { execute(): Promise<Array<Record<string, unknown>>> } } }).selectFrom(table).selectAll().execute()).filter(
        // The device API counts every signed request (its one-time jti, its rate per device), refused or not.
        (row) => !(table === 'throttles' && /^device-(jti|requests):/.test(String(row.key))) && !isIdleCounter(table, row),
      );
      return [table, rows.map((row) => JSON.stringify(Object.entries(row).filter(([column]) => !VOLATILE[table]?.includes(column)))).sort()];
    }),
  );
  return new Map(entries);
}

function changes(before: Snapshot, after: Snapshot): string[] {
  const changed: string[] = [];
  for (const [table, rows] of after) {
    const old = before.get(table) ?? [];
    const added = rows.filter((r) => !old.includes(r));
    const removed = old.filter((r) => !rows.includes(r));
    if (added.length || removed.length) changed.push(`${table}: +${added.join(' +')} -${removed.join(' -')}`);
  }
  return changed;
}

/** Changes a refused request may still make (none today: list one here only with its issue). */
const KNOWN_CHANGES: Record<string, RegExp> = {};

/** The default policy, as a document: applying it changes nothing else the fuzzer reaches. */
const POLICY_TEXT = JSON.stringify(DEFAULT_POLICY_DOCUMENT, null, 2);

// ── What an answer must be ───────────────────────────────────────────────────────────────────────────

function describeRequest(method: string, url: string, payload: string, headers: Record<string, string>): string {
  return `${method} ${url.slice(0, 200)} ${JSON.stringify(headers)} ${payload.slice(0, 400)}${payload.length > 400 ? `… (${payload.length} characters)` : ''}`;
}

function isRejection(response: LightMyRequestResponse): boolean {
  if ([400, 413, 415].includes(response.statusCode)) {
    // A wrong number is a decision the device made (it refuses the sign-in), not bad input.
    return !(response.headers['content-type'] ?? '').toString().includes('json') || response.json<{ error?: string }>().error !== 'wrong-number';
  }
  return response.statusCode === 403 && response.body.includes('This page has expired');
}

// ── The suites ───────────────────────────────────────────────────────────────────────────────────────

describe.each(dialects)('fuzzing every form and device API endpoint on %s (issue #12)', (dialect) => {
  let ctx: TestContext;
  let app: FastifyInstance;
  const phones: Record<string, string> = {};
  const totpKeys: Record<string, string> = {};
  const known: Record<string, { id: string; passwordHash: string; smsId: string }> = {};
  let address = 0;

  /** A browser from its own address, so per-address limits do not pile up on one. */
  const browserOf = () => new TestBrowser(app, `198.51.100.${(address++ % 250) + 1}`);
  const latestCode = async (to: string) => {
    const [message] = await ctx.delivery.listOutbox({ to, limit: 1 });
    if (!message?.code) throw new Error(`no code sent to ${to}`);
    return message.code;
  };

  async function addMfaUser(email: string, phone: string): Promise<void> {
    await addUser(ctx, { email, displayName: email.split('@')[0]!, organisation: 'Fuzz Trust', roles: [], password: PASSWORD }, actor);
    phones[email] = phone;
    const browser = browserOf();
    await browser.signIn(email, PASSWORD);
    await browser.get('/security-info/add/phone');
    const started = await browser.post('/security-info/add/phone', { phone, delivery: 'sms' });
    const setUp = started.headers.location!;
    await browser.get(setUp);
    const challenge = new URL(setUp, ORIGIN).searchParams.get('challenge')!;
    expect((await browser.post(new URL(setUp, ORIGIN).pathname, { challenge, code: await latestCode(phone) })).headers.location).toBe('/security-info?done=added');
    // An authenticator app too, so that "Sign in another way" has a choice; the phone stays the default.
    await browser.get('/security-info/add');
    const chosen = await browser.post('/security-info/add', { method: 'totp' });
    const page = await browser.get(chosen.headers.location!);
    totpKeys[email] = /id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.body)![1]!.replace(/ /g, '');
    expect((await browser.post(chosen.headers.location!, { code: generateTotp(totpKeys[email]!, ctx.clock()) })).headers.location).toBe('/security-info?done=added');
    const user = await ctx.store.users.findByEmail(email);
    const sms = (await ctx.store.methods.activeForUser(user!.id)).find((m) => m.kind === 'sms')!;
    known[email] = { id: user!.id, passwordHash: user!.password_hash!, smsId: sms.id };
    await restore(email);
  }

  /**
   * Puts back what a successful fuzzed request may have changed on purpose (a new password, another
   * default method), so the next page can be reached the same way.
   */
  async function restore(email: string): Promise<void> {
    const user = known[email]!;
    await ctx.store.users.setPasswordHash(user.id, user.passwordHash, ctx.clock(), false);
    await ctx.store.users.setDefaultMethod(user.id, user.smsId, ctx.clock());
  }

  /** Password, then the code texted to the default phone: a session with a fresh second factor. */
  async function signedIn(email: string): Promise<TestBrowser> {
    await restore(email);
    const browser = browserOf();
    const afterPassword = await browser.signIn(email, PASSWORD);
    expect(afterPassword.headers.location).toBe('/sign-in/verify');
    await browser.get('/sign-in/verify');
    expect((await browser.post('/sign-in/verify', { code: await latestCode(phones[email]!) })).statusCode).toBe(303);
    return browser;
  }

  async function atPage(browser: TestBrowser, url: string): Promise<TestBrowser> {
    const page = await browser.get(url);
    expect(page.statusCode, `${url}: ${page.body.slice(0, 300)}`).toBe(200);
    return browser;
  }

  interface Opened {
    browser: TestBrowser;
    /** The form's action, as on the page. */
    action: string;
    fields: FormField[];
  }

  const opened = async (browser: TestBrowser, action: string): Promise<Opened> => {
    const fields = formOn(browser.lastHtml, action);
    if (!fields) throw new Error(`no form posting to ${action} on the page`);
    return { browser, action, fields };
  };

  /**
   * An OpenID Connect interaction page for a signed-in browser (issue #13): a third-party client's request,
   * followed through oidc-provider's redirects to /oidc-interaction/<uid>; `acr_values` app-push gives the
   * page that says it cannot be met (the fuzz users have no push).
   */
  async function interactionPage(browser: TestBrowser, parameters: Record<string, string>): Promise<string> {
    const { client } = await addClient(
      ctx,
      { name: 'Fuzzed app', redirectUris: ['http://127.0.0.1:8400/callback'], postLogoutRedirectUris: [], confidential: false, firstParty: false, service: false, scopes: [] },
      { kind: 'cli', name: 'fuzz' },
    );
    const query = new URLSearchParams({
      client_id: client.clientId,
      response_type: 'code',
      redirect_uri: 'http://127.0.0.1:8400/callback',
      scope: 'openid email',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      ...parameters,
    });
    let url = `/oidc/auth?${query}`;
    for (let hops = 0; hops < 10; hops++) {
      const response = await browser.get(url);
      const location = response.headers.location;
      if (response.statusCode !== 303 && response.statusCode !== 302) break;
      url = String(location).replace(ORIGIN, '');
    }
    return url;
  }

  /** For each POST route: how to reach the page that holds its form, in the state it is for. */
  const forms: Record<string, () => Promise<Opened>> = {
    '/sign-in': async () => opened(await atPage(browserOf(), '/sign-in?returnTo=%2Fsecurity-info'), '/sign-in'),
    '/sign-in/password': async () => {
      const browser = browserOf();
      await browser.get('/sign-in');
      await browser.post('/sign-in', { email: 'fuzz-plain@example.org' });
      return opened(await atPage(browser, '/sign-in/password'), '/sign-in/password');
    },
    '/sign-in/verify': async () => {
      await restore('fuzz-mfa@example.org');
      const browser = browserOf();
      await browser.signIn('fuzz-mfa@example.org', PASSWORD);
      return opened(await atPage(browser, '/sign-in/verify'), '/sign-in/verify');
    },
    '/sign-in/resend': async () => {
      await restore('fuzz-mfa@example.org');
      const browser = browserOf();
      await browser.signIn('fuzz-mfa@example.org', PASSWORD);
      return opened(await atPage(browser, '/sign-in/verify'), '/sign-in/resend');
    },
    '/sign-in/other': async () => {
      await restore('fuzz-mfa@example.org');
      const browser = browserOf();
      await browser.signIn('fuzz-mfa@example.org', PASSWORD);
      return opened(await atPage(browser, '/sign-in/other'), '/sign-in/other');
    },
    '/sign-out': async () => opened(await atPage(await signedIn('fuzz-mfa@example.org'), '/account'), '/sign-out'),
    '/forgot-password': async () => opened(await atPage(browserOf(), '/forgot-password'), '/forgot-password'),
    '/forgot-password/code': async () => {
      const browser = browserOf();
      await browser.get('/forgot-password');
      await browser.post('/forgot-password', { email: 'fuzz-mfa@example.org' });
      return opened(await atPage(browser, '/forgot-password/code'), '/forgot-password/code');
    },
    '/forgot-password/new-password': async () => {
      await restore('fuzz-mfa@example.org');
      const browser = browserOf();
      await browser.get('/forgot-password');
      await browser.post('/forgot-password', { email: 'fuzz-mfa@example.org' });
      await browser.get('/forgot-password/code');
      expect((await browser.post('/forgot-password/code', { code: await latestCode('fuzz-mfa@example.org') })).headers.location).toBe('/sign-in/verify');
      await browser.get('/sign-in/verify');
      expect((await browser.post('/sign-in/verify', { code: await latestCode(phones['fuzz-mfa@example.org']!) })).headers.location).toBe('/forgot-password/new-password');
      return opened(await atPage(browser, '/forgot-password/new-password'), '/forgot-password/new-password');
    },
    '/activate/:token': async () => {
      const { activationUrl } = await addUser(ctx, { email: `fuzz-new-${address++}@example.org`, displayName: 'New', organisation: 'Fuzz Trust', roles: [] }, actor);
      const action = new URL(activationUrl!).pathname;
      return opened(await atPage(browserOf(), action), action);
    },
    '/security-info/campaign': async () => ({
      browser: await atPage(await signedIn('fuzz-mfa@example.org'), '/security-info'),
      action: '/security-info/campaign',
      fields: formInTemplate('security-info/campaign.njk', '/security-info/campaign'),
    }),
    '/security-info/add': async () => opened(await atPage(await signedIn('fuzz-mfa@example.org'), '/security-info/add'), '/security-info/add'),
    '/security-info/add/phone': async () => opened(await atPage(await signedIn('fuzz-mfa@example.org'), '/security-info/add/phone'), '/security-info/add/phone'),
    '/security-info/add/:methodId': async () => {
      const browser = await signedIn('fuzz-mfa@example.org');
      await browser.get('/security-info/add/phone');
      const started = await browser.post('/security-info/add/phone', { phone: `+4474009${String(address++ % 100000).padStart(5, '0')}`, delivery: 'sms' });
      await atPage(browser, started.headers.location!);
      return opened(browser, new URL(started.headers.location!, ORIGIN).pathname);
    },
    '/security-info/add/:methodId/resend': async () => {
      const browser = await signedIn('fuzz-mfa@example.org');
      await browser.get('/security-info/add/phone');
      const started = await browser.post('/security-info/add/phone', { phone: `+4474008${String(address++ % 100000).padStart(5, '0')}`, delivery: 'sms' });
      await atPage(browser, started.headers.location!);
      return opened(browser, `${new URL(started.headers.location!, ORIGIN).pathname}/resend`);
    },
    '/security-info/default': async () => opened(await atPage(await signedIn('fuzz-mfa@example.org'), '/security-info/default'), '/security-info/default'),
    '/security-info/methods/:methodId/delete': async () => {
      // A method of its own to lose: the TOTP of a user kept for this.
      const browser = await signedIn('fuzz-delete@example.org');
      const user = await ctx.store.users.findByEmail('fuzz-delete@example.org');
      const totp = (await ctx.store.methods.activeForUser(user!.id)).find((m) => m.kind === 'totp');
      const action = `/security-info/methods/${totp?.id ?? 'gone'}/delete`;
      if (!totp) return { browser: await atPage(browser, '/security-info'), action, fields: [] };
      return opened(await atPage(browser, action), action);
    },
    '/security-info/password': async () => opened(await atPage(await signedIn('fuzz-mfa@example.org'), '/security-info/password'), '/security-info/password'),
    // Passkeys (issue #14): the email page's passwordless form, and renaming — of a method that is not a
    // passkey of this user, so every input is refused and nothing changes.
    '/sign-in/passwordless': async () => ({
      browser: await atPage(browserOf(), '/sign-in'),
      action: '/sign-in/passwordless',
      fields: formInTemplate('sign-in/passkey-first-factor.njk', '/sign-in/passwordless'),
    }),
    '/security-info/methods/:methodId/rename': async () => ({
      browser: await atPage(await signedIn('fuzz-mfa@example.org'), '/security-info'),
      action: '/security-info/methods/not-a-passkey/rename',
      fields: formInTemplate('security-info/rename.njk', '/security-info/methods/{{ methodId }}/rename'),
    }),
    // Help pages (issue #16): the CAPTCHA's field is made by its widget in the browser, so the fuzzer
    // never solves it and every "No" it sends is refused.
    '/help/:slug/feedback': async () => opened(await atPage(browserOf(), '/help/lost-phone'), '/help/lost-phone/feedback'),
    '/help/:slug/improve': async () => opened(await atPage(browserOf(), '/help/lost-phone/improve'), '/help/lost-phone/improve'),
    '/oidc-interaction/:uid/consent': async () => {
      const browser = await signedIn('fuzz-mfa@example.org');
      const page = await interactionPage(browser, {});
      return opened(await atPage(browser, page), `${page}/consent`);
    },
    '/oidc-interaction/:uid/unmet': async () => {
      const browser = await signedIn('fuzz-mfa@example.org');
      const page = await interactionPage(browser, { acr_values: 'urn:portcullis:acr:app-push' });
      return opened(await atPage(browser, page), `${page}/unmet`);
    },
    '/account/applications/remove': async () => {
      // An application allowed first, so that My account lists one to remove.
      const browser = await signedIn('fuzz-mfa@example.org');
      const page = await interactionPage(browser, {});
      await atPage(browser, page);
      await browser.post(`${page}/consent`, { decision: 'allow' });
      return opened(await atPage(browser, '/account'), '/account/applications/remove');
    },
    '/security-info/sign-out-everywhere': async () =>
      opened(await atPage(await signedIn('fuzz-mfa@example.org'), '/security-info/sign-out-everywhere'), '/security-info/sign-out-everywhere'),
    // The admin console (issue #15): an action's confirmation (the action's name is what the fuzzer varies
    // in the address), and the policy's edit, apply and roll back, as a global administrator.
    '/admin/users/:id/:action': async () => {
      const target = known['fuzz-mfa@example.org']!.id;
      return opened(await atPage(await signedIn('fuzz-admin@example.org'), `/admin/users/${target}/sessions`), `/admin/users/${target}/sessions`);
    },
    '/admin/policy/preview': async () => opened(await atPage(await signedIn('fuzz-admin@example.org'), '/admin/policy/edit'), '/admin/policy/preview'),
    '/admin/policy/apply': async () => {
      const browser = await atPage(await signedIn('fuzz-admin@example.org'), '/admin/policy/edit');
      expect((await browser.post('/admin/policy/preview', { document: POLICY_TEXT, reason: 'Fuzzing the console' })).statusCode).toBe(200);
      return opened(browser, '/admin/policy/apply');
    },
    '/admin/policy/versions/:version/rollback': async () =>
      opened(await atPage(await signedIn('fuzz-admin@example.org'), '/admin/policy/versions/1/rollback'), '/admin/policy/versions/1/rollback'),
  };

  /** Values a person would type, by field. */
  const plausible = (field: FormField): fc.Arbitrary<string> => {
    const byName: Record<string, fc.Arbitrary<string>> = {
      email: fc.constantFrom('fuzz-plain@example.org', 'fuzz-mfa@example.org', 'nobody@example.org', 'not-an-email', ''),
      password: fc.constantFrom(PASSWORD, 'wrong-password-1', 'password', ''),
      confirm: fc.constantFrom(PASSWORD, 'wrong-password-1', ''),
      current: fc.constantFrom(PASSWORD, 'wrong-password-1', ''),
      code: fc.oneof(fc.stringMatching(/^\d{6}$/), fc.constantFrom('', '12345', '1234567', 'abcdef')),
      phone: fc.constantFrom('07400 123999', '+447400123998', '+33612345678', '123', ''),
      returnTo: fc.constantFrom('/account', '/security-info', '/account?name=José€', '//evil.example', 'https://evil.example/'),
    };
    return byName[field.name] ?? fc.string({ maxLength: 20 });
  };

  beforeAll(async () => {
    ctx = await createTestContext(dialect, {
      // The weakest argon2id profile OWASP allows: the fuzzer signs in many times.
      PASSWORD_ARGON2_MEMORY_KIB: '7168',
      PASSWORD_ARGON2_ITERATIONS: '5',
      SIGN_IN_LOCKOUT_THRESHOLD: '100',
      SIGN_IN_IP_FAILURE_LIMIT: '1000000',
      SECOND_FACTOR_LOCKOUT_THRESHOLD: '100',
      PHONE_CODES_PER_USER: '1000',
      PHONE_CODES_PER_ADDRESS: '1000000',
      PASSWORD_RESETS_PER_EMAIL: '100',
      PASSWORD_RESETS_PER_ADDRESS: '100000',
      DEVELOPMENT_PAGES: 'true',
      // One device sends every fuzzed request: its per-minute allowance must not be what answers.
      DEVICE_API_REQUESTS_PER_MINUTE: '100000',
      // A fuzzed "No, it's not me" must not keep the fuzzer's phone from being paired again.
      PUSH_BLOCK_ON_FRAUD: 'false',
      PUSH_MIN_INTERVAL: '1',
      PUSH_CHALLENGE_LIFETIME: '15',
      PUSH_PER_HOUR: '100',
    }, { controlClock: true });
    await addOrganisation(ctx, 'Fuzz Trust', actor);
    await addUser(ctx, { email: 'fuzz-plain@example.org', displayName: 'Plain', organisation: 'Fuzz Trust', roles: [], password: PASSWORD }, actor);
    app = await buildApp(ctx);
    await addMfaUser('fuzz-mfa@example.org', '+447400100001');
    await addMfaUser('fuzz-delete@example.org', '+447400100002');
    // A global administrator for the console's forms, and two versions of the policy (the default's own
    // words, so that nothing else behaves differently) to roll back between.
    await addMfaUser('fuzz-admin@example.org', '+447400100003');
    await grantRole(ctx, 'fuzz-admin@example.org', 'global-admin', [], actor);
    await applyPolicyText(ctx, POLICY_TEXT, actor, 'fuzz: first');
    await applyPolicyText(ctx, POLICY_TEXT, actor, 'fuzz: second');
  });

  afterAll(async () => {
    await app?.close();
    await ctx?.destroy();
  });

  it('has a form to fuzz for every POST route outside the device API', async () => {
    // The JSON APIs are fuzzed by their own schemas (the device API below; the admin API in admin-api.test.ts).
    const posts = routesOf(app, 'POST').filter((route) => !route.startsWith('/device/') && !route.startsWith('/api/admin/'));
    expect(posts.length).toBeGreaterThan(15);
    expect(posts.filter((route) => !(route in forms))).toEqual([]);
  });

  for (const route of Object.keys(forms)) {
    it(`answers every input to POST ${route} below 500, and refused input changes nothing`, async () => {
      let current: Opened | null = null;
      let before: Snapshot | null = null;
      const first = await forms[route]!();
      const arbitrary = formRequest(first.fields, plausible, route.includes(':'));
      current = first;
      await fc.assert(
        fc.asyncProperty(arbitrary, async (request) => {
          current ??= await forms[route]!();
          before ??= await snapshot(ctx);
          const { browser } = current;
          const token = csrfFrom(browser.lastHtml) ?? '';
          const { payload, headers } = encode(request, token);
          const url = request.param === null ? current.action : current.action.replace(/\/[^/]+(\/(resend|delete))?$/, (_whole, tail: string | undefined) => `/${encodeURIComponent(request.param!)}${tail ?? ''}`);
          const sent = { origin: ORIGIN, 'sec-fetch-site': 'same-origin', cookie: [...browser.cookies].map(([k, v]) => `${k}=${v}`).join('; '), ...headers };
          const response = await app.inject({ method: 'POST', url, payload, headers: sent, remoteAddress: browser.remoteAddress });
          const what = describeRequest('POST', url, payload, headers);
          const after = await snapshot(ctx);
          const changed = changes(before, after)
            .filter((change) => !KNOWN_CHANGES[route]?.test(change))
            .map((change) => change.slice(0, 600));
          const fields = current.fields;
          // The next run (or fast-check's shrinking) starts from here, whatever this one finds: a request
          // that may have moved the flow on (or ended the session) is followed by a fresh page.
          if ([400, 403, 404, 413, 415].includes(response.statusCode)) before = after;
          else [current, before] = [null, null];
          expect(response.statusCode, `${what}\n→ ${response.statusCode} ${response.body.slice(0, 300)}`).toBeLessThan(500);
          if (isRejection(response)) expect(changed, `${what}\n→ ${response.statusCode} ${response.body.match(/<p[^>]*>[^<]*<\/p>|"message":"[^"]*"/g)?.join(' ')}`).toEqual([]);
          // An error summary points only at fields of this form.
          const summary = /<div class="nhsuk-error-summary"[\s\S]*?<\/div>\s*<\/div>/.exec(response.body)?.[0] ?? '';
          for (const [, target] of summary.matchAll(/href="#([^"]+)"/g)) expect(fields.map((f) => f.name), what).toContain(target);
          // A character that cannot be stored is refused, naming the field that held it.
          const parsed = (request.encoding === 'form' || request.encoding === 'json') && Buffer.byteLength(payload) < 256 * 1024;
          const offending = Object.entries(request.values).filter(([, value]) => unstorable(value, request.encoding)).map(([name]) => name);
          if (parsed && offending.length && (request.param === null || !unstorable(request.param, 'form'))) {
            expect(response.statusCode, what).toBe(400);
            expect(offending.some((name) => response.body.includes(`The ${name} field contains a character that cannot be used`)), `${what}\n→ ${response.body.slice(0, 2000)}`).toBe(true);
          }
        }),
        { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
      );
    });
  }

  it('answers every query on GET pages below 500', async () => {
    const browser = await signedIn('fuzz-mfa@example.org');
    const anonymous = browserOf();
    // Event streams stay open: they have tests of their own.
    const pages = routesOf(app, 'GET').filter((route) => !/events$|^\/device\/|^\/assets\/|\*/.test(route));
    const names = ['returnTo', 'challenge', 'resent', 'done', 'seen', 'to', 'activated', 'reset', 'everywhere'];
    const query = fc.dictionary(fc.constantFrom(...names), fc.oneof(hostileText.filter((t) => t.length < 3000), fc.constantFrom('1', '/account', 'paired')), { maxKeys: 3 });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...pages), query, fc.option(hostileText.filter((t) => t.length > 0 && t.length < 200 && !/[\ud800-\udfff]/u.test(t))), fc.boolean(), async (route, params, param, signedInBrowser) => {
        const path = route.replace(/:\w+/g, () => encodeURIComponent(param ?? 'nothing-here'));
        const url = `${path}?${new URLSearchParams(params).toString()}`;
        const response = await (signedInBrowser ? browser : anonymous).get(url);
        expect(response.statusCode, `GET ${url.slice(0, 300)} → ${response.body.slice(0, 300)}`).toBeLessThan(500);
      }),
      { numRuns: RUNS * 8, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
  });

  describe('the device API, from its OpenAPI document', () => {
    let device: TestDevice;
    let challengeId = '';

    interface Operation {
      method: 'GET' | 'POST';
      path: string;
      payload: Record<string, string>;
    }

    /** A phone paired from Security info, its test request approved, and a sign-in waiting on it. */
    async function pairPhone(): Promise<void> {
      // The user has no method (at the start, and once the phone is removed): the password is enough.
      const browser = browserOf();
      expect((await browser.signIn('fuzz-push@example.org', PASSWORD)).headers.location).toMatch(/^\/security-info\/get-started/);
      await browser.get('/security-info/add');
      const page = await browser.post('/security-info/add', { method: 'push' });
      const pairingUrl = /Or open this link on your phone: <a href="([^"]+)"/.exec(page.body)![1]!.replace(/&amp;/g, '&');
      const status = /data-next="([^"]+)"/.exec(page.body)![1]!;
      device = await TestDevice.create(app);
      device.clock = () => ctx.clock().getTime();
      expect((await device.pair(pairingUrl, 'Fuzz phone')).statusCode).toBe(201);
      // The test request approved with the number the page shows: the device is a method in use.
      const [test] = await device.pending();
      const number = /Number: <\/span>(\d+)/.exec((await browser.get(status)).body)![1]!;
      expect((await device.decide(test!.id, 'approve', number)).statusCode).toBe(200);
      expect((await browser.get(status)).statusCode).toBe(303);
      // A sign-in waiting on the phone, for the decisions to be about: once any request left by a phone
      // removed has expired (one pending request per user), and after the shortest gap between two.
      ctx.advance(16);
      const waiting = browserOf();
      expect((await waiting.signIn('fuzz-push@example.org', PASSWORD)).headers.location).toBe('/sign-in/verify');
      const [pending] = await device.pending();
      challengeId = pending!.id;
    }

    beforeAll(async () => {
      await addUser(ctx, { email: 'fuzz-push@example.org', displayName: 'Push', organisation: 'Fuzz Trust', roles: [], password: PASSWORD }, actor);
      await pairPhone();
    });

    it('answers every signed request below 500, and refused requests change nothing', async () => {
      const document = (await app.inject({ method: 'GET', url: '/device/v1/openapi.json' })).json<{
        paths: Record<string, Record<string, { 'x-jws-payload'?: Record<string, string> }>>;
        components: { schemas: Record<string, JsonSchema> };
      }>();
      const operations: Operation[] = Object.entries(document.paths).flatMap(([p, methods]) =>
        Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase() as 'GET' | 'POST', path: p, payload: op['x-jws-payload'] ?? {} })),
      );
      // Every route the API registers is described, so every one is fuzzed.
      expect(operations.map((o) => `${o.method} ${o.path}`)).toEqual(
        expect.arrayContaining(routesOf(app, 'POST').filter((r) => r.startsWith('/device/v1/')).map((r) => `POST ${r.replace('/device/v1', '').replace(/:(\w+)/g, '{$1}')}`)),
      );
      // The event stream stays open: it has tests of its own.
      const fuzzed = operations.filter((o) => o.path !== '/events');
      // Removing the phone works with nothing in the request, and means pairing another: seldom, then.
      const operationArbitrary = fc.oneof(...fuzzed.map((operation) => ({ weight: operation.path === '/device/remove' ? 1 : 6, arbitrary: fc.constant(operation) })));
      const arbitrary = operationArbitrary.chain((operation) =>
        fc.record({
          operation: fc.constant(operation),
          // The declared fields, each from its description or hostile or missing, plus stray ones.
          declared: fc.record(
            Object.fromEntries(
              Object.entries(operation.payload).map(([name, description]) => [
                name,
                fc.option(fc.oneof({ weight: 3, arbitrary: fromDescription(description, document.components.schemas) }, { weight: 2, arbitrary: fc.oneof(hostileText, fc.jsonValue({ maxDepth: 2 })) }), { freq: 6 }),
              ]),
            ),
          ),
          stray: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 2 }),
          id: fc.option(hostileText.filter((t) => t.length > 0 && t.length < 200 && !/[\ud800-\udfff]/u.test(t)), { freq: 3 }),
          pairing: fc.boolean(),
        }),
      );
      let before = await snapshot(ctx);
      // Once the phone cannot be paired again, every later run (fast-check's shrinking too) says so.
      let unpaired: Error | null = null;
      await fc.assert(
        fc.asyncProperty(arbitrary, async ({ operation, declared, stray, id, pairing }) => {
          if (unpaired) throw unpaired;
          const payload: Record<string, unknown> = { ...stray, ...Object.fromEntries(Object.entries(declared).filter(([, v]) => v !== null)) };
          const concrete = `/device/v1${operation.path.replace('{id}', encodeURIComponent(id ?? challengeId))}`;
          const signed = await device.sign(operation.method, concrete, payload, { pairing: pairing && operation.path === '/pair' });
          const response = await app.inject({ method: operation.method, url: concrete, headers: { authorization: `PortcullisDevice ${signed}` }, remoteAddress: '198.51.100.250' });
          const what = `${operation.method} ${concrete.slice(0, 200)} ${JSON.stringify(payload).slice(0, 400)}`;
          const after = await snapshot(ctx);
          const changed = changes(before, after).map((change) => change.slice(0, 600));
          before = after;
          expect(response.statusCode, `${what}\n→ ${response.statusCode} ${response.body.slice(0, 300)}`).toBeLessThan(500);
          if (isRejection(response) || [401, 404, 409, 410].includes(response.statusCode)) expect(changed, `${what}\n→ ${response.statusCode} ${response.body}`).toEqual([]);
          // Removed (a valid request with nothing in it): the next runs need a phone again.
          if (operation.path === '/device/remove' && response.statusCode === 200) {
            await pairPhone().catch((error: unknown) => {
              unpaired = new Error(`the phone could not be paired again after ${what}: ${(error as Error).message}`);
              throw unpaired;
            });
            before = await snapshot(ctx);
          }
        }),
        { numRuns: RUNS * 8, ...(SEED === undefined ? {} : { seed: SEED }) },
      );
    });

    it('answers a hostile JWS header (kid, jwk, typ) below 500, before it is verified', async () => {
      const segments = fc.oneof(hostileText, fc.jsonValue({ maxDepth: 2 }));
      await fc.assert(
        fc.asyncProperty(fc.record({ kid: segments, jwk: fc.option(fc.oneof(segments, fc.record({ kty: fc.constant('EC'), crv: fc.constant('P-256'), x: fc.base64String(), y: fc.base64String() }))), typ: fc.option(segments) }), fc.boolean(), async (header, pair) => {
          const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
          const claims = { iat: Math.floor(ctx.clock().getTime() / 1000), jti: 'j'.repeat(22), htm: 'POST', htu: pair ? '/device/v1/pair' : '/device/v1/device/name', name: 'x' };
          const jws = `${part({ alg: 'ES256', typ: header.typ ?? 'portcullis-device+jwt', kid: header.kid, ...(header.jwk === null ? {} : { jwk: header.jwk }) })}.${part(claims)}.${Buffer.alloc(64, 1).toString('base64url')}`;
          const url = pair ? '/device/v1/pair' : '/device/v1/device/name';
          const response = await app.inject({ method: 'POST', url, headers: { authorization: `PortcullisDevice ${jws}` }, remoteAddress: '198.51.100.251' });
          expect(response.statusCode, `POST ${url} header ${JSON.stringify(header)} → ${response.body.slice(0, 300)}`).toBeLessThan(500);
        }),
        { numRuns: RUNS * 4, ...(SEED === undefined ? {} : { seed: SEED }) },
      );
    });
  });
});

// ── Helpers: routes, and arbitraries from the OpenAPI document ───────────────────────────────────────

/** The routes the app answers for one method, read from Fastify's own route tree. */
function routesOf(app: FastifyInstance, method: 'GET' | 'POST'): string[] {
  const tree = app.printRoutes({ method, commonPrefix: false });
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^([│ ]*)[├└]── (\S+) \(([^)]*)\)/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    stack.push(match[2]!);
    if (match[3]!.split(', ').includes(method)) routes.push(stack.join(''));
  }
  return routes;
}

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  format?: string;
  $ref?: string;
}

/** An arbitrary for a JSON Schema (the subset the device API's document uses). */
function fromSchema(schema: JsonSchema, schemas: Record<string, JsonSchema>): fc.Arbitrary<unknown> {
  if (schema.$ref) return fromSchema(schemas[schema.$ref.split('/').at(-1)!]!, schemas);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const type = Array.isArray(schema.type) ? schema.type : [schema.type ?? 'object'];
  return fc.oneof(
    ...type.map((t): fc.Arbitrary<unknown> => {
      switch (t) {
        case 'string':
          return schema.format === 'uri' ? fc.oneof(fc.webUrl(), fc.constantFrom('https://fcm.googleapis.com/fcm/send/abc', 'http://127.0.0.1:6379/')) : fc.string({ maxLength: 40 });
        case 'integer':
          return fc.integer();
        case 'number':
          return fc.double();
        case 'null':
          return fc.constant(null);
        default:
          return fc.record(Object.fromEntries(Object.entries(schema.properties ?? {}).map(([name, property]) => [name, fromSchema(property, schemas)])), {
            requiredKeys: schema.required ?? [],
          });
      }
    }),
  );
}

/** An arbitrary for an `x-jws-payload` description: "string (1–60)", "approve | deny | report", "PushSubscription | null". */
function fromDescription(description: string, schemas: Record<string, JsonSchema>): fc.Arbitrary<unknown> {
  const base = description.replace(/\s*\(.*\)\s*$/, '').trim();
  const alternatives = base.split('|').map((part) => part.trim());
  return fc.oneof(
    ...alternatives.map((part): fc.Arbitrary<unknown> => {
      if (part === 'string') {
        const range = /\((\d+)[–-](\d+)\)/.exec(description);
        return range ? fc.string({ minLength: Number(range[1]), maxLength: Number(range[2]) }) : fc.string({ maxLength: 40 });
      }
      if (part === 'null') return fc.constant(null);
      if (schemas[part]) return fromSchema(schemas[part]!, schemas);
      return fc.constant(part);
    }),
  );
}

/**
 * The real providers against local stand-ins for their APIs, each checking the exact request the real
 * service expects (method, path, authentication, content type, fields), and the dispatcher's handling
 * of their failures: a refused request is a dead letter after one attempt; 429, 5xx and network errors
 * are retried with backoff until DELIVERY_MAX_ATTEMPTS. Nothing leaves the machine.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDelivery, type Delivery } from '../../src/channels/outbox.js';
import type { OutgoingMessage } from '../../src/channels/types.js';
import { createMetrics } from '../../src/app/metrics.js';
import { createTestContext, type TestContext } from '../helpers/context.js';
import { freePort } from '../helpers/browser.js';

const CODE = '394817';
const SERVICE_ID = '26785a09-ab16-4eb0-8407-a37497a57506';
const NOTIFY_SECRET = '3d844edf-8d35-48ac-975b-e847b4f122b0';
const NOTIFY_KEY = `portcullis_test-${SERVICE_ID}-${NOTIFY_SECRET}`;
const TEMPLATE_ID = 'f33517ff-2a88-4f6e-b855-c550268ce08a';
const ACCOUNT_SID = `AC${'0123456789abcdef'.repeat(2)}`;
const AUTH_TOKEN = 'twilio-auth-token-for-tests';
const FROM = '+447700900000';
const TO = '+447700900123';

const sms: OutgoingMessage = { channel: 'sms', to: TO, purpose: 'sign-in-code', text: `${CODE} is your Portcullis sign-in code. Do not share it.`, code: CODE };
const voice: OutgoingMessage = { channel: 'voice', to: TO, purpose: 'sign-in-code', text: `Your Portcullis sign-in code is ${CODE}.`, code: CODE };

interface Captured {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface Reply {
  status: number;
  body: unknown;
}

/** A local HTTP server that records requests and answers from a script (then with `fallback`). */
class FakeApi {
  readonly requests: Captured[] = [];
  script: Reply[] = [];
  fallback: (request: Captured) => Reply = () => ({ status: 500, body: {} });
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const captured = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.requests.push(captured);
        const reply = this.script.shift() ?? this.fallback(captured);
        res.writeHead(reply.status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  reset(): void {
    this.requests.length = 0;
    this.script = [];
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

/** Checks a GOV.UK Notify JWT as Notify's API does: HS256 with the key's secret, iss the service id, iat recent. */
function verifyNotifyToken(authorization: string | undefined): { iss: string; iat: number } {
  const match = /^Bearer ([\w-]+)\.([\w-]+)\.([\w-]+)$/.exec(authorization ?? '');
  if (!match) throw new Error(`not a bearer JWT: ${authorization}`);
  const [, header, payload, signature] = match as unknown as [string, string, string, string];
  expect(JSON.parse(Buffer.from(header, 'base64url').toString())).toEqual({ typ: 'JWT', alg: 'HS256' });
  const expected = createHmac('sha256', NOTIFY_SECRET).update(`${header}.${payload}`).digest('base64url');
  expect(signature).toBe(expected);
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { iss: string; iat: number };
  expect(claims.iss).toBe(SERVICE_ID);
  expect(Math.abs(claims.iat - Date.now() / 1000)).toBeLessThan(30); // Notify allows 30 seconds of clock skew
  return claims;
}

const twilioAuth = `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`;

describe('delivery providers against local stand-ins', () => {
  const notify = new FakeApi();
  const twilio = new FakeApi();
  let smtpPort: number;
  let smtp: SMTPServer;
  const mail: Array<{ from: string; to: string[]; raw: string; user: string | undefined }> = [];
  let ctx: TestContext;
  let now: Date;
  const clock = () => now;
  let logs: string[];

  function delivery(): Delivery & { metricsText(): Promise<string> } {
    const metrics = createMetrics({ defaultMetrics: false });
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
    const created = createDelivery({ db: ctx.store.database.db, keys: ctx.keys, config: ctx.config, logger, metrics, clock, random: () => 0.5, sendTimeoutMs: 5000 });
    return Object.assign(created, { metricsText: () => metrics.registry.metrics() });
  }
  const row = (id: string) => ctx.store.database.db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  beforeAll(async () => {
    await Promise.all([notify.start(), twilio.start()]);
    notify.fallback = (request) => ({
      status: 201,
      body: { id: randomUUID(), reference: (JSON.parse(request.body) as { reference?: string }).reference, content: { body: 'x', from_number: 'GOVUK' }, uri: '', template: {} },
    });
    twilio.fallback = (request) => ({ status: 201, body: { sid: `${request.path.endsWith('Calls.json') ? 'CA' : 'SM'}${'f'.repeat(32)}`, status: 'queued' } });

    smtpPort = await freePort();
    smtp = new SMTPServer({
      authOptional: true,
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth(auth, _session, callback) {
        if (auth.username === 'portcullis' && auth.password === 'mail-secret') return callback(null, { user: auth.username });
        return callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      },
      onRcptTo(address, _session, callback) {
        if (address.address.startsWith('nobody@')) return callback(Object.assign(new Error('Mailbox unavailable'), { responseCode: 550 }));
        if (address.address.startsWith('busy@')) return callback(Object.assign(new Error('Try again later'), { responseCode: 451 }));
        return callback();
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          mail.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('utf8'),
            user: typeof session.user === 'string' ? session.user : undefined,
          });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(smtpPort, '127.0.0.1', () => resolve()));

    ctx = await createTestContext('sqlite', {
      SMS_PROVIDER: 'twilio',
      VOICE_PROVIDER: 'twilio',
      EMAIL_PROVIDER: 'smtp',
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_FROM: FROM,
      TWILIO_BASE_URL: twilio.url,
      SMTP_URL: `smtp://portcullis:mail-secret@127.0.0.1:${smtpPort}`,
      EMAIL_FROM: 'NHSmail <no-reply@nhs.example>',
      DELIVERY_MAX_ATTEMPTS: '3',
    });
  });

  afterAll(async () => {
    await ctx?.destroy();
    await Promise.all([notify.stop(), twilio.stop(), new Promise<void>((resolve) => smtp?.close(() => resolve()))]);
  });

  beforeEach(async () => {
    now = new Date('2030-03-01T09:00:00.000Z');
    logs = [];
    notify.reset();
    twilio.reset();
    mail.length = 0;
    await ctx.store.database.db.deleteFrom('outbox').execute();
  });

  describe('Twilio', () => {
    it('sends a text message: form POST to Messages.json with Basic auth, To, From and Body', async () => {
      const d = delivery();
      const id = await d.enqueue(sms);
      expect(await d.dispatchDue()).toBe(1);

      expect(twilio.requests).toHaveLength(1);
      const [request] = twilio.requests as [Captured];
      expect(request.method).toBe('POST');
      expect(request.path).toBe(`/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`);
      expect(request.headers.authorization).toBe(twilioAuth);
      expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(Object.fromEntries(new URLSearchParams(request.body))).toEqual({ To: TO, From: FROM, Body: sms.text });
      expect(await row(id)).toMatchObject({ status: 'sent', provider: 'twilio', provider_message_id: `SM${'f'.repeat(32)}`, payload: null });
    });

    it('places a call whose TwiML reads the code digit by digit, twice', async () => {
      const d = delivery();
      const id = await d.enqueue(voice);
      expect(await d.dispatchDue()).toBe(1);

      const [request] = twilio.requests as [Captured];
      expect(request.path).toBe(`/2010-04-01/Accounts/${ACCOUNT_SID}/Calls.json`);
      expect(request.headers.authorization).toBe(twilioAuth);
      const fields = Object.fromEntries(new URLSearchParams(request.body));
      expect(Object.keys(fields).sort()).toEqual(['From', 'To', 'Twiml']);
      expect(fields).toMatchObject({ To: TO, From: FROM });
      expect(fields.Twiml).toBe(
        '<?xml version="1.0" encoding="UTF-8"?><Response>' +
          '<Say voice="alice" language="en-GB">Your Portcullis sign-in code is 3, 9, 4, 8, 1, 7.</Say><Pause length="1"/>' +
          '<Say voice="alice" language="en-GB">Again, your code is 3, 9, 4, 8, 1, 7.</Say></Response>',
      );
      expect(await row(id)).toMatchObject({ status: 'sent', provider_message_id: `CA${'f'.repeat(32)}` });
    });

    it('gives up at once when Twilio refuses the request (400), keeping only its error code', async () => {
      twilio.script = [{ status: 400, body: { code: 21211, message: `The 'To' number ${TO} is not a valid phone number.`, more_info: 'https://www.twilio.com/docs/errors/21211', status: 400 } }];
      const d = delivery();
      const id = await d.enqueue(sms);
      expect(await d.dispatchDue()).toBe(1);
      now = new Date(now.getTime() + 3600_000);
      expect(await d.dispatchDue()).toBe(0);
      expect(twilio.requests).toHaveLength(1);
      expect(await row(id)).toMatchObject({ status: 'dead', attempts: 1, payload: null, last_error: 'provider-rejected: The provider refused the message (400): Twilio error 21211' });
      expect(logs.join('\n')).not.toContain('7700900123');
      expect(await d.metricsText()).toContain('portcullis_messages_total{channel="sms",provider="twilio",outcome="dead"} 1');
    });

    it('retries 429 and 500 with backoff, then sends', async () => {
      twilio.script = [
        { status: 429, body: { code: 20429, message: 'Too Many Requests', status: 429 } },
        { status: 500, body: {} },
      ];
      const d = delivery();
      const id = await d.enqueue(sms);
      expect(await d.dispatchDue()).toBe(1);
      expect(await row(id)).toMatchObject({ status: 'pending', attempts: 1, last_error: 'provider-throttled: The provider asked us to slow down (429): Twilio error 20429' });
      now = new Date(now.getTime() + 2000);
      expect(await d.dispatchDue()).toBe(1);
      expect(await row(id)).toMatchObject({ status: 'pending', attempts: 2, last_error: 'provider-unavailable: The provider failed or could not be reached (500)' });
      now = new Date(now.getTime() + 3999);
      expect(await d.dispatchDue()).toBe(0);
      now = new Date(now.getTime() + 1);
      expect(await d.dispatchDue()).toBe(1);
      expect(await row(id)).toMatchObject({ status: 'sent', attempts: 3, last_error: null });
      expect(twilio.requests).toHaveLength(3);
      const metrics = await d.metricsText();
      expect(metrics).toContain('portcullis_messages_total{channel="sms",provider="twilio",outcome="retried"} 2');
      expect(metrics).toContain('portcullis_messages_total{channel="sms",provider="twilio",outcome="sent"} 1');
    });

    it('makes a server error a dead letter after DELIVERY_MAX_ATTEMPTS', async () => {
      twilio.script = [500, 503, 502].map((status) => ({ status, body: {} }));
      const d = delivery();
      const id = await d.enqueue(voice);
      for (let attempt = 1; attempt <= 3; attempt += 1) {
        expect(await d.dispatchDue()).toBe(1);
        now = new Date(now.getTime() + 60_000);
      }
      expect(await d.dispatchDue()).toBe(0);
      expect(twilio.requests).toHaveLength(3);
      expect(await row(id)).toMatchObject({ status: 'dead', attempts: 3, payload: null, last_error: 'provider-unavailable: The provider failed or could not be reached (502)' });
      expect(logs.some((line) => line.includes('"level":50') && line.includes('dead letter'))).toBe(true);
    });
  });

  describe('GOV.UK Notify', () => {
    let notifyCtx: TestContext;
    beforeAll(async () => {
      notifyCtx = await createTestContext('sqlite', {
        SMS_PROVIDER: 'notify',
        NOTIFY_API_KEY: NOTIFY_KEY,
        NOTIFY_SMS_TEMPLATE_ID: TEMPLATE_ID,
        NOTIFY_BASE_URL: notify.url,
        DELIVERY_MAX_ATTEMPTS: '2',
      });
    });
    afterAll(async () => notifyCtx?.destroy());

    function notifyDelivery(): Delivery {
      const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
      return createDelivery({ db: notifyCtx.store.database.db, keys: notifyCtx.keys, config: notifyCtx.config, logger, metrics: createMetrics({ defaultMetrics: false }), clock, random: () => 0.5 });
    }
    const notifyRow = (id: string) => notifyCtx.store.database.db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

    it('sends the template with the message as ((body)), the outbox id as reference, and a signed JWT', async () => {
      const d = notifyDelivery();
      const id = await d.enqueue(sms);
      expect(await d.dispatchDue()).toBe(1);

      expect(notify.requests).toHaveLength(1);
      const [request] = notify.requests as [Captured];
      expect(request.method).toBe('POST');
      expect(request.path).toBe('/v2/notifications/sms');
      expect(request.headers['content-type']).toMatch(/^application\/json/);
      verifyNotifyToken(request.headers.authorization);
      expect(JSON.parse(request.body)).toEqual({ template_id: TEMPLATE_ID, phone_number: TO, personalisation: { body: sms.text }, reference: id });
      const stored = await notifyRow(id);
      expect(stored).toMatchObject({ status: 'sent', provider: 'notify', payload: null });
      expect(stored.provider_message_id).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('gives up at once on a 400 and retries a 500 until DELIVERY_MAX_ATTEMPTS', async () => {
      notify.script = [
        { status: 400, body: { status_code: 400, errors: [{ error: 'BadRequestError', message: `Can't send to this recipient using a team-only API key (${TO})` }] } },
        { status: 500, body: { status_code: 500, errors: [{ error: 'Exception', message: 'Internal server error' }] } },
        { status: 500, body: { status_code: 500, errors: [{ error: 'Exception', message: 'Internal server error' }] } },
      ];
      const d = notifyDelivery();
      const refused = await d.enqueue(sms);
      expect(await d.dispatchDue()).toBe(1);
      expect(await notifyRow(refused)).toMatchObject({ status: 'dead', attempts: 1, last_error: 'provider-rejected: The provider refused the message (400): Notify BadRequestError' });

      const failing = await d.enqueue({ ...sms, to: '+447700900456' });
      expect(await d.dispatchDue()).toBe(1);
      expect(await notifyRow(failing)).toMatchObject({ status: 'pending', attempts: 1, last_error: 'provider-unavailable: The provider failed or could not be reached (500): Notify Exception' });
      now = new Date(now.getTime() + 2000);
      expect(await d.dispatchDue()).toBe(1);
      expect(await notifyRow(failing)).toMatchObject({ status: 'dead', attempts: 2, payload: null });
      expect(notify.requests).toHaveLength(3);
      expect(logs.join('\n')).not.toContain('7700900123');
    });
  });

  describe('SMTP', () => {
    const email: OutgoingMessage = {
      channel: 'email',
      to: 'alex.smith@example.org',
      purpose: 'security-notice',
      subject: 'A sign-in method was added to your account',
      text: 'An authenticator app was added to your account. If this was not you, call the helpdesk.',
    };

    it('sends From, To, Subject and the text, authenticating with the credentials in SMTP_URL', async () => {
      const d = delivery();
      const id = await d.enqueue(email);
      expect(await d.dispatchDue()).toBe(1);

      expect(mail).toHaveLength(1);
      const [message] = mail as [(typeof mail)[number]];
      expect(message.user).toBe('portcullis');
      expect(message.from).toBe('no-reply@nhs.example');
      expect(message.to).toEqual(['alex.smith@example.org']);
      const [headers = '', body = ''] = message.raw.split('\r\n\r\n');
      expect(headers).toMatch(/^From: NHSmail <no-reply@nhs\.example>$/m);
      expect(headers).toMatch(/^To: alex\.smith@example\.org$/m);
      expect(headers).toMatch(/^Subject: A sign-in method was added to your account$/m);
      expect(headers).toMatch(/^Content-Type: text\/plain/m);
      expect(body.replace(/=\r\n/g, '').trim()).toBe(email.text);
      const stored = await row(id);
      expect(stored).toMatchObject({ status: 'sent', provider: 'smtp', payload: null });
      expect(stored.provider_message_id).toMatch(/^<.+@nhs\.example>$/);
    });

    it('gives up on a permanent refusal (5xx) and retries a transient one (4xx)', async () => {
      const d = delivery();
      const refused = await d.enqueue({ ...email, to: 'nobody@example.org' });
      const busy = await d.enqueue({ ...email, to: 'busy@example.org' });
      expect(await d.dispatchDue()).toBe(2);
      expect(await row(refused)).toMatchObject({ status: 'dead', attempts: 1, last_error: 'provider-rejected: The provider refused the message (550): EENVELOPE' });
      expect(await row(busy)).toMatchObject({ status: 'pending', attempts: 1, last_error: 'provider-unavailable: The provider failed or could not be reached (451): EENVELOPE' });
      expect(mail).toHaveLength(0);
      expect(logs.join('\n')).not.toContain('nobody@example.org');
    });
  });

  it('retries when the provider cannot be reached at all', async () => {
    const port = await freePort(); // nothing listens there
    const unreachable = await createTestContext('sqlite', {
      SMS_PROVIDER: 'twilio',
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_FROM: FROM,
      TWILIO_BASE_URL: `http://127.0.0.1:${port}`,
    });
    try {
      const d = createDelivery({ db: unreachable.store.database.db, keys: unreachable.keys, config: unreachable.config, logger: pino({ level: 'silent' }), metrics: createMetrics({ defaultMetrics: false }), clock, random: () => 0.5 });
      const id = await d.enqueue(sms);
      expect(await d.dispatchDue()).toBe(1);
      const stored = await unreachable.store.database.db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      expect(stored).toMatchObject({ status: 'pending', attempts: 1, last_error: 'provider-unavailable: The provider failed or could not be reached: ECONNREFUSED' });
    } finally {
      await unreachable.destroy();
    }
  });
});

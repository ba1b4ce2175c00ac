/**
 * The outbox and its dispatcher on SQLite and PostgreSQL: transactional enqueue, exactly-once claims
 * between racing dispatchers, recovery of a lapsed claim, retries with backoff on the injected clock,
 * dead letters, and codes never at rest in the clear.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { DeliveryError } from '../../src/channels/errors.js';
import { createDelivery, OUTCOME_UNKNOWN, payloadAssociatedData, type Delivery, type DeliveryOptions } from '../../src/channels/outbox.js';
import type { OutgoingMessage, Provider } from '../../src/channels/types.js';
import { openText, SealError } from '../../src/crypto/seal.js';
import { createMetrics } from '../../src/app/metrics.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { createTestContext, dialects, type TestContext } from '../helpers/context.js';

const CODE = '394817';
const sms = (to = '+447700900123', code = CODE): OutgoingMessage => ({
  channel: 'sms',
  to,
  purpose: 'sign-in-code',
  text: `${code} is your Portcullis sign-in code. Do not share it.`,
  code,
});

interface FakeProvider extends Provider {
  sent: Array<{ message: OutgoingMessage; reference: string | undefined }>;
  behaviour: (message: OutgoingMessage) => Promise<{ providerMessageId?: string }>;
}

function fakeProvider(name = 'fake'): FakeProvider {
  const provider: FakeProvider = {
    name,
    sent: [],
    behaviour: async () => ({ providerMessageId: `${name}-${provider.sent.length}` }),
    async send(message, context) {
      const result = await provider.behaviour(message);
      provider.sent.push({ message, reference: context?.reference });
      return result;
    },
  };
  return provider;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe.each(dialects)('delivery on %s', (dialect) => {
  let ctx: TestContext;
  let now: Date;
  const clock = () => now;
  const advance = (ms: number) => (now = new Date(now.getTime() + ms));
  let logLines: string[];
  const extraDatabases: Database[] = [];
  const deliveries: Delivery[] = [];

  /** A delivery on the test database with this test's clock, a pinned jitter and captured logs. */
  function delivery(options: Partial<DeliveryOptions> = {}): Delivery & { registryText(): Promise<string> } {
    const metrics = createMetrics({ defaultMetrics: false });
    const logger = pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) });
    const created = createDelivery({ db: ctx.store.database.db, keys: ctx.keys, config: ctx.config, logger, metrics, clock, random: () => 0.5, ...options });
    deliveries.push(created);
    return Object.assign(created, { registryText: () => metrics.registry.metrics() });
  }

  const rows = () => ctx.store.database.db.selectFrom('outbox').selectAll().orderBy('created_at').execute();
  const row = async (id: string) => ctx.store.database.db.selectFrom('outbox').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  beforeAll(async () => {
    ctx = await createTestContext(dialect, { DELIVERY_MAX_ATTEMPTS: '4' });
  });
  afterAll(async () => {
    for (const database of extraDatabases) await database.close();
    await ctx?.destroy();
  });
  beforeEach(async () => {
    now = new Date('2030-03-01T09:00:00.000Z');
    logLines = [];
    await ctx.store.database.db.deleteFrom('outbox').execute();
  });
  afterEach(async () => {
    for (const d of deliveries.splice(0)) await d.stop();
  });

  it('keeps development messages readable, sealed at rest, and lists them newest first', async () => {
    const d = delivery();
    expect(d.providers.sms.name).toBe('outbox');
    const first = await d.enqueue(sms('+447700900111', '111111'));
    advance(1000);
    const second = await d.enqueue({ channel: 'email', to: 'alex@example.org', purpose: 'security-notice', subject: 'Your password was changed', text: 'If this was not you, call the helpdesk.' });
    expect(await d.dispatchDue()).toBe(2);

    const stored = await row(first);
    expect(stored).toMatchObject({ status: 'sent', provider: 'outbox', attempts: 1, recipient: '+447700900111', claimed_until: null });
    expect(stored.sent_at).toBe(now.toISOString());
    // Sealed: no code, text or number in the clear, and bound to its row.
    expect(stored.payload).toMatch(/^v1\./);
    expect(stored.payload).not.toContain('111111');
    expect(stored.payload).not.toContain('sign-in code');
    expect(stored.payload).not.toContain('7700900111');
    expect(() => openText(ctx.keys.keyEncryption, stored.payload!, payloadAssociatedData(second))).toThrow(SealError);

    const listed = await d.listOutbox();
    expect(listed.map((m) => m.id)).toEqual([second, first]);
    expect(listed[1]).toMatchObject({ channel: 'sms', to: '+447700900111', purpose: 'sign-in-code', code: '111111', status: 'sent' });
    expect(listed[1]!.text).toContain('111111 is your Portcullis sign-in code');
    expect(listed[0]).toMatchObject({ channel: 'email', subject: 'Your password was changed', to: 'alex@example.org' });
    expect(listed[0]!.code).toBeUndefined();
    expect((await d.listOutbox({ to: 'ALEX@example.org' })).map((m) => m.id)).toEqual([second]);
    expect(await d.listOutbox({ limit: 1 })).toHaveLength(1);
  });

  it('wipes the payload once a real provider has sent it, and records the provider’s id and reference', async () => {
    const provider = fakeProvider('fake-sms');
    const d = delivery({ providers: { sms: provider } });
    const id = await d.enqueue(sms());
    expect((await row(id)).payload).toMatch(/^v1\./);
    expect(await d.dispatchDue()).toBe(1);

    expect(provider.sent).toEqual([{ message: sms(), reference: id }]);
    const stored = await row(id);
    expect(stored).toMatchObject({ status: 'sent', provider: 'fake-sms', provider_message_id: 'fake-sms-0', payload: null, last_error: null });
    expect(await d.listOutbox()).toEqual([]); // not a development message
    expect(await d.registryText()).toContain('portcullis_messages_total{channel="sms",provider="fake-sms",outcome="sent"} 1');
    // Logged without the code, the text or the whole number.
    const logs = logLines.join('\n');
    expect(logs).toContain('"msg":"message sent"');
    expect(logs).toContain('+44 7••• ••• 123');
    expect(logs).not.toContain(CODE);
    expect(logs).not.toContain('7700900123');
  });

  it('queues nothing when the caller’s transaction rolls back, and one message when it commits', async () => {
    const provider = fakeProvider();
    const d = delivery({ providers: { sms: provider } });
    await expect(
      ctx.store.database.db.transaction().execute(async (trx) => {
        await d.enqueue(sms(), trx);
        throw new Error('the sign-in step failed');
      }),
    ).rejects.toThrow('the sign-in step failed');
    expect(await d.dispatchDue()).toBe(0);
    expect(await rows()).toEqual([]);

    await ctx.store.database.db.transaction().execute((trx) => d.enqueue(sms('+447700900999'), trx));
    expect(await d.dispatchDue()).toBe(1);
    expect(provider.sent.map((s) => s.message.to)).toEqual(['+447700900999']);
  });

  it('refuses a malformed message and stores nothing', async () => {
    const d = delivery();
    await expect(d.enqueue({ ...sms(), to: '07700 900123' })).rejects.toMatchObject({ code: 'message-invalid' });
    expect(await rows()).toEqual([]);
  });

  it('sends each message exactly once when two dispatchers on separate connections race', async () => {
    const second = openDatabase(ctx.config.database);
    extraDatabases.push(second);
    const providerA = fakeProvider('race');
    const providerB = fakeProvider('race');
    // Each send yields to the event loop, so the two dispatchers interleave.
    providerA.behaviour = providerB.behaviour = () => new Promise((resolve) => setTimeout(() => resolve({}), 1));
    const a = delivery({ providers: { sms: providerA }, concurrency: 4 });
    const b = delivery({ providers: { sms: providerB }, concurrency: 4, db: second.db });
    const ids = new Set<string>();
    for (let i = 0; i < 30; i += 1) ids.add(await a.enqueue(sms(`+4477009001${String(i).padStart(2, '0')}`)));

    const [attemptedA, attemptedB] = await Promise.all([a.dispatchDue(), b.dispatchDue()]);
    const references = [...providerA.sent, ...providerB.sent].map((s) => s.reference);
    expect(attemptedA + attemptedB).toBe(30);
    expect(references).toHaveLength(30);
    expect(new Set(references)).toEqual(ids);
    expect((await rows()).every((r) => r.status === 'sent' && r.attempts === 1)).toBe(true);
    expect(await Promise.all([a.dispatchDue(), b.dispatchDue()])).toEqual([0, 0]);
  });

  it('never sends again a message whose dispatcher stopped after claiming it: a dead letter, outcome unknown, until a late result arrives (issue #17)', async () => {
    const stuck = fakeProvider('fake-sms');
    const release = deferred();
    stuck.behaviour = async () => {
      await release.promise;
      return { providerMessageId: 'from-the-stuck-node' };
    };
    const crashed = delivery({ providers: { sms: stuck }, claimMs: 60_000 });
    const id = await crashed.enqueue(sms());
    const crashedRound = crashed.dispatchDue(); // claims, then hangs in the provider: as good as dead
    await expect.poll(async () => (await row(id)).status).toBe('sending');

    const healthy = fakeProvider('fake-sms');
    const survivor = delivery({ providers: { sms: healthy } });
    expect(await survivor.dispatchDue()).toBe(0); // the claim still holds
    advance(60_001);
    // The provider may have accepted it before the node stopped: not sent blindly a second time.
    expect(await survivor.dispatchDue()).toBe(0);
    expect(healthy.sent).toEqual([]);
    expect(await row(id)).toMatchObject({ status: 'dead', attempts: 1, last_error: OUTCOME_UNKNOWN, payload: null });
    expect(logLines.join('\n')).toContain('whether it went is unknown');

    // The first node comes back to life after all: its result is the message's story.
    release.resolve();
    await crashedRound;
    expect(await row(id)).toMatchObject({ status: 'sent', provider_message_id: 'from-the-stuck-node', last_error: null });
    expect(logLines.join('\n')).toContain('it was not sent again');
  });

  it('retries a retryable failure with exponential backoff on the clock, then gives it up as a dead letter', async () => {
    const provider = fakeProvider('fake-sms');
    provider.behaviour = async () => {
      throw new DeliveryError('provider-unavailable', { status: 503 });
    };
    const d = delivery({ providers: { sms: provider } });
    const id = await d.enqueue(sms());

    // DELIVERY_MAX_ATTEMPTS=4: waits of 2, 4 and 8 seconds between them (jitter pinned to none).
    for (const [attempt, wait] of [[1, 2000], [2, 4000], [3, 8000]] as const) {
      expect(await d.dispatchDue()).toBe(1);
      const stored = await row(id);
      expect(stored).toMatchObject({ status: 'pending', attempts: attempt, claimed_until: null });
      expect(stored.next_attempt_at).toBe(new Date(now.getTime() + wait).toISOString());
      expect(stored.last_error).toBe('provider-unavailable: The provider failed or could not be reached (503)');
      advance(wait - 1);
      expect(await d.dispatchDue()).toBe(0); // not yet
      advance(1);
    }
    expect(await d.dispatchDue()).toBe(1);
    expect(await row(id)).toMatchObject({ status: 'dead', attempts: 4, payload: null });
    expect(await d.dispatchDue()).toBe(0);
    advance(3600_000);
    expect(await d.dispatchDue()).toBe(0);
    expect(provider.sent).toHaveLength(0);

    const metrics = await d.registryText();
    expect(metrics).toContain('portcullis_messages_total{channel="sms",provider="fake-sms",outcome="retried"} 3');
    expect(metrics).toContain('portcullis_messages_total{channel="sms",provider="fake-sms",outcome="dead"} 1');
    const deadLine = logLines.find((line) => line.includes('dead letter'));
    expect(deadLine).toBeDefined();
    expect(JSON.parse(deadLine!)).toMatchObject({ level: 50, outboxId: id, purpose: 'sign-in-code', to: '+44 7••• ••• 123', attempts: 4 });
    expect(logLines.join('\n')).not.toContain(CODE);
  });

  it('gives up at once on a failure that cannot succeed, keeping a development message readable', async () => {
    const provider = fakeProvider('fake-sms');
    provider.behaviour = async () => {
      throw new DeliveryError('provider-rejected', { status: 400, detail: 'Twilio error 21211' });
    };
    const d = delivery({ providers: { sms: provider, email: { name: 'outbox', retainsContent: true, send: provider.behaviour } } });
    const id = await d.enqueue(sms());
    const emailId = await d.enqueue({ channel: 'email', to: 'alex@example.org', purpose: 'security-notice', subject: 'Hello', text: 'Body' });
    expect(await d.dispatchDue()).toBe(2);
    expect(await row(id)).toMatchObject({ status: 'dead', attempts: 1, payload: null, last_error: 'provider-rejected: The provider refused the message (400): Twilio error 21211' });
    const email = await row(emailId);
    expect(email.status).toBe('dead');
    expect(email.payload).toMatch(/^v1\./);
    expect((await d.listOutbox())[0]).toMatchObject({ id: emailId, status: 'dead', text: 'Body' });
  });

  it('retries an unexpected error, but not a provider that does not answer: it may have the message (issue #17)', async () => {
    const provider = fakeProvider('fake-sms');
    const d = delivery({ providers: { sms: provider }, sendTimeoutMs: 50 });
    provider.behaviour = async () => {
      throw new TypeError(`cannot read properties of undefined (${CODE})`);
    };
    const unexpected = await d.enqueue(sms());
    expect(await d.dispatchDue()).toBe(1);
    expect(await row(unexpected)).toMatchObject({ status: 'pending', last_error: 'unexpected: Sending failed unexpectedly: TypeError' });

    await ctx.store.database.db.deleteFrom('outbox').execute();
    provider.behaviour = () => new Promise(() => {}); // never answers
    const silent = await d.enqueue(sms());
    expect(await d.dispatchDue()).toBe(1);
    expect(await row(silent)).toMatchObject({ status: 'dead', attempts: 1, payload: null });
    expect((await row(silent)).last_error).toContain('provider-timeout');
    expect(await d.dispatchDue()).toBe(0); // never sent again
    // The unexpected error's message (which here carries the code) is never logged above debug level.
    expect(logLines.filter((l) => !l.includes('"level":20')).join('\n')).not.toContain(CODE);
  });

  it('gives up without sending a message left mid-send by a dispatcher that died (it may be killing its dispatcher)', async () => {
    const provider = fakeProvider('fake-sms');
    const d = delivery({ providers: { sms: provider } });
    const id = await d.enqueue(sms());
    // As left by a dispatcher that died mid-send.
    await ctx.store.database.db
      .updateTable('outbox')
      .set({ status: 'sending', attempts: 4, claimed_until: new Date(now.getTime() - 1).toISOString(), claim_token: 'dead-node' })
      .where('id', '=', id)
      .execute();
    expect(await d.dispatchDue()).toBe(0);
    expect(provider.sent).toEqual([]);
    expect(await row(id)).toMatchObject({ status: 'dead', attempts: 4, payload: null, last_error: OUTCOME_UNKNOWN });
  });

  it('dispatches in the background straight after enqueue, and stops cleanly', async () => {
    const provider = fakeProvider('fake-sms');
    const d = delivery({ providers: { sms: provider }, clock: () => new Date() });
    d.start();
    d.start(); // idempotent
    const id = await d.enqueue(sms());
    await expect.poll(() => provider.sent.length, { timeout: 2000, interval: 10 }).toBe(1);
    expect(provider.sent[0]!.reference).toBe(id);
    await d.stop();
    await d.enqueue(sms('+447700900456'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(provider.sent).toHaveLength(1); // stopped: nothing more is sent
  });

  it('reports the queue depth and the oldest message’s age, and deletes old finished messages', async () => {
    const d = delivery({ providers: { sms: fakeProvider('fake-sms') } });
    await d.enqueue(sms());
    advance(30_000);
    await d.enqueue(sms('+447700900456'));
    await d.enqueue({ channel: 'voice', to: '+447700900456', purpose: 'sign-in-code', text: `Your code is ${CODE}.`, code: CODE });
    advance(15_000);
    let metrics = await d.registryText();
    expect(metrics).toContain('portcullis_outbox_pending{channel="sms"} 2');
    expect(metrics).toContain('portcullis_outbox_pending{channel="voice"} 1');
    expect(metrics).toContain('portcullis_outbox_pending{channel="email"} 0');
    expect(metrics).toContain('portcullis_outbox_oldest_pending_seconds 45');

    expect(await d.dispatchDue()).toBe(3);
    metrics = await d.registryText();
    expect(metrics).toContain('portcullis_outbox_pending{channel="sms"} 0');
    expect(metrics).toContain('portcullis_outbox_oldest_pending_seconds 0');

    await d.enqueue(sms('+447700900789')); // still pending: never deleted
    expect(await d.deleteFinishedBefore(new Date(now.getTime() - 1000))).toBe(3);
    expect((await rows()).map((r) => r.status)).toEqual(['pending']);
  });
});

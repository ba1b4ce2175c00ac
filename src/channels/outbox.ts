/**
 * Delivery through a transactional outbox. `enqueue` writes the message (sealed) into the `outbox`
 * table, in the caller's transaction when one is given, so a message exists if and only if the change
 * that caused it was committed. A dispatcher on every node then sends what is due:
 *
 *   pending ──claim──▶ sending ──provider accepts──▶ sent
 *      ▲                  │
 *      └──retryable, attempts left (backoff)──┤
 *                         └──not retryable, or attempts used up──▶ dead (a dead letter, logged at error)
 *
 * A claim is one conditional UPDATE (status and time checked in its WHERE clause), so when several
 * nodes race for a row exactly one of them wins, on SQLite and PostgreSQL alike. A claim lapses after
 * four send timeouts. A lapsed claim means its node died (or lost its database) somewhere between
 * claiming and recording the result — perhaps after the provider accepted the message, perhaps before
 * it was handed over: nobody can tell. Such a message is **not** sent again blindly (issue #17: a
 * crash must not turn into a second text or email); it becomes a dead letter with the reason
 * `outcome-unknown`, logged at error and listed by `portcullis outbox --dead`. So each message is sent
 * at most once, and one whose outcome is not recorded is visibly dead-lettered; a person whose one-time
 * code never came asks for another.
 *
 *   sending ──claim lapsed──▶ dead (outcome-unknown)
 *
 * Nothing here logs a message's text or code, or a whole recipient (they are masked).
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/load.js';
import type { DerivedKeys } from '../crypto/keys.js';
import { openText, sealText } from '../crypto/seal.js';
import { uuidv7 } from '../crypto/uuid7.js';
import type { DatabaseSchema, OutboxTable } from '../store/schema.js';
import { retryDelayMs } from './backoff.js';
import { DeliveryError, isDeliveryError } from './errors.js';
import { checkMessage, maskRecipient } from './messages.js';
import { createDeliveryMetrics, type DeliveryMetrics, type DeliveryOutcome, type QueueState } from './metrics.js';
import { createProviders } from './providers/index.js';
import { OUTBOX_PROVIDER_NAME } from './providers/outbox.js';
import type { ChannelKind, OutgoingMessage, Provider } from './types.js';

export interface OutboxEntry {
  id: string;
  channel: ChannelKind;
  to: string;
  purpose: string;
  subject?: string;
  text: string;
  code?: string;
  status: OutboxTable['status'];
  createdAt: string;
}

/** A message given up, as an operator sees it: never its text or code, and the recipient masked. */
export interface DeadLetter {
  id: string;
  channel: ChannelKind;
  purpose: string;
  /** Masked (`+44 7••• ••• 123`, `a•••@example.org`). */
  to: string;
  provider: string;
  attempts: number;
  /** Why it was given up: an error code and status, or `outcome-unknown: …`. */
  lastError: string;
  createdAt: string;
}

export interface Delivery {
  /**
   * Durably queues a message (in the caller's transaction when one is given) and wakes this node's
   * dispatcher. Returns the outbox id. Throws a `message-invalid` DeliveryError for a malformed message.
   * Inside a transaction the message becomes visible when the transaction commits; the dispatcher's
   * next poll (within a second) sends it, or call `wake()` after committing.
   */
  enqueue(message: OutgoingMessage, trx?: Kysely<DatabaseSchema> | Transaction<DatabaseSchema>): Promise<string>;
  /** Sends everything due now, once; returns how many messages were attempted. Used by the loop and by tests. */
  dispatchDue(): Promise<number>;
  /** Starts the background loop: every `pollIntervalMs` (1 s), and at once after `enqueue` or `wake` on this node. */
  start(): void;
  /** Asks the running loop to dispatch now. */
  wake(): void;
  /** Stops the loop and waits for a dispatch in progress. `start` may be called again. */
  stop(): Promise<void>;
  /** Stops, then releases providers' connections (pooled SMTP). For shutdown. */
  close(): Promise<void>;
  /** The development outbox (messages for the `outbox` provider), decrypted, newest first. */
  listOutbox(options?: { limit?: number; to?: string }): Promise<OutboxEntry[]>;
  /** Dead letters of every provider, newest first (`portcullis outbox --dead`). */
  listDeadLetters(options?: { limit?: number }): Promise<DeadLetter[]>;
  /** Deletes sent and dead messages created before `before`; returns how many. The loop runs it hourly. */
  deleteFinishedBefore(before: Date): Promise<number>;
  /** The provider each channel uses now. */
  readonly providers: Readonly<Record<ChannelKind, Provider>>;
}

export interface DeliveryOptions {
  db: Kysely<DatabaseSchema>;
  keys: Pick<DerivedKeys, 'keyEncryption'>;
  config: Pick<Config, 'delivery'>;
  logger: Logger;
  metrics: { registry: Registry };
  clock: () => Date;
  /** Replaces the configured provider of some channels (tests; embedding). */
  providers?: Partial<Record<ChannelKind, Provider>>;
  /** How often the loop looks for due messages. Default 1000 ms. */
  pollIntervalMs?: number;
  /** How long one send may take before it is given up as `provider-timeout` (outcome unknown: not retried). Default DELIVERY_SEND_TIMEOUT (15 s). */
  sendTimeoutMs?: number;
  /** How long a claim lasts; it must comfortably exceed `sendTimeoutMs`. Default 4 × send timeout. */
  claimMs?: number;
  /** Messages taken per round. Default 50. */
  batchSize?: number;
  /** Messages sent at once per node. Default 8. */
  concurrency?: number;
  /** For backoff jitter; tests pin it. */
  random?: () => number;
}

/** `last_error` of a message whose claim lapsed: it may or may not have been delivered. */
export const OUTCOME_UNKNOWN = 'outcome-unknown: the node sending it stopped before recording the result; not sent again';

/** Sent and dead messages are kept this long (for support questions: "did my code go?"), then deleted. */
export const OUTBOX_RETENTION_MS = 30 * 24 * 3600 * 1000;
const HOUSEKEEPING_INTERVAL_MS = 3600 * 1000;

/** Binds a sealed payload to its row: it cannot be moved to another row and opened there. */
export function payloadAssociatedData(id: string): string {
  return `portcullis/outbox/${id}`;
}

/** What is stored: the message's own fields only, whatever else the caller's object carried. */
function payloadOf(message: OutgoingMessage): OutgoingMessage {
  return {
    channel: message.channel,
    to: message.to,
    purpose: message.purpose,
    ...(message.subject === undefined ? {} : { subject: message.subject }),
    text: message.text,
    ...(message.code === undefined ? {} : { code: message.code }),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeliveryError('provider-timeout', { detail: `no answer in ${ms} ms` })), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

type ClaimedRow = Pick<OutboxTable, 'id' | 'channel' | 'purpose' | 'recipient' | 'payload' | 'attempts'>;

export function createDelivery(options: DeliveryOptions): Delivery {
  const { db, logger, clock } = options;
  const key = options.keys.keyEncryption;
  const maxAttempts = options.config.delivery.maxAttempts;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const sendTimeoutMs = options.sendTimeoutMs ?? options.config.delivery.sendTimeoutMs ?? 15_000;
  const claimMs = options.claimMs ?? 4 * sendTimeoutMs;
  const batchSize = options.batchSize ?? 50;
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const random = options.random ?? Math.random;
  const log = logger.child({ component: 'delivery' });

  const providers: Record<ChannelKind, Provider> = {
    ...createProviders(options.config.delivery, { timeoutMs: sendTimeoutMs }),
    ...options.providers,
  };

  async function queueState(): Promise<QueueState> {
    const rows = await db
      .selectFrom('outbox')
      .select((eb) => ['channel', eb.fn.countAll().as('count'), eb.fn.min('created_at').as('oldest')])
      .where('status', 'in', ['pending', 'sending'])
      .groupBy('channel')
      .execute();
    const pending: Record<ChannelKind, number> = { sms: 0, voice: 0, email: 0 };
    let oldest: string | null = null;
    for (const row of rows) {
      pending[row.channel] = Number(row.count);
      if (row.oldest && (oldest === null || row.oldest < oldest)) oldest = row.oldest;
    }
    return { pending, oldestCreatedAt: oldest ? new Date(oldest) : null };
  }

  const metrics: DeliveryMetrics = createDeliveryMetrics(options.metrics.registry, {
    providers: { sms: providers.sms.name, voice: providers.voice.name, email: providers.email.name },
    queueState,
    clock,
  });
  const count = (channel: ChannelKind, provider: string, outcome: DeliveryOutcome) => metrics.messages.inc({ channel, provider, outcome });

  async function enqueue(message: OutgoingMessage, trx?: Kysely<DatabaseSchema> | Transaction<DatabaseSchema>): Promise<string> {
    checkMessage(message);
    const at = clock();
    // Time-ordered, so messages queued in the same millisecond still list in the order they were queued.
    const id = uuidv7(at.getTime());
    const now = at.toISOString();
    await (trx ?? db)
      .insertInto('outbox')
      .values({
        id,
        channel: message.channel,
        purpose: message.purpose,
        recipient: message.to,
        payload: sealText(key, JSON.stringify(payloadOf(message)), payloadAssociatedData(id)),
        status: 'pending',
        attempts: 0,
        next_attempt_at: now,
        claimed_until: null,
        claim_token: null,
        last_error: null,
        provider: providers[message.channel].name,
        provider_message_id: null,
        created_at: now,
        sent_at: null,
      })
      .execute();
    log.debug({ outboxId: id, channel: message.channel, purpose: message.purpose, to: maskRecipient(message) }, 'message queued');
    wake();
    return id;
  }

  /** The claim: one UPDATE whose WHERE clause re-checks that the row is still due, so one racer wins. */
  async function claim(id: string, token: string): Promise<ClaimedRow | undefined> {
    const now = clock();
    const at = now.toISOString();
    return db
      .updateTable('outbox')
      .set((eb) => ({
        status: 'sending',
        claimed_until: new Date(now.getTime() + claimMs).toISOString(),
        claim_token: token,
        // Counted at the claim, so a message that kills its dispatcher every time still runs out of attempts.
        attempts: eb('attempts', '+', 1),
      }))
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', at)
      .returning(['id', 'channel', 'purpose', 'recipient', 'payload', 'attempts'])
      .executeTakeFirst();
  }

  async function finish(row: ClaimedRow, token: string, changes: Partial<Omit<OutboxTable, 'id'>>): Promise<boolean> {
    const result = await db
      .updateTable('outbox')
      .set({ ...changes, claimed_until: null, claim_token: null })
      .where('id', '=', row.id)
      .where('claim_token', '=', token)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** A send that finished after its claim lapsed: the dead letter "outcome unknown" learns the outcome. */
  async function recordLateSend(row: ClaimedRow, providerName: string, providerMessageId: string | null): Promise<boolean> {
    const result = await db
      .updateTable('outbox')
      .set({ status: 'sent', sent_at: clock().toISOString(), provider: providerName, provider_message_id: providerMessageId, last_error: null })
      .where('id', '=', row.id)
      .where('status', '=', 'dead')
      .where('last_error', '=', OUTCOME_UNKNOWN)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  function readPayload(row: ClaimedRow): OutgoingMessage {
    if (row.payload === null) throw new DeliveryError('payload-unreadable', { detail: 'no payload' });
    try {
      return JSON.parse(openText(key, row.payload, payloadAssociatedData(row.id))) as OutgoingMessage;
    } catch {
      throw new DeliveryError('payload-unreadable');
    }
  }

  /** Claims and sends one message; false when another dispatcher had it first. */
  async function dispatchOne(id: string): Promise<boolean> {
    const token = randomUUID();
    const row = await claim(id, token);
    if (!row) return false;
    const provider = providers[row.channel];
    const attempts = Number(row.attempts);
    const fields = { outboxId: row.id, channel: row.channel, purpose: row.purpose, provider: provider.name, to: maskRecipient({ channel: row.channel, to: row.recipient }), attempts };
    const keep = (payload: string | null) => (provider.retainsContent ? payload : null);

    let result: { providerMessageId?: string } | undefined;
    let failure: DeliveryError | undefined;
    try {
      if (attempts > maxAttempts) throw new DeliveryError('claims-exhausted');
      result = await withTimeout(provider.send(readPayload(row), { reference: row.id }), sendTimeoutMs);
    } catch (error) {
      failure = isDeliveryError(error) ? error : new DeliveryError('unexpected', { detail: error instanceof Error ? error.name : typeof error });
      // An unexpected error's message may quote what it was given: only at debug level.
      if (!isDeliveryError(error)) log.debug({ ...fields, err: error }, 'unexpected error from a provider');
    }

    // Recorded outside the try: a database failure here must not be mistaken for a failed send (and retried).
    if (!failure) {
      const recorded = await finish(row, token, {
        status: 'sent',
        sent_at: clock().toISOString(),
        provider: provider.name,
        provider_message_id: result?.providerMessageId ?? null,
        last_error: null,
        payload: keep(row.payload),
      });
      count(row.channel, provider.name, 'sent');
      if (recorded) log.info(fields, 'message sent');
      else if (await recordLateSend(row, provider.name, result?.providerMessageId ?? null)) {
        log.warn(fields, 'message sent after its claim had lapsed: it was marked outcome unknown, now sent (it was not sent again)');
      } else log.warn(fields, 'message sent, but its claim had lapsed and its row changed meanwhile');
      return true;
    }

    if (failure.retryable && attempts < maxAttempts) {
      const delay = retryDelayMs(attempts, random);
      await finish(row, token, {
        status: 'pending',
        next_attempt_at: new Date(clock().getTime() + delay).toISOString(),
        provider: provider.name,
        last_error: failure.message,
      });
      count(row.channel, provider.name, 'retried');
      log.warn({ ...fields, error: failure.message, retryInMs: delay }, 'message not sent; will retry');
    } else {
      await finish(row, token, { status: 'dead', provider: provider.name, last_error: failure.message, payload: keep(row.payload) });
      count(row.channel, provider.name, 'dead');
      log.error({ ...fields, error: failure.message }, 'message given up (dead letter)');
    }
    return true;
  }

  /**
   * Lapsed claims become dead letters whose outcome is unknown (see the top of this file): one UPDATE,
   * so of several nodes only one records each. The payload is wiped as for any dead letter of a real
   * provider. Returns how many.
   */
  async function deadLetterLapsedClaims(at: string): Promise<number> {
    const rows = await db
      .updateTable('outbox')
      .set((eb) => ({
        status: 'dead',
        last_error: OUTCOME_UNKNOWN,
        claimed_until: null,
        claim_token: null,
        payload: eb.case().when('provider', '=', OUTBOX_PROVIDER_NAME).then(eb.ref('payload')).else(null).end(),
      }))
      .where('status', '=', 'sending')
      .where('claimed_until', '<', at)
      .returning(['id', 'channel', 'purpose', 'recipient', 'provider', 'attempts'])
      .execute();
    for (const row of rows) {
      count(row.channel, row.provider, 'dead');
      log.error(
        { outboxId: row.id, channel: row.channel, purpose: row.purpose, provider: row.provider, to: maskRecipient({ channel: row.channel, to: row.recipient }), attempts: Number(row.attempts), error: OUTCOME_UNKNOWN },
        'message given up (dead letter): its sender stopped mid-send, so whether it went is unknown; it is not sent again',
      );
    }
    return rows.length;
  }

  async function dispatchRound(): Promise<{ due: number; attempted: number }> {
    const at = clock().toISOString();
    await deadLetterLapsedClaims(at);
    const due = await db
      .selectFrom('outbox')
      .select('id')
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', at)
      .orderBy('next_attempt_at')
      .orderBy('id')
      .limit(batchSize)
      .execute();
    let next = 0;
    let attempted = 0;
    const worker = async () => {
      while (next < due.length) {
        const { id } = due[next++]!;
        try {
          if (await dispatchOne(id)) attempted += 1;
        } catch (error) {
          // The database failed mid-way: the claim lapses and the message is tried again.
          log.warn({ outboxId: id, err: (error as Error).message }, 'dispatching a message failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, due.length) }, worker));
    return { due: due.length, attempted };
  }

  async function deleteFinishedBefore(before: Date): Promise<number> {
    const result = await db
      .deleteFrom('outbox')
      .where('status', 'in', ['sent', 'dead'])
      .where('created_at', '<', before.toISOString())
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  // The loop. One round at a time per node; a wake during a round asks for another straight after.
  let running = false;
  let timer: NodeJS.Timeout | null = null;
  let inFlight: Promise<void> | null = null;
  let again = false;
  let lastHousekeeping = 0;

  function schedule(ms: number): void {
    if (!running) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, ms);
    timer.unref();
  }

  function run(): void {
    timer = null;
    if (!running) return;
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = (async () => {
      do {
        again = false;
        try {
          const { due } = await dispatchRound();
          if (due >= batchSize) again = true;
        } catch (error) {
          log.warn({ err: (error as Error).message }, 'delivery round failed');
        }
        if (Date.now() - lastHousekeeping >= HOUSEKEEPING_INTERVAL_MS) {
          lastHousekeeping = Date.now();
          await deleteFinishedBefore(new Date(clock().getTime() - OUTBOX_RETENTION_MS)).catch((error: unknown) =>
            log.warn({ err: (error as Error).message }, 'outbox housekeeping failed'),
          );
        }
      } while (again && running);
    })().finally(() => {
      inFlight = null;
      schedule(pollIntervalMs);
    });
  }

  function wake(): void {
    if (running && !inFlight) schedule(0);
    else if (running) again = true;
  }

  async function stop(): Promise<void> {
    running = false;
    if (timer) clearTimeout(timer);
    timer = null;
    await inFlight;
  }

  return {
    providers,
    enqueue,
    async dispatchDue() {
      return (await dispatchRound()).attempted;
    },
    start() {
      if (running) return;
      running = true;
      schedule(0);
    },
    wake,
    stop,
    async close() {
      await stop();
      for (const provider of new Set(Object.values(providers))) await provider.close?.();
    },
    async listOutbox(listOptions = {}) {
      const limit = Math.min(500, Math.max(1, Math.trunc(listOptions.limit ?? 20)));
      let query = db
        .selectFrom('outbox')
        .select(['id', 'channel', 'recipient', 'purpose', 'payload', 'status', 'created_at'])
        .where('provider', '=', OUTBOX_PROVIDER_NAME)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit);
      const to = listOptions.to?.trim();
      if (to) query = query.where((eb) => eb(eb.fn('lower', ['recipient']), '=', to.toLowerCase()));
      const rows = await query.execute();
      return rows.map((row) => {
        let message: Partial<OutgoingMessage> = {};
        try {
          if (row.payload) message = JSON.parse(openText(key, row.payload, payloadAssociatedData(row.id))) as OutgoingMessage;
        } catch {
          message = { text: '(unreadable: sealed under another PORTCULLIS_SECRET)' };
        }
        return {
          id: row.id,
          channel: row.channel,
          to: row.recipient,
          purpose: row.purpose,
          ...(message.subject === undefined ? {} : { subject: message.subject }),
          text: message.text ?? '',
          ...(message.code === undefined ? {} : { code: message.code }),
          status: row.status,
          createdAt: row.created_at,
        };
      });
    },
    async listDeadLetters(listOptions = {}) {
      const limit = Math.min(500, Math.max(1, Math.trunc(listOptions.limit ?? 20)));
      const rows = await db
        .selectFrom('outbox')
        .select(['id', 'channel', 'purpose', 'recipient', 'provider', 'attempts', 'last_error', 'created_at'])
        .where('status', '=', 'dead')
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      return rows.map((row) => ({
        id: row.id,
        channel: row.channel,
        purpose: row.purpose,
        to: maskRecipient({ channel: row.channel, to: row.recipient }),
        provider: row.provider,
        attempts: Number(row.attempts),
        lastError: row.last_error ?? '',
        createdAt: row.created_at,
      }));
    },
    deleteFinishedBefore,
  };
}

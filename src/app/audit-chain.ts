/**
 * The tamper-evident audit log (issue #15 point 5; docs/operations.md#the-audit-log).
 *
 * Appending an audit event stays one INSERT (sign-in's write path is measured). A **sealer** then chains
 * the events: for each event not yet sealed it appends a row to `audit_chain` with the next seq, the
 * previous entry's MAC and its own MAC over both and the whole event (src/crypto/audit-chain-mac.ts),
 * under a key derived from PORTCULLIS_SECRET. `portcullis serve` seals every second; `audit verify` and a
 * graceful shutdown seal once. Now and then (AUDIT_CHECKPOINT_INTERVAL) the chain's head is checkpointed,
 * in `audit_checkpoints` and as an `audit.checkpoint` log line that log shipping keeps outside the database.
 *
 * **Which events the sealer takes.** On PostgreSQL identity ids are handed out at insert and committed in
 * any order, so "every id above the last sealed one" would skip an event whose transaction committed
 * late. The sealer instead anti-joins: events with no chain row. Each second it looks only at ids above
 * the highest sealed one less FAST_ID_MARGIN; at start-up, every FULL_EVERY runs, at shutdown and in
 * verify it looks at every event from the late-commit floor on. The chain's order is the seal order.
 *
 * **The late-commit floor.** An unsealed event much older than the chain's head cannot be one Portcullis
 * just appended: it was written into the table directly (backdated). The sealer leaves such an event out,
 * and verify names it. "Much older" is LATE_COMMIT_MARGIN_SECONDS before the head's event time (or its seal
 * time, if earlier), which covers slow transactions and clocks that differ between nodes.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import { chainMac, GENESIS_MAC } from '../crypto/audit-chain-mac.js';
import type { DerivedKeys } from '../crypto/keys.js';
import type { Store } from '../store/index.js';
import { createAuditChainRepository, type AuditChainRepository, type ChainHeadRow, type CheckpointRow } from '../store/repositories/audit-chain.js';
import type { Clock } from './context.js';

/** Events sealed per transaction. */
export const SEAL_BATCH = 1000;
/** How far below the highest sealed id the every-second run looks for events that committed late. */
export const FAST_ID_MARGIN = 200;
/** One run in this many (each FULL_EVERY seconds in `serve`) looks at every event from the floor on. */
export const FULL_EVERY = 30;
/** How much older than the chain's head an unsealed event may be and still be sealed (see above). */
export const LATE_COMMIT_MARGIN_SECONDS = 300;
/** Problems listed by verify before it only counts them. */
const MAX_PROBLEMS = 20;

export interface AuditChainContext {
  store: Pick<Store, 'database' | 'dialect'>;
  keys: Pick<DerivedKeys, 'auditChain'>;
  clock: Clock;
  logger: Logger;
  config: Pick<Config, 'auditCheckpointSeconds'>;
}

export interface ChainHead {
  seq: number;
  mac: string;
}

export type AuditCheckpoint = CheckpointRow;

export interface SealResult {
  /** False when another node was sealing (PostgreSQL): nothing was done. */
  locked: boolean;
  sealed: number;
  head: ChainHead | null;
  /** The checkpoint written by this run, if any. */
  checkpoint: AuditCheckpoint | null;
}

export interface SealOptions {
  /** Look at every event from the late-commit floor on, not only at ids near the head. */
  full?: boolean;
  /** 'due': when AUDIT_CHECKPOINT_INTERVAL has passed; 'now': whenever the head moved; 'no'. */
  checkpoint?: 'due' | 'now' | 'no';
  /** On PostgreSQL, wait (up to this long) for another node's sealing to finish instead of leaving it to it. */
  waitForLockMs?: number;
}

const repositories = new WeakMap<object, AuditChainRepository>();
function chainOf(ctx: AuditChainContext): AuditChainRepository {
  let repository = repositories.get(ctx.store.database);
  if (!repository) {
    repository = createAuditChainRepository(ctx.store.database.db, ctx.store.dialect);
    repositories.set(ctx.store.database, repository);
  }
  return repository;
}

/** The oldest event time the sealer still seals, given the chain's head (null: no floor yet). */
export function lateCommitFloor(head: Pick<ChainHeadRow, 'eventAt' | 'sealedAt'> | null): string | null {
  if (!head) return null;
  const reference = head.eventAt && head.eventAt < head.sealedAt ? head.eventAt : head.sealedAt;
  const time = Date.parse(reference);
  if (Number.isNaN(time)) return null;
  return new Date(time - LATE_COMMIT_MARGIN_SECONDS * 1000).toISOString();
}

function logCheckpoint(logger: Logger, checkpoint: AuditCheckpoint): void {
  // Kept by log shipping outside the database: `audit verify --checkpoint SEQ:MAC` checks the chain against it.
  logger.info({ event: 'audit.checkpoint', seq: checkpoint.seq, mac: checkpoint.mac, at: checkpoint.at }, 'audit.checkpoint');
}

/** Seals every event not yet in the chain, in batches of SEAL_BATCH, each batch one transaction. */
export async function sealAuditLog(ctx: AuditChainContext, options: SealOptions = {}): Promise<SealResult> {
  const chain = chainOf(ctx);
  const key = ctx.keys.auditChain;
  let sealed = 0;
  let head: ChainHead | null = null;
  let checkpoint: AuditCheckpoint | null = null;
  // The floor is fixed at the run's start: a backlog sealed in this run must not raise it for itself.
  let floor: string | null | undefined;
  // Ids up to here were looked at by an earlier batch of this run (a backlog is walked once, not per batch).
  let scannedTo = 0;
  const deadline = Date.now() + (options.waitForLockMs ?? 0);
  for (;;) {
    const result = await chain.underSealLock(async (db) => {
      const current = await chain.head(db);
      if (floor === undefined) floor = lateCommitFloor(current);
      const afterId = Math.max(scannedTo, options.full || !current ? 0 : current.maxEventId - FAST_ID_MARGIN);
      const found = await chain.unsealed(db, { afterId, atFloor: floor, limit: SEAL_BATCH });
      const events = found.events;
      const sealedAt = ctx.clock().toISOString();
      let seq = current?.seq ?? 0;
      let prevMac = current?.mac ?? GENESIS_MAC;
      const entries = events.map((event) => {
        seq += 1;
        const mac = chainMac(key, prevMac, seq, event);
        const entry = { seq, eventId: event.id, prevMac, mac, sealedAt };
        prevMac = mac;
        return entry;
      });
      await chain.append(db, entries);
      const newHead = seq > 0 ? { seq, mac: prevMac } : null;
      let written: AuditCheckpoint | null = null;
      const last = events.length < SEAL_BATCH;
      if (last && newHead && options.checkpoint !== 'no') {
        const previous = await chain.latestCheckpoint(db);
        const due =
          options.checkpoint === 'now' || !previous || Date.parse(sealedAt) - Date.parse(previous.at) >= ctx.config.auditCheckpointSeconds * 1000;
        if (due && previous?.seq !== newHead.seq) {
          written = { seq: newHead.seq, mac: newHead.mac, at: sealedAt };
          await chain.addCheckpoint(db, written);
        }
      }
      return { count: entries.length, head: newHead, written, last, scannedTo: found.scannedTo };
    });
    if (!result.locked) {
      if (Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      return { locked: sealed > 0, sealed, head, checkpoint };
    }
    sealed += result.value.count;
    scannedTo = result.value.scannedTo;
    head = result.value.head;
    if (result.value.written) {
      checkpoint = result.value.written;
      logCheckpoint(ctx.logger, checkpoint);
    }
    if (result.value.last) return { locked: true, sealed, head, checkpoint };
  }
}

export interface AuditSealer {
  /** Stops the timer, waits for a run in progress, then seals once more and checkpoints the head. */
  stop(): Promise<void>;
}

/** Seals every `intervalMs` (one run at a time; a failed run is logged and the next one tries again). */
export function startAuditSealer(ctx: AuditChainContext, options: { intervalMs?: number } = {}): AuditSealer {
  let running: Promise<void> | null = null;
  let runs = 0;
  let stopped = false;
  const run = (seal: SealOptions): Promise<void> =>
    sealAuditLog(ctx, seal).then(
      () => undefined,
      (error: unknown) => ctx.logger.warn({ err: (error as Error).message }, 'sealing the audit log failed'),
    );
  const tick = () => {
    if (running || stopped) return;
    const full = runs % FULL_EVERY === 0;
    runs += 1;
    running = run({ full, checkpoint: 'due' }).finally(() => {
      running = null;
    });
  };
  const timer = setInterval(tick, options.intervalMs ?? 1000);
  timer.unref();
  tick();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await run({ full: true, checkpoint: 'now' });
    },
  };
}

export type AuditProblemKind = 'entry-missing' | 'out-of-order' | 'event-missing' | 'event-changed' | 'checkpoint-off-chain' | 'event-unsealed';

export interface AuditProblem {
  kind: AuditProblemKind;
  /** The chain entry concerned (null for an event that was never sealed). */
  seq: number | null;
  eventId: number | null;
  message: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Entries in the chain. */
  entries: number;
  /** Rows in audit_events. */
  events: number;
  /** Events sealed by this verification's own sealing run. */
  sealed: number;
  /** Events that committed after that run, too recent to judge: the next run seals them. */
  pending: number;
  head: ChainHead | null;
  lastCheckpoint: AuditCheckpoint | null;
  /** The first MAX_PROBLEMS problems, in chain order; `problemCount` counts them all. */
  problems: AuditProblem[];
  problemCount: number;
}

const short = (mac: string) => mac.slice(0, 16);

/**
 * Seals, then checks the whole chain in seq order, a page at a time: the entries are contiguous from 1,
 * each follows the one before (prev_mac), each one's event is there and matches its MAC; every checkpoint
 * (and each of `expected`, from the operator's log copies) is on the chain; every event is in the chain.
 * When all holds, writes a checkpoint of the verified head (unless `checkpoint: false`).
 */
export async function verifyAuditLog(
  ctx: AuditChainContext,
  options: { expected?: ChainHead[]; checkpoint?: boolean; pageSize?: number } = {},
): Promise<AuditVerification> {
  const chain = chainOf(ctx);
  const key = ctx.keys.auditChain;
  const pageSize = options.pageSize ?? SEAL_BATCH;
  const { sealed } = await sealAuditLog(ctx, { full: true, checkpoint: 'no', waitForLockMs: 5000 });

  const problems: AuditProblem[] = [];
  let problemCount = 0;
  const report = (problem: AuditProblem) => {
    problemCount += 1;
    if (problems.length < MAX_PROBLEMS) problems.push(problem);
  };

  let expectedSeq = 1;
  let prevMac = GENESIS_MAC;
  let entries = 0;
  let eventsMissing = 0;
  let head: ChainHead | null = null;
  for (let after = 0; ; ) {
    const page = await chain.entries(after, pageSize);
    for (const entry of page) {
      const gap = entry.seq !== expectedSeq;
      if (gap) {
        const range = entry.seq - 1 > expectedSeq ? `Entries ${expectedSeq} to ${entry.seq - 1} are` : `Entry ${expectedSeq} is`;
        report({ kind: 'entry-missing', seq: expectedSeq, eventId: null, message: `${range} missing from the chain: removed.` });
      } else if (entry.prevMac !== prevMac) {
        report({
          kind: 'out-of-order',
          seq: entry.seq,
          eventId: entry.eventId,
          message: `Entry ${entry.seq} (event ${entry.eventId}) does not follow entry ${entry.seq - 1}: entries were reordered, or one was replaced.`,
        });
      }
      if (!entry.event) {
        eventsMissing += 1;
        report({ kind: 'event-missing', seq: entry.seq, eventId: entry.eventId, message: `Entry ${entry.seq}: event ${entry.eventId} is gone from audit_events: deleted.` });
      } else if (chainMac(key, entry.prevMac, entry.seq, entry.event) !== entry.mac) {
        report({
          kind: 'event-changed',
          seq: entry.seq,
          eventId: entry.eventId,
          message: `Entry ${entry.seq}: event ${entry.eventId} does not match its MAC: it was changed after it was sealed (edited, or swapped with another).`,
        });
      }
      prevMac = entry.mac;
      expectedSeq = entry.seq + 1;
      entries += 1;
      head = { seq: entry.seq, mac: entry.mac };
    }
    if (page.length < pageSize) break;
    after = page[page.length - 1]!.seq;
  }

  const headText = head ? `entry ${head.seq}` : 'no entry';
  for (const checkpoint of await chain.checkpointsOffChain(MAX_PROBLEMS)) {
    report({
      kind: 'checkpoint-off-chain',
      seq: checkpoint.seq,
      eventId: null,
      message:
        checkpoint.chainMac === null
          ? `The checkpoint of ${checkpoint.at} recorded entry ${checkpoint.seq} (${short(checkpoint.mac)}…), but the chain ends at ${headText}: entries after it were removed.`
          : `The checkpoint of ${checkpoint.at} recorded entry ${checkpoint.seq} as ${short(checkpoint.mac)}…, but the chain holds ${short(checkpoint.chainMac)}… there: the chain was rewritten.`,
    });
  }
  for (const expected of options.expected ?? []) {
    const mac = await chain.entryMac(expected.seq);
    if (mac === null || !mac.startsWith(expected.mac.toLowerCase())) {
      report({
        kind: 'checkpoint-off-chain',
        seq: expected.seq,
        eventId: null,
        message:
          mac === null
            ? `The checkpoint given recorded entry ${expected.seq}, but the chain ends at ${headText}: entries after it were removed.`
            : `The checkpoint given recorded entry ${expected.seq} as ${short(expected.mac)}…, but the chain holds ${short(mac)}… there: the chain was rewritten.`,
      });
    }
  }

  // Every event must be in the chain. Only when some are not (more events than entries with an event)
  // are they looked for, a page at a time.
  const events = await chain.countEvents();
  let pending = 0;
  if (events > entries - eventsMissing) {
    // The floor the sealer used: an unsealed event older than it was never going to be sealed.
    const floor = lateCommitFloor(await chain.head());
    for (let after = 0; ; ) {
      const { events: page } = await chain.unsealed(ctx.store.database.db, { afterId: after, atFloor: null, limit: pageSize });
      for (const event of page) {
        if (floor !== null && event.at < floor) {
          report({
            kind: 'event-unsealed',
            seq: null,
            eventId: event.id,
            message: `Event ${event.id} (${event.type}, ${event.at}) is not in the chain and is older than the chain's head: it was written into audit_events directly.`,
          });
        } else {
          pending += 1;
        }
      }
      if (page.length < pageSize) break;
      after = page[page.length - 1]!.id;
    }
  }

  let lastCheckpoint = await chain.latestCheckpoint();
  const ok = problemCount === 0;
  if (ok && head && options.checkpoint !== false && lastCheckpoint?.seq !== head.seq) {
    lastCheckpoint = { seq: head.seq, mac: head.mac, at: ctx.clock().toISOString() };
    await chain.addCheckpoint(ctx.store.database.db, lastCheckpoint);
    logCheckpoint(ctx.logger, lastCheckpoint);
  }
  return { ok, entries, events, sealed, pending, head, lastCheckpoint, problems, problemCount };
}

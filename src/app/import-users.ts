/**
 * Bulk import of users from CSV. Columns: email, name, organisation and an optional roles column
 * ("helpdesk;local-admin:Other Org" — a role, optionally ":" and an organisation). A bad row is reported
 * with its line number and nothing of it is written, while good rows are imported. Imported users have no
 * password: each gets a one-time activation link.
 *
 * Built for a national directory (issue #18 point 7: 1.5 million rows in under two minutes, memory flat;
 * figures in docs/performance.md#bulk-import-benchimport). Rows are read from the stream and validated in
 * memory by the rules `insertUser` applies (src/app/directory.ts), with organisations and roles looked up
 * once each; the good rows of a batch are then written in one transaction with multi-row INSERTs — the
 * user with its policy profile, its role assignments, its activation token and its `user.created` audit
 * event, exactly the rows `insertUser` writes. A batch is all or nothing, so a row is never half written.
 * An email already in the database is found by the users INSERT itself (ON CONFLICT DO NOTHING on the
 * unique index: another writer's row added meanwhile included), and nothing else of that row is written;
 * one twice in the file is caught in memory, the first occurrence winning. If a batch still fails on a
 * constraint, it is rolled back and written row by row through `insertUser`, so only the bad row fails.
 *
 * Memory stays flat: the CSV stream is not read further while batches are being written (the async
 * iterator's back-pressure), so at most `parallel` + 1 batches are held, whatever the file's size.
 */
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { CompiledQuery, type Transaction } from 'kysely';
import type { Actor } from '../core/audit.js';
import { checkRoleGrant, DEFAULT_ROLE, isValidDisplayName, type RoleDefinition } from '../core/directory.js';
import { isValidEmail, normaliseEmail } from '../core/email.js';
import { isPortcullisError, PortcullisError } from '../core/errors.js';
import { profileKey } from '../core/policy/profile.js';
import { hashToken, randomToken } from '../crypto/tokens.js';
import { uuidv7 } from '../crypto/uuid7.js';
import type { Dialect } from '../store/database.js';
import { normaliseOrganisationName } from '../store/repositories/organisations.js';
import type { DatabaseSchema, OrganisationRow } from '../store/schema.js';
import type { AppContext } from './context.js';
import { insertUser, type NewUserInput, type RoleRequest } from './directory.js';

export const IMPORT_COLUMNS = ['email', 'name', 'organisation'] as const;

/** Rows per transaction: big enough that a statement's round trip is shared by many rows, small enough to hold. */
export const DEFAULT_IMPORT_BATCH = 10_000;

export interface ImportedRow {
  line: number;
  email: string;
  activationUrl: string | null;
}

export interface FailedRow {
  line: number;
  email: string | null;
  message: string;
}

export interface ImportReport {
  imported: number;
  failed: FailedRow[];
}

export interface ImportOptions {
  /** Rows read before a batch is written (default DEFAULT_IMPORT_BATCH). */
  batchSize?: number;
  /** Batches written at once, each in its own transaction (default 2 on PostgreSQL, 1 on SQLite's one connection). */
  parallel?: number;
}

export class ImportFormatError extends Error {}

export function parseRoleList(text: string | undefined): RoleRequest[] {
  if (!text) return [];
  const byRole = new Map<string, string[]>();
  for (const part of text.split(';')) {
    const item = part.trim();
    if (!item) continue;
    const colon = item.indexOf(':');
    const role = (colon === -1 ? item : item.slice(0, colon)).trim().toLowerCase();
    const organisation = colon === -1 ? null : item.slice(colon + 1).trim();
    const list = byRole.get(role) ?? [];
    if (organisation) list.push(organisation);
    byRole.set(role, list);
  }
  return [...byRole].map(([role, organisations]) => ({ role, organisations }));
}

/** A row that passed validation: what `insertUser` would write for it. */
interface ValidRow {
  line: number;
  input: NewUserInput;
  email: string;
  normalised: string;
  displayName: string;
  organisation: OrganisationRow;
  grants: Array<{ role: RoleDefinition; scopes: string[] }>;
}

type Entry = { line: number; valid: ValidRow } | { line: number; failed: FailedRow };

/** Organisations and roles by name, each looked up once per import (a miss is remembered too). */
function createLookups(ctx: AppContext) {
  const organisations = new Map<string, OrganisationRow | null>();
  const roles = new Map<string, RoleDefinition | null>();
  return {
    async organisation(name: string): Promise<OrganisationRow> {
      const key = normaliseOrganisationName(name);
      let row = organisations.get(key);
      if (row === undefined) organisations.set(key, (row = (await ctx.store.organisations.findByName(name)) ?? null));
      if (!row) throw new PortcullisError('organisation-not-found', { name: name.trim() });
      return row;
    },
    async role(name: string): Promise<RoleDefinition> {
      const key = name.trim().toLowerCase();
      let role = roles.get(key);
      if (role === undefined) roles.set(key, (role = (await ctx.store.roles.find(name)) ?? null));
      if (!role) throw new PortcullisError('role-not-found', { role: name });
      return role;
    },
  };
}

/** The checks of `insertUser` (src/app/directory.ts), in its order, so a bad row gets the same message. */
async function validateRow(lookups: ReturnType<typeof createLookups>, line: number, input: NewUserInput): Promise<ValidRow> {
  const email = input.email.trim();
  if (!isValidEmail(email)) throw new PortcullisError('email-invalid');
  if (!isValidDisplayName(input.displayName)) throw new PortcullisError('display-name-invalid');
  const organisation = await lookups.organisation(input.organisation);
  const grants: ValidRow['grants'] = [];
  const requests = input.roles.some((r) => r.role === DEFAULT_ROLE) ? input.roles : [{ role: DEFAULT_ROLE, organisations: [] }, ...input.roles];
  for (const request of requests) {
    const role = await lookups.role(request.role);
    const ids: string[] = [];
    for (const name of request.organisations) ids.push((await lookups.organisation(name)).id);
    if (ids.length === 0 && role.scope === 'required') ids.push(organisation.id);
    const check = checkRoleGrant(role, ids);
    if (!check.ok) throw new PortcullisError(check.code, check.params);
    grants.push({ role, scopes: check.scopes });
  }
  return { line, input, email, normalised: normaliseEmail(email), displayName: input.displayName.trim(), organisation, grants };
}

// ── Multi-row statements ─────────────────────────────────────────────────────────────────────────────

/** SQLite's default SQLITE_MAX_VARIABLE_NUMBER since 3.32; PostgreSQL allows 65,535. */
const MAX_PARAMETERS = 32_766;

const USER_COLUMNS = [
  'id',
  'email',
  'email_normalised',
  'display_name',
  'organisation_id',
  'status',
  'password_hash',
  'password_changed_at',
  'created_at',
  'updated_at',
  'default_method_id',
  'push_blocked_at',
  'policy_profile',
] as const;
const ROLE_COLUMNS = ['user_id', 'role_name', 'scope', 'created_at'] as const;
const TOKEN_COLUMNS = ['id', 'user_id', 'purpose', 'created_at', 'expires_at', 'used_at'] as const;
const AUDIT_COLUMNS = ['at', 'type', 'actor_type', 'actor_id', 'subject_user_id', 'ip', 'details'] as const;

/**
 * Statements are written out rather than built with Kysely's query builder, which would build and compile
 * a tree of tens of thousands of nodes for every batch. The text depends only on the table and the row
 * count, so SQLite's statement cache (src/store/database.ts) reuses it batch after batch.
 */
const statementTexts = new Map<string, string>();
function insertText(dialect: Dialect, table: string, columns: readonly string[], rows: number, suffix: string): string {
  const key = `${dialect}:${table}:${rows}:${suffix}`;
  let text = statementTexts.get(key);
  if (!text) {
    let n = 0;
    const tuple = () => `(${columns.map(() => (dialect === 'postgres' ? `$${++n}` : '?')).join(', ')})`;
    text = `insert into "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) values ${Array.from({ length: rows }, tuple).join(', ')}${suffix}`;
    statementTexts.set(key, text);
  }
  return text;
}

/**
 * `values`: the rows' values one after another, `columns.length` to a row. Written in statements of as many
 * rows as the parameter limit allows, and the rest in statements of a power of two rows each (1,000 rows as
 * 512 + 256 + 128 + 64 + 32 + 8), so that a table has at most fourteen statement texts whatever its batches'
 * sizes: the texts are long, and SQLite keeps each one's prepared statement.
 */
async function insertRows<R = never>(trx: Transaction<DatabaseSchema>, dialect: Dialect, table: string, columns: readonly string[], values: unknown[], suffix = ''): Promise<R[]> {
  const width = columns.length;
  if (dialect === 'postgres') {
    // One array per column: one short statement for the whole batch, which PostgreSQL parses and plans
    // in a fraction of the time a VALUES list of thousands of rows takes. Every column written is text.
    const arrays = columns.map((_, j) => {
      const column: unknown[] = [];
      for (let i = j; i < values.length; i += width) column.push(values[i]);
      return column;
    });
    const text = `insert into "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) select * from unnest(${columns.map((_, j) => `$${j + 1}::text[]`).join(', ')})${suffix}`;
    return (await trx.executeQuery<R>(CompiledQuery.raw(text, arrays))).rows;
  }
  const full = Math.floor(MAX_PARAMETERS / width);
  const returned: R[] = [];
  let from = 0;
  let left = values.length / width;
  while (left > 0) {
    const rows = left >= full ? full : 2 ** Math.floor(Math.log2(left));
    const chunk = rows * width === values.length ? values : values.slice(from * width, (from + rows) * width);
    for (const row of (await trx.executeQuery<R>(CompiledQuery.raw(insertText(dialect, table, columns, rows, suffix), chunk))).rows) returned.push(row);
    from += rows;
    left -= rows;
  }
  return returned;
}

/**
 * SQLite's settings for the length of an import (src/store/database.ts sets the connection's). The email and
 * token indexes take their keys in no order, so each batch dirties pages all over them: about 1.5 pages a
 * row at a million users, each written to the WAL at commit and again into the database file at the next
 * checkpoint, which by default follows every commit (the WAL is past 1,000 pages). Checkpointing once the WAL
 * holds 256 MiB instead writes a page rewritten by several batches into the file once. Both are bounds, so
 * memory and the WAL stay flat; a reader that holds the WAL open meanwhile only delays the checkpoint.
 */
const IMPORT_SQLITE_PRAGMAS = { wal_autocheckpoint: 65_536 } as const;

/** Applies IMPORT_SQLITE_PRAGMAS (SQLite only); the function that puts the connection's back. */
async function tuneSqliteForImport(ctx: AppContext): Promise<() => Promise<void>> {
  if (ctx.store.dialect !== 'sqlite') return async () => undefined;
  const db = ctx.store.database.db;
  const before: Array<[string, unknown]> = [];
  for (const [name, value] of Object.entries(IMPORT_SQLITE_PRAGMAS)) {
    const { rows } = await db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(`pragma ${name}`));
    before.push([name, Object.values(rows[0] ?? {})[0]]);
    await db.executeQuery(CompiledQuery.raw(`pragma ${name} = ${value}`));
  }
  return async () => {
    for (const [name, value] of before) if (typeof value === 'number') await db.executeQuery(CompiledQuery.raw(`pragma ${name} = ${value}`));
  };
}

/** The audit log's actor columns, as the audit repository writes them (src/store/repositories/audit.ts). */
function actorColumns(actor: Actor): [string, string | null] {
  switch (actor.kind) {
    case 'user':
      return ['user', actor.userId];
    case 'cli':
      return ['cli', actor.name];
    case 'client':
      return ['client', actor.clientId];
    default:
      return [actor.kind, null];
  }
}

/** A constraint the batch broke: another writer got there first. The batch is retried row by row. */
function isConstraintViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CONSTRAINT') || /^23\d{3}$/.test(code));
}

/**
 * Writes the rows of one batch in one transaction, as `insertUser` would write each: for each row its
 * activation URL, or null when its email was already a user's. Such a row is skipped by the users insert
 * (ON CONFLICT DO NOTHING: the unique index answers, with no query of its own, and a row another writer
 * added meanwhile is found the same way) and nothing else of it is written.
 */
async function writeBatch(ctx: AppContext, rows: ValidRow[], actor: Actor): Promise<Array<string | null>> {
  const dialect = ctx.store.dialect;
  const now = ctx.clock();
  const at = now.toISOString();
  const expiresAt = new Date(now.getTime() + ctx.config.activationLinkSeconds * 1000).toISOString();
  const base = new URL(ctx.config.publicUrl);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const [actorType, actorId] = actorColumns(actor);
  const reason = 'reason' in actor ? actor.reason : undefined;
  // In email order, and the tokens in hash order: each index then takes the batch's keys in its own order,
  // from one end of it to the other, rather than jumping about it.
  const inEmailOrder = rows.map((row, i) => ({ row, i })).sort((a, b) => (a.row.normalised < b.row.normalised ? -1 : 1));
  const users: unknown[] = [];
  const ids: string[] = [];
  for (const { row } of inEmailOrder) {
    // Time-ordered (UUID version 7, as the outbox's), not random: the users' primary key, and the user id that
    // leads the role assignments' key and the tokens' and audit events' user indexes, then grow at their
    // right-hand end. Random ids would dirty a page of each of those indexes per row, once they outgrow a
    // batch, and every dirty page is written to the WAL at commit (docs/performance.md#bulk-import-benchimport).
    const id = uuidv7(now.getTime());
    ids.push(id);
    // Roles only: a new user has no groups or methods (src/core/policy/profile.ts).
    const profile = profileKey({ roles: row.grants.map((g) => g.role.name), groups: [], kinds: [] });
    users.push(id, row.email, row.normalised, row.displayName, row.organisation.id, 'active', null, null, at, at, null, null, profile);
  }
  const urls = new Array<string | null>(rows.length).fill(null);
  await ctx.store.transaction(async (_repos, trx) => {
    const inserted = new Set(
      (await insertRows<{ id: string }>(trx, dialect, 'users', USER_COLUMNS, users, ' on conflict ("email_normalised") do nothing returning "id"')).map((r) => r.id),
    );
    const roles: unknown[] = [];
    const events: unknown[] = [];
    const tokens: Array<[string, string, 'activation', string, string, null]> = [];
    inEmailOrder.forEach(({ row, i }, k) => {
      const id = ids[k]!;
      if (!inserted.has(id)) return;
      const roleNames = row.grants.map((g) => g.role.name);
      for (const grant of row.grants) for (const scope of grant.scopes) roles.push(id, grant.role.name, scope, at);
      const details: Record<string, unknown> = { email: row.email, organisation: row.organisation.name, roles: roleNames, passwordSet: false };
      if (reason) details.why = reason;
      events.push(at, 'user.created', actorType, actorId, id, null, JSON.stringify(details));
      const token = randomToken(32);
      tokens.push([hashToken(token), id, 'activation', at, expiresAt, null]);
      urls[i] = new URL(`activate/${token}`, base).toString();
    });
    tokens.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    await insertRows(trx, dialect, 'role_assignments', ROLE_COLUMNS, roles);
    await insertRows(trx, dialect, 'user_tokens', TOKEN_COLUMNS, tokens.flat());
    await insertRows(trx, dialect, 'audit_events', AUDIT_COLUMNS, events);
  });
  return urls;
}

export async function importUsers(
  ctx: AppContext,
  input: Readable,
  actor: Actor,
  handlers: { imported?: (row: ImportedRow) => void; failed?: (row: FailedRow) => void } = {},
  options: ImportOptions = {},
): Promise<ImportReport> {
  const batchSize = options.batchSize ?? DEFAULT_IMPORT_BATCH;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) throw new RangeError('batchSize must be a whole number ≥ 1');
  if (options.parallel !== undefined && !(Number.isInteger(options.parallel) && options.parallel >= 1)) throw new RangeError('parallel must be a whole number ≥ 1');
  const report: ImportReport = { imported: 0, failed: [] };
  const lookups = createLookups(ctx);
  let pending: Entry[] = [];

  const parser = input.pipe(
    parse({
      columns: (header: string[]) => {
        const names = header.map((h) => h.trim().toLowerCase());
        const missing = IMPORT_COLUMNS.filter((c) => !names.includes(c));
        if (missing.length) throw new ImportFormatError(`The CSV header must name the columns email, name and organisation (missing: ${missing.join(', ')})`);
        return names;
      },
      skip_empty_lines: true,
      trim: true,
      bom: true,
      info: true,
      relax_column_count: false,
      skip_records_with_error: true,
    }),
  );
  parser.on('skip', (error: Error & { lines?: number }) => {
    const line = error.lines ?? 0;
    pending.push({ line, failed: { line, email: null, message: `The row could not be read as CSV: ${error.message}` } });
  });

  /**
   * Writes a batch; the results of its rows by entry. `earlier`: the emails of batches still being written,
   * which count as there (the first occurrence wins) without waiting for their transactions.
   */
  const write = async (batch: Entry[], earlier: ReadonlyArray<ReadonlySet<string>>) => {
    const failures = new Map<ValidRow, FailedRow>();
    const exists = (row: ValidRow) => failures.set(row, { line: row.line, email: row.input.email || null, message: new PortcullisError('user-exists', { email: row.email }).message });
    // Twice in the file: the first occurrence is the one imported (an email already in the database is found as it is written).
    const seen = new Set<string>();
    const toWrite: ValidRow[] = [];
    for (const entry of batch) {
      if (!('valid' in entry)) continue;
      const row = entry.valid;
      if (seen.has(row.normalised) || earlier.some((emails) => emails.has(row.normalised))) exists(row);
      else {
        seen.add(row.normalised);
        toWrite.push(row);
      }
    }
    const urls = new Map<ValidRow, string | null>();
    if (toWrite.length) {
      try {
        const written = await writeBatch(ctx, toWrite, actor);
        toWrite.forEach((row, i) => (written[i] === null ? exists(row) : urls.set(row, written[i]!)));
      } catch (error) {
        if (!isConstraintViolation(error)) throw error;
        // Someone else wrote one of these emails meanwhile: each row on its own, so only that one fails.
        for (const row of toWrite) {
          try {
            const result = await ctx.store.transaction((repos) => insertUser(ctx, repos, row.input, actor));
            urls.set(row, result.activationUrl);
          } catch (rowError) {
            if (!isPortcullisError(rowError)) throw rowError;
            failures.set(row, { line: row.line, email: row.input.email || null, message: rowError.message });
          }
        }
      }
    }
    return { failures, urls };
  };

  /** Reports a written batch's rows in line order (links only once their rows are committed). */
  const reportBatch = (batch: Entry[], { failures, urls }: Awaited<ReturnType<typeof write>>) => {
    for (const entry of batch) {
      const failed = 'failed' in entry ? entry.failed : failures.get(entry.valid);
      if (failed) {
        report.failed.push(failed);
        handlers.failed?.(failed);
      } else if ('valid' in entry) {
        report.imported += 1;
        handlers.imported?.({ line: entry.line, email: entry.valid.email, activationUrl: urls.get(entry.valid) ?? null });
      }
    }
  };

  // The next batch is read and validated while the last is written; on PostgreSQL two batches are written at
  // once, each in its own transaction on its own connection (a server process each: both cores busy). A batch
  // starts only when fewer than `parallel` are being written, so the batches before those have committed (an
  // email of theirs is found by the unique index); those still being written pass their emails on. At most
  // parallel + 1 batches are in memory.
  const parallel = options.parallel ?? (ctx.store.dialect === 'postgres' ? 2 : 1);
  const inFlight: Array<{ emails: Set<string>; done: Promise<unknown> }> = [];
  let reported: Promise<void> = Promise.resolve();
  const flush = async () => {
    const batch = pending.sort((a, b) => a.line - b.line);
    pending = [];
    while (inFlight.length >= parallel) await inFlight.shift()!.done;
    const emails = new Set(batch.flatMap((e) => ('valid' in e ? [e.valid.normalised] : [])));
    const written = write(batch, inFlight.map((b) => b.emails));
    const done = written.then(() => undefined);
    done.catch(() => undefined); // awaited when its turn comes, or at the end
    inFlight.push({ emails, done });
    const previous = reported;
    reported = (async () => {
      await previous;
      reportBatch(batch, await written);
    })();
    reported.catch(() => undefined);
  };
  const restoreSqlite = await tuneSqliteForImport(ctx);
  try {
    for await (const item of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      const { record, info } = item;
      const line = info.lines;
      const email = record.email ?? '';
      const row: NewUserInput = { email, displayName: record.name ?? '', organisation: record.organisation ?? '', roles: parseRoleList(record.roles) };
      try {
        pending.push({ line, valid: await validateRow(lookups, line, row) });
      } catch (error) {
        if (!isPortcullisError(error)) throw error;
        pending.push({ line, failed: { line, email: email || null, message: error.message } });
      }
      if (pending.length >= batchSize) await flush();
    }
    await flush();
  } finally {
    // Whatever stopped the reading, the batches in flight end (committed or rolled back) before this returns.
    await Promise.allSettled(inFlight.map((b) => b.done));
    await restoreSqlite();
  }
  await reported;
  return report;
}

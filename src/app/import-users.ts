/**
 * Bulk import of users from CSV, streamed row by row. Columns: email, name, organisation and an
 * optional roles column ("helpdesk;local-admin:Other Org" — a role, optionally ":" and an
 * organisation). Each row is written in its own transaction with its roles and audit event, so a bad
 * row is reported with its line number and nothing of it is written, while good rows are imported.
 * Imported users have no password: each gets a one-time activation link.
 */
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type { Actor } from '../core/audit.js';
import { isPortcullisError } from '../core/errors.js';
import type { AppContext } from './context.js';
import { insertUser, type RoleRequest } from './directory.js';

export const IMPORT_COLUMNS = ['email', 'name', 'organisation'] as const;

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

export async function importUsers(
  ctx: AppContext,
  input: Readable,
  actor: Actor,
  handlers: { imported?: (row: ImportedRow) => void; failed?: (row: FailedRow) => void } = {},
): Promise<ImportReport> {
  const report: ImportReport = { imported: 0, failed: [] };
  const fail = (row: FailedRow) => {
    report.failed.push(row);
    handlers.failed?.(row);
  };
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
    fail({ line: error.lines ?? 0, email: null, message: `The row could not be read as CSV: ${error.message}` });
  });

  for await (const item of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
    const { record, info } = item;
    const line = info.lines;
    const email = record.email ?? '';
    try {
      const result = await ctx.store.transaction((repos) =>
        insertUser(
          ctx,
          repos,
          { email, displayName: record.name ?? '', organisation: record.organisation ?? '', roles: parseRoleList(record.roles) },
          actor,
        ),
      );
      report.imported += 1;
      handlers.imported?.({ line, email: result.user.email, activationUrl: result.activationUrl });
    } catch (error) {
      if (!isPortcullisError(error)) throw error;
      fail({ line, email: email || null, message: error.message });
    }
  }
  return report;
}
